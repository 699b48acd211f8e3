//! The example script overlays in `examples/script-overlays/`, run by the agent, with their
//! download source faked locally.

use crate::commands::Agent;
use testkit::alliedmods;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../examples/script-overlays/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_sourcemod_example_installs_the_latest_builds_for_l4d2() {
    let agent = Agent::new();
    let drops = alliedmods::drops("127.0.0.1", alliedmods::SOURCEMOD_TARBALL);
    let script = alliedmods::sourcemod_script(&example("sourcemod.sh"), &drops);
    let out = agent.ok(&["overlay", "script", "sourcemod"], Some(&script));
    assert!(
        out.contains(&format!("sourcemod: {}", alliedmods::SOURCEMOD_TARBALL)),
        "{out}"
    );
    assert!(out.contains("SourceMod plugins: 3"), "{out}");
    let game = agent.root().join("overlays/sourcemod/left4dead2");
    assert_eq!(
        std::fs::read_to_string(game.join("addons/metamod.vdf")).unwrap(),
        "\"Plugin\"\n{\n\t\"file\"\t\"../left4dead2/addons/metamod/bin/server\"\n}\n"
    );
    assert!(game.join("addons/metamod/bin/server.so").is_file());
    assert!(game.join("cfg/sourcemod/sourcemod.cfg").is_file());
    let mut plugins: Vec<String> = std::fs::read_dir(game.join("addons/sourcemod/plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    plugins.sort();
    assert_eq!(plugins, alliedmods::PLUGINS);
    assert_eq!(drops.requests(), 4, "two latest files and two tarballs");

    // A drop folder that names something else: the script stops, the overlay stays.
    let odd = alliedmods::drops("127.0.0.1", "index.html");
    let before = agent.files();
    let out = agent.run(
        &["overlay", "script", "sourcemod"],
        Some(&alliedmods::sourcemod_script(
            &example("sourcemod.sh"),
            &odd,
        )),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the script failed (exit code 1)"));
    assert_eq!(agent.files(), before);
}

#[test]
fn the_competitive_and_admins_examples_write_their_files() {
    let agent = Agent::new();
    agent.ok(
        &["overlay", "script", "competitive"],
        Some(&example("competitive.sh")),
    );
    let cfg = std::fs::read_to_string(
        agent
            .root()
            .join("overlays/competitive/left4dead2/cfg/left4me.d/competitive.cfg"),
    )
    .unwrap();
    assert!(
        cfg.contains("mp_gamemode \"versus\"\n") && cfg.contains("sv_alltalk \"0\"\n"),
        "{cfg}"
    );
    let out = agent.ok(
        &["overlay", "script", "admins"],
        Some(&example("admins.sh")),
    );
    assert!(out.contains("admins: 1"), "{out}");
    let admins = std::fs::read_to_string(
        agent
            .root()
            .join("overlays/admins/left4dead2/addons/sourcemod/configs/admins_simple.ini"),
    )
    .unwrap();
    assert!(
        admins.ends_with("\"STEAM_1:0:0000001\" \"z\"\n"),
        "{admins}"
    );
}
