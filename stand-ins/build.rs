//! Builds the stand-in `srcds_linux` (`i386/srcds_linux.cpp`) as the real one is built: an
//! i386 program linked to libstdc++ and libgcc_s. The stand-in steamcmd carries it and puts
//! it in the trees it installs. Needs a C++ compiler that can target i386 (`g++-multilib` on
//! Debian and Ubuntu; `cargo xtask setup` installs it).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "i386/srcds_linux.cpp";
    println!("cargo::rerun-if-changed={source}");
    println!("cargo::rerun-if-env-changed=CXX_i386");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let binary = out.join("srcds_linux");
    let compiler = std::env::var("CXX_i386").unwrap_or_else(|_| "g++".to_owned());
    let status = Command::new(&compiler)
        .args(["-m32", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .arg(source)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "{compiler} -m32 could not build the i386 stand-in srcds_linux ({status}); it \
             needs the i386 C++ libraries: apt-get install g++-multilib (or run `cargo xtask \
             setup`)"
        ),
        Err(e) => panic!(
            "cannot run {compiler} to build the i386 stand-in srcds_linux ({e}); install \
             g++-multilib (or run `cargo xtask setup`)"
        ),
    }
}
