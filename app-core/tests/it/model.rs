use crate::accounts::open;
use app_core::blueprints::BlueprintDraft;
use app_core::hosts::NewHost;
use app_core::overlays::{NewOverlay, OverlaySource};
use app_core::servers::NewServer;
use app_core::{Error, Session, Store};
use left4me_protocol::{LaunchFlag, LaunchParams, MapName};

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    admin: Session,
    alice: Session,
    bob: Session,
    host: i64,
}

fn world() -> World {
    let (dir, store, _) = open();
    let admin = store.create_first_admin("admin", "admin password").unwrap();
    store
        .create_user(&admin, "alice", "alice password", false)
        .unwrap();
    store
        .create_user(&admin, "bob", "bobs password!", false)
        .unwrap();
    let alice = store.login("alice", "alice password").unwrap();
    let bob = store.login("bob", "bobs password!").unwrap();
    let host = store
        .add_host(
            &admin,
            NewHost {
                name: "h1".into(),
                address: "10.0.0.1".into(),
                port: 22,
                admin_user: "root".into(),
                bind_address: None,
            },
        )
        .unwrap()
        .id;
    World {
        _dir: dir,
        store,
        admin,
        alice,
        bob,
        host,
    }
}

fn draft(name: &str, overlays: &[&str]) -> BlueprintDraft {
    BlueprintDraft {
        name: name.into(),
        overlays: overlays.iter().map(|s| s.to_string()).collect(),
        launch: LaunchParams {
            map: MapName::new("c1m1_hotel").unwrap(),
            max_players: 8,
            tickrate: 30,
            flags: vec![LaunchFlag::Insecure],
        },
        cvars: [("hostname".to_string(), "Friday coop".to_string())].into(),
        restart_when_hung: false,
        rollout_canary: false,
        limits: Default::default(),
    }
}

fn overlay(name: &str, global: bool) -> NewOverlay {
    NewOverlay {
        name: name.into(),
        global,
        source: OverlaySource::Empty,
        description: String::new(),
    }
}

fn server(name: &str, host: i64, blueprint: i64, port: u16) -> NewServer {
    NewServer {
        name: name.into(),
        host_id: host,
        blueprint_id: blueprint,
        port,
    }
}

#[test]
fn overlay_references_resolve_to_own_then_global_and_nothing_else() {
    let w = world();
    let s = &w.store;
    s.create_overlay(&w.admin, overlay("sourcemod", true))
        .unwrap();
    s.create_overlay(&w.alice, overlay("maps", false)).unwrap();
    s.create_overlay(&w.bob, overlay("bobs-maps", false))
        .unwrap();
    // Two users may use the same name; on hosts each gets its own folder.
    let bobs_maps = s.create_overlay(&w.bob, overlay("maps", false)).unwrap();
    assert_eq!(
        bobs_maps.host_name.as_str(),
        format!("u{}-maps", w.bob.user_id())
    );

    let bp = s
        .create_blueprint(&w.alice, draft("coop", &["maps", "sourcemod"]))
        .unwrap();
    assert_eq!(bp.overlays, ["maps", "sourcemod"]);
    let err = s
        .create_blueprint(&w.alice, draft("x", &["bobs-maps"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"there is no overlay named "bobs-maps" among your overlays and the global ones"#
    );
    let err = s
        .create_blueprint(&w.alice, draft("x", &["maps", "maps"]))
        .unwrap_err();
    assert_eq!(err.to_string(), r#"overlay "maps" is listed twice"#);
    let err = s
        .create_blueprint(&w.alice, draft("x", &["../etc"]))
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");

    // Alice sees the global overlay and her own, not Bob's.
    let names: Vec<_> = s
        .overlays(&w.alice)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["sourcemod", "maps"]);
    // Only admins make or change global overlays.
    let err = s
        .create_overlay(&w.alice, overlay("everyone", true))
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    let global = s.overlays(&w.alice).unwrap()[0].id;
    let err = s.delete_overlay(&w.alice, global).unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    // An overlay in use cannot be deleted.
    let err = s.delete_overlay(&w.admin, global).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"overlay "sourcemod" is used by 1 blueprint: remove it from them first"#
    );
}

#[test]
fn one_user_can_neither_see_nor_change_anothers_things_whatever_the_ids() {
    let w = world();
    let s = &w.store;
    let maps = s.create_overlay(&w.alice, overlay("maps", false)).unwrap();
    let bp = s
        .create_blueprint(&w.alice, draft("coop", &["maps"]))
        .unwrap();
    let sv = s
        .create_server(&w.alice, server("coop-1", w.host, bp.id, 27015))
        .unwrap();
    let bp = s.blueprint(&w.alice, bp.id).unwrap();

    assert!(s.blueprints(&w.bob).unwrap().is_empty());
    assert!(s.servers(&w.bob).unwrap().is_empty());
    assert!(s.overlays(&w.bob).unwrap().is_empty());

    let not_found = |r: Result<(), Error>| {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    };
    not_found(s.blueprint(&w.bob, bp.id).map(drop));
    not_found(
        s.update_blueprint(&w.bob, bp.id, draft("mine", &[]))
            .map(drop),
    );
    not_found(s.delete_blueprint(&w.bob, bp.id));
    not_found(s.server(&w.bob, sv.id).map(drop));
    not_found(s.reassign_server(&w.bob, sv.id, bp.id).map(drop));
    not_found(s.overlay(&w.bob, maps.id).map(drop));
    not_found(s.delete_overlay(&w.bob, maps.id));
    not_found(
        s.update_overlay(&w.bob, maps.id, OverlaySource::Empty, "mine".into())
            .map(drop),
    );
    // Bob cannot hang his server on Alice's blueprint, nor move his onto it.
    not_found(
        s.create_server(&w.bob, server("b", w.host, bp.id, 27016))
            .map(drop),
    );
    let bobs_bp = s.create_blueprint(&w.bob, draft("versus", &[])).unwrap();
    let bobs_sv = s
        .create_server(&w.bob, server("b", w.host, bobs_bp.id, 27016))
        .unwrap();
    not_found(s.reassign_server(&w.bob, bobs_sv.id, bp.id).map(drop));
    // Admins have no back door into users' blueprints either.
    not_found(s.blueprint(&w.admin, bp.id).map(drop));

    // Nothing of Alice's changed.
    assert_eq!(s.blueprint(&w.alice, bp.id).unwrap(), bp);
    assert_eq!(s.server(&w.alice, sv.id).unwrap(), sv);
    assert_eq!(
        s.overlay(&w.alice, maps.id).unwrap().source,
        OverlaySource::Empty
    );
}

#[test]
fn blueprint_rules_hold() {
    let w = world();
    let s = &w.store;
    let coop = s.create_blueprint(&w.alice, draft("coop", &[])).unwrap();
    let versus = s.create_blueprint(&w.alice, draft("versus", &[])).unwrap();
    let err = s
        .create_blueprint(&w.alice, draft("coop", &[]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"you already have a blueprint named "coop""#
    );
    // Another user's blueprint of the same name is no clash: blueprints are private.
    s.create_blueprint(&w.bob, draft("coop", &[])).unwrap();

    let a = s
        .create_server(&w.alice, server("coop-1", w.host, coop.id, 27015))
        .unwrap();
    s.create_server(&w.alice, server("coop-2", w.host, coop.id, 27016))
        .unwrap();

    // Deleting a linked blueprint is refused and changes nothing.
    let err = s.delete_blueprint(&w.alice, coop.id).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"blueprint "coop" is used by 2 servers (coop-1 on h1, coop-2 on h1): move or delete them first"#
    );
    assert!(matches!(err, Error::Conflict(_)));
    assert_eq!(s.blueprint(&w.alice, coop.id).unwrap().servers.len(), 2);

    // A server moves to another blueprint at any time.
    let moved = s.reassign_server(&w.alice, a.id, versus.id).unwrap();
    assert_eq!(moved.blueprint, "versus");
    assert_eq!(s.blueprint(&w.alice, coop.id).unwrap().servers.len(), 1);

    // Invalid settings are refused with the reason; the stored blueprint is unchanged.
    let mut bad = draft("coop", &[]);
    bad.cvars.insert("rcon_password".into(), "hunter2".into());
    let err = s.update_blueprint(&w.alice, coop.id, bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"cvar "rcon_password" cannot be set here: the RCON password is a secret and is set through the server's RCON settings"#
    );
    let mut bad = draft("coop", &[]);
    bad.launch.max_players = 0;
    assert_eq!(
        s.update_blueprint(&w.alice, coop.id, bad)
            .unwrap_err()
            .to_string(),
        "max_players 0 is outside 1-32"
    );
    assert_eq!(
        s.blueprint(&w.alice, coop.id).unwrap().cvars["hostname"],
        "Friday coop"
    );

    let mut edited = draft("coop", &[]);
    edited.cvars.insert("sv_gametypes".into(), "coop".into());
    let edited = s.update_blueprint(&w.alice, coop.id, edited).unwrap();
    assert_eq!(edited.cvars["sv_gametypes"], "coop");

    // Once unlinked, it can go.
    let b = s
        .servers(&w.alice)
        .unwrap()
        .into_iter()
        .find(|s| s.name.as_str() == "coop-2")
        .unwrap();
    s.reassign_server(&w.alice, b.id, versus.id).unwrap();
    s.delete_blueprint(&w.alice, coop.id).unwrap();
}

#[test]
fn port_and_name_clashes_on_a_host_are_refused_across_users() {
    let w = world();
    let s = &w.store;
    let a = s.create_blueprint(&w.alice, draft("a", &[])).unwrap();
    let b = s.create_blueprint(&w.bob, draft("b", &[])).unwrap();
    s.create_server(&w.alice, server("one", w.host, a.id, 27015))
        .unwrap();
    let err = s
        .create_server(&w.bob, server("two", w.host, b.id, 27015))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"port 27015 is already used by another server on host "h1""#
    );
    assert!(matches!(err, Error::Conflict(_)));
    let err = s
        .create_server(&w.bob, server("one", w.host, b.id, 27016))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"host "h1" already has a server named "one""#
    );
    let err = s
        .create_server(&w.bob, server("two", w.host, b.id, 80))
        .unwrap_err();
    assert_eq!(err.to_string(), "port 80 is outside 1024-65535");
    let err = s
        .create_server(&w.bob, server("Two", w.host, b.id, 27016))
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let err = s
        .create_server(&w.bob, server("two", 999, b.id, 27016))
        .unwrap_err();
    assert_eq!(err.to_string(), "host 999 does not exist");
    assert!(s.servers(&w.bob).unwrap().is_empty(), "nothing was created");
    // The same port on another host is fine.
    let h2 = s
        .add_host(
            &w.admin,
            NewHost {
                name: "h2".into(),
                address: "10.0.0.2".into(),
                port: 22,
                admin_user: "root".into(),
                bind_address: None,
            },
        )
        .unwrap();
    s.create_server(&w.bob, server("two", h2.id, b.id, 27015))
        .unwrap();
}

#[test]
fn each_server_gets_its_own_client_and_sourcetv_ports_and_the_hosts_bind_address() {
    let w = world();
    let s = &w.store;
    let a = s.create_blueprint(&w.alice, draft("a", &[])).unwrap();
    let one = s
        .create_server(&w.alice, server("one", w.host, a.id, 27015))
        .unwrap();
    let two = s
        .create_server(&w.alice, server("two", w.host, a.id, 27016))
        .unwrap();
    assert_eq!((one.client_port, one.tv_port), (Some(28015), Some(29015)));
    assert_eq!((two.client_port, two.tv_port), (Some(28016), Some(29016)));
    // A game port another server uses as its client or SourceTV port is taken.
    let err = s
        .create_server(&w.alice, server("three", w.host, a.id, 29016))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"port 29016 is already used by another server on host "h1""#
    );
    // Hand-outs step over whatever is taken.
    let three = s
        .create_server(&w.alice, server("three", w.host, a.id, 27017))
        .unwrap();
    let four = s
        .create_server(&w.alice, server("four", w.host, a.id, 26017))
        .unwrap();
    assert_eq!(
        (three.client_port, three.tv_port),
        (Some(28017), Some(29017))
    );
    assert_eq!((four.client_port, four.tv_port), (Some(27018), Some(28018)));
    // The host's bind address reaches the spec, with the ports.
    let bound = s
        .add_host(
            &w.admin,
            NewHost {
                name: "bound".into(),
                address: "10.0.0.3".into(),
                port: 22,
                admin_user: "root".into(),
                bind_address: Some("192.0.2.10".parse().unwrap()),
            },
        )
        .unwrap();
    assert_eq!(bound.bind_address, Some("192.0.2.10".parse().unwrap()));
    let five = s
        .create_server(&w.alice, server("five", bound.id, a.id, 27015))
        .unwrap();
    let spec = s.server_spec(&w.alice, five.id).unwrap();
    assert_eq!(spec.ip, Some("192.0.2.10".parse().unwrap()));
    assert_eq!(spec.ports(), [27015, 28015, 29015]);
}

#[test]
fn lists_are_in_the_order_people_count() {
    let w = world();
    let s = &w.store;
    for (name, address) in [("h10", "10.0.0.10"), ("h2", "10.0.0.2")] {
        s.add_host(
            &w.admin,
            NewHost {
                name: name.into(),
                address: address.into(),
                port: 22,
                admin_user: "root".into(),
                bind_address: None,
            },
        )
        .unwrap();
    }
    let hosts: Vec<_> = s.hosts(&w.admin).unwrap();
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["h1", "h2", "h10"]);

    for name in ["coop 10", "Coop 9", "coop 1"] {
        s.create_blueprint(&w.alice, draft(name, &[])).unwrap();
    }
    let blueprints = s.blueprints(&w.alice).unwrap();
    let names: Vec<&str> = blueprints.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["coop 1", "Coop 9", "coop 10"]);

    let h10 = hosts[2].id;
    let coop = blueprints[0].id;
    for (name, host, port) in [
        ("coop-10", w.host, 27017),
        ("coop-2", w.host, 27016),
        ("coop-1", h10, 27015),
        ("coop-1", w.host, 27015),
    ] {
        s.create_server(&w.alice, server(name, host, coop, port))
            .unwrap();
    }
    let servers: Vec<String> = s
        .servers(&w.alice)
        .unwrap()
        .iter()
        .map(|x| format!("{}/{}", x.host, x.name.as_str()))
        .collect();
    assert_eq!(
        servers,
        ["h1/coop-1", "h1/coop-2", "h1/coop-10", "h10/coop-1"]
    );
}

#[test]
fn hosts_are_managed_by_admins_and_removal_waits_for_their_servers() {
    let w = world();
    let s = &w.store;
    let new = |name: &str, address: &str| NewHost {
        name: name.into(),
        address: address.into(),
        port: 22,
        admin_user: "root".into(),
        bind_address: None,
    };
    let err = s.add_host(&w.alice, new("mine", "10.0.0.9")).unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    assert_eq!(
        s.add_host(&w.admin, new("H1", "10.0.0.9"))
            .unwrap_err()
            .to_string(),
        r#"a host named "h1" exists already"#
    );
    assert_eq!(
        s.add_host(&w.admin, new("other", "10.0.0.1"))
            .unwrap_err()
            .to_string(),
        r#"10.0.0.1:22 is already added as host "h1""#
    );
    assert_eq!(
        s.add_host(&w.admin, new("x", "-oProxyCommand=evil"))
            .unwrap_err()
            .to_string(),
        r#"invalid host address "-oProxyCommand=evil": use a host name or an IP address"#
    );
    assert_eq!(s.hosts(&w.alice).unwrap().len(), 1, "users see the hosts");

    let bp = s.create_blueprint(&w.alice, draft("a", &[])).unwrap();
    let sv = s
        .create_server(&w.alice, server("one", w.host, bp.id, 27015))
        .unwrap();
    assert_eq!(
        s.remove_host(&w.admin, w.host).unwrap_err().to_string(),
        r#"host "h1" still has 1 server: delete it first"#
    );
    let _ = sv;
    assert!(matches!(
        s.remove_host(&w.alice, w.host).unwrap_err(),
        Error::Forbidden(_)
    ));
}

#[test]
fn a_blueprint_that_restarts_hung_servers_says_so_in_their_specs() {
    let w = world();
    let s = &w.store;
    let plain = s.create_blueprint(&w.alice, draft("plain", &[])).unwrap();
    assert!(!plain.restart_when_hung);
    let one = s
        .create_server(&w.alice, server("one", w.host, plain.id, 27015))
        .unwrap();
    let spec = s.server_spec(&w.alice, one.id).unwrap();
    assert!(!spec.restart_when_hung);
    assert!(
        !spec.to_yaml().contains("restart_when_hung"),
        "old hosts read it as before"
    );
    let careful = s
        .update_blueprint(
            &w.alice,
            plain.id,
            BlueprintDraft {
                restart_when_hung: true,
                ..draft("plain", &[])
            },
        )
        .unwrap();
    assert!(careful.restart_when_hung);
    let spec = s.server_spec(&w.alice, one.id).unwrap();
    assert!(spec.restart_when_hung);
    assert!(spec.to_yaml().contains("restart_when_hung: true"));
}

#[test]
fn a_blueprint_whose_servers_go_first_in_a_rollout_says_so_in_their_specs() {
    let w = world();
    let s = &w.store;
    let plain = s.create_blueprint(&w.alice, draft("plain", &[])).unwrap();
    assert!(!plain.rollout_canary);
    let one = s
        .create_server(&w.alice, server("one", w.host, plain.id, 27015))
        .unwrap();
    let spec = s.server_spec(&w.alice, one.id).unwrap();
    assert!(!spec.to_yaml().contains("rollout_canary"));
    let first = s
        .update_blueprint(
            &w.alice,
            plain.id,
            BlueprintDraft {
                rollout_canary: true,
                ..draft("plain", &[])
            },
        )
        .unwrap();
    assert!(first.rollout_canary);
    assert!(s.blueprint(&w.alice, plain.id).unwrap().rollout_canary);
    let spec = s.server_spec(&w.alice, one.id).unwrap();
    assert!(spec.rollout_canary);
    assert!(spec.to_yaml().contains("rollout_canary: true"));
    // A new blueprint keeps it from the start.
    let canaries = s
        .create_blueprint(
            &w.alice,
            BlueprintDraft {
                rollout_canary: true,
                ..draft("canaries", &[])
            },
        )
        .unwrap();
    assert!(canaries.rollout_canary);
}

#[test]
fn a_blueprints_limits_reach_its_servers_specs_and_bad_ones_change_nothing() {
    let w = world();
    let s = &w.store;
    let plain = s.create_blueprint(&w.alice, draft("plain", &[])).unwrap();
    let one = s
        .create_server(&w.alice, server("one", w.host, plain.id, 27015))
        .unwrap();
    assert!(
        !s.server_spec(&w.alice, one.id)
            .unwrap()
            .to_yaml()
            .contains("limits"),
        "old hosts read it as before"
    );
    let limits = left4me_protocol::limits::Limits {
        cpu_weight: Some(1000),
        memory_max: Some(2 << 30),
        ..Default::default()
    };
    let limited = s
        .update_blueprint(
            &w.alice,
            plain.id,
            BlueprintDraft {
                limits: limits.clone(),
                ..draft("plain", &[])
            },
        )
        .unwrap();
    assert_eq!(limited.limits, limits);
    let spec = s.server_spec(&w.alice, one.id).unwrap();
    assert_eq!(spec.limits, limits);
    assert!(spec.to_yaml().contains("memory_max: 2147483648"));
    // The soft limit above the hard one is refused, and the blueprint keeps its limits.
    let err = s
        .update_blueprint(
            &w.alice,
            plain.id,
            BlueprintDraft {
                limits: left4me_protocol::limits::Limits {
                    memory_high: Some(3 << 30),
                    memory_max: Some(2 << 30),
                    ..Default::default()
                },
                ..draft("plain", &[])
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("must be below memory_max"),
        "{err}"
    );
    assert_eq!(s.blueprint(&w.alice, plain.id).unwrap().limits, limits);
}
