//! A local stand-in for AlliedModders' drop folders: `<name>-latest-linux` files naming the
//! newest tarball, and the tarballs, shaped like the real ones (they unpack to `addons/` and
//! `cfg/`). The SourceMod example overlay is tested against it.

use crate::{FileServer, tarball};

pub const SOURCEMOD_TARBALL: &str = "sourcemod-1.12.0-git7210-linux.tar.gz";
pub const METAMOD_TARBALL: &str = "mmsource-1.12.0-git1219-linux.tar.gz";
/// The plugins the fake SourceMod ships.
pub const PLUGINS: &[&str] = &["admin-flatfile.smx", "basecommands.smx", "funcommands.smx"];

/// Serves the two drop folders; `latest_sourcemod` is what `sourcemod-latest-linux` says.
pub fn drops(ip: &str, latest_sourcemod: &str) -> FileServer {
    let mut sourcemod: Vec<(String, Vec<u8>)> = PLUGINS
        .iter()
        .map(|p| {
            (
                format!("addons/sourcemod/plugins/{p}"),
                format!("FAKE SMX {p}").into_bytes(),
            )
        })
        .collect();
    sourcemod.push((
        "addons/sourcemod/configs/admins_simple.ini".into(),
        b"// default admins\n".to_vec(),
    ));
    sourcemod.push((
        "cfg/sourcemod/sourcemod.cfg".into(),
        b"sm_show_activity 13\n".to_vec(),
    ));
    let sourcemod: Vec<(&str, &[u8])> = sourcemod
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let metamod: &[(&str, &[u8])] = &[
        ("addons/metamod/bin/server.so", b"FAKE ELF"),
        (
            "addons/metamod_x64.vdf",
            b"\"Plugin\" { \"file\" \"x64\" }\n",
        ),
    ];
    FileServer::start_many(
        ip,
        vec![
            (
                "/smdrop/1.12/sourcemod-latest-linux".into(),
                Some(format!("{latest_sourcemod}\n").into_bytes()),
            ),
            (
                format!("/smdrop/1.12/{SOURCEMOD_TARBALL}"),
                Some(tarball(&sourcemod)),
            ),
            (
                "/mmsdrop/1.12/mmsource-latest-linux".into(),
                Some(format!("{METAMOD_TARBALL}\n").into_bytes()),
            ),
            (
                format!("/mmsdrop/1.12/{METAMOD_TARBALL}"),
                Some(tarball(metamod)),
            ),
        ],
    )
}

/// The example script with its download folders pointed at `server`.
pub fn sourcemod_script(text: &str, server: &FileServer) -> String {
    text.replace("https://sm.alliedmods.net", &server.base)
        .replace("https://mms.alliedmods.net", &server.base)
}
