//! Builds the stand-ins' i386 programs as the real ones are built: `srcds_linux`
//! (`i386/srcds_linux.cpp`), linked to the host's libstdc++ and libgcc_s, which the stand-in
//! steamcmd puts in the trees it installs; and `linux32/steamcmd` (`i386/steamcmd.cpp`), which
//! carries its own C++ runtime as Valve's does. Needs a C++ compiler that can target i386
//! (`g++-multilib` on Debian and Ubuntu; `cargo xtask setup` installs it).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-env-changed=CXX_i386");
    println!("cargo::rerun-if-changed=i386/steamcmd.sh");
    build("srcds_linux", &[]);
    build("steamcmd", &["-static-libstdc++"]);
}

fn build(name: &str, flags: &[&str]) {
    let source = format!("i386/{name}.cpp");
    println!("cargo::rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join(name);
    let compiler = std::env::var("CXX_i386").unwrap_or_else(|_| "g++".to_owned());
    let status = Command::new(&compiler)
        .args(["-m32", "-O2", "-Wall", "-Wextra", "-Werror"])
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "{compiler} -m32 could not build the i386 stand-in {name} ({status}); it \
             needs the i386 C++ libraries: apt-get install g++-multilib (or run `cargo xtask \
             setup`)"
        ),
        Err(e) => panic!(
            "cannot run {compiler} to build the i386 stand-in {name} ({e}); install \
             g++-multilib (or run `cargo xtask setup`)"
        ),
    }
}
