//! `overlay workshop` against a local fake of the Steam Web API and its download host.

use crate::commands::Agent;
use testkit::workshop::{FakeItem, FakeWorkshop};

fn records(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn workshop(
    agent: &Agent,
    fake: &FakeWorkshop,
    ids: &[&str],
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut args = vec![
        "--json",
        "overlay",
        "workshop",
        "maps",
        "--api-url",
        &fake.url,
        "--backoff-ms",
        "10",
    ];
    args.extend_from_slice(ids);
    let all = records(&agent.ok(&args, None));
    let done = all.last().unwrap().clone();
    assert_eq!(done["type"], "workshop_done", "{done}");
    (all, done)
}

fn addons(agent: &Agent) -> Vec<(String, u64)> {
    let dir = agent.root().join("overlays/maps/left4dead2/addons");
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn items_and_collections_download_update_and_go() {
    let agent = Agent::new();
    let fake = FakeWorkshop::start("127.0.0.1");
    for (id, name) in [
        (101, "Dark Carnival Remix"),
        (102, "Urban Flight"),
        (103, "Diescraper"),
        (104, "Suicide Blitz"),
        (105, "Tour of Terror"),
    ] {
        fake.item(
            id,
            FakeItem::vpk(
                name,
                &format!("myl4d2addons/{}.vpk", name.to_lowercase().replace(' ', "_")),
                3000 + id as usize,
                1_700_000_000,
            ),
        );
    }
    fake.item(
        201,
        FakeItem::vpk(
            "Collection Map",
            "myl4d2addons/colmap.vpk",
            5000,
            1_700_000_000,
        ),
    );
    // A collection with one item of its own and one already listed.
    fake.collection(900, &[(201, 0), (101, 0)]);
    let ids = [
        "--item",
        "101",
        "--item",
        "102",
        "--item",
        "103",
        "--item",
        "104",
        "--item",
        "105",
        "--collection",
        "900",
    ];
    let (all, done) = workshop(&agent, &fake, &ids);
    assert_eq!(
        (
            done["downloaded"].as_u64(),
            done["unchanged"].as_u64(),
            done["failed"].as_array().unwrap().len()
        ),
        (Some(6), Some(0), 0)
    );
    let items: Vec<&serde_json::Value> = all
        .iter()
        .filter(|r| r["type"] == "workshop_item")
        .collect();
    assert_eq!(items.len(), 6);
    assert_eq!(items.last().unwrap()["items_done"], 6);
    assert!(
        all.iter().any(|r| r["type"] == "workshop_progress"),
        "per-item progress"
    );
    assert_eq!(
        addons(&agent),
        [
            ("colmap.vpk".to_owned(), 5000),
            ("dark_carnival_remix.vpk".to_owned(), 3101),
            ("diescraper.vpk".to_owned(), 3103),
            ("suicide_blitz.vpk".to_owned(), 3104),
            ("tour_of_terror.vpk".to_owned(), 3105),
            ("urban_flight.vpk".to_owned(), 3102),
        ]
    );
    let first = std::fs::read(
        agent
            .root()
            .join("overlays/maps/left4dead2/addons/urban_flight.vpk"),
    )
    .unwrap();
    assert_eq!(first, FakeItem::vpk("", "", 3102, 0).content);

    // Nothing changed: nothing is downloaded again.
    let (_, done) = workshop(&agent, &fake, &ids);
    assert_eq!(
        (done["downloaded"].as_u64(), done["unchanged"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(fake.downloads(102), 1);

    // One item updated: only it is fetched.
    let mut updated = FakeItem::vpk(
        "Urban Flight",
        "myl4d2addons/urban_flight.vpk",
        4444,
        1_700_000_500,
    );
    updated.content[0] = 0xAA;
    fake.item(102, updated.clone());
    let (_, done) = workshop(&agent, &fake, &ids);
    assert_eq!(
        (done["downloaded"].as_u64(), done["unchanged"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(
        std::fs::read(
            agent
                .root()
                .join("overlays/maps/left4dead2/addons/urban_flight.vpk")
        )
        .unwrap(),
        updated.content
    );
    assert_eq!(fake.downloads(102), 2);
    assert_eq!(fake.downloads(103), 1);

    // An item no longer listed goes (101 is no longer listed on its own, but collection
    // 900 still has it).
    let fewer = [
        "--item",
        "103",
        "--item",
        "104",
        "--item",
        "105",
        "--collection",
        "900",
    ];
    let (_, done) = workshop(&agent, &fake, &fewer);
    assert_eq!(done["removed"], 1);
    let files: Vec<String> = addons(&agent).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        files,
        [
            "colmap.vpk",
            "dark_carnival_remix.vpk",
            "diescraper.vpk",
            "suicide_blitz.vpk",
            "tour_of_terror.vpk"
        ]
    );
    // No staging or part files are left anywhere.
    let leftovers: Vec<_> = agent
        .files()
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains(".part") || s.contains(".import") || s.contains(".old")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn broken_items_are_reported_by_id_and_the_others_still_arrive() {
    let agent = Agent::new();
    let fake = FakeWorkshop::start("127.0.0.1");
    fake.item(1, FakeItem::vpk("Good", "a/good.vpk", 2000, 10));
    let mut no_url = FakeItem::vpk("Legacy", "a/legacy.vpk", 2000, 10);
    no_url.no_url = true;
    fake.item(2, no_url);
    let mut other_game = FakeItem::vpk("Portal thing", "a/portal.vpk", 2000, 10);
    other_game.app = 620;
    fake.item(3, other_game);
    // 4 does not exist (result 9); 5 fails twice with HTTP 503, then arrives; 6 arrives
    // short every time; 7 has a hostile file name.
    fake.item(5, FakeItem::vpk("Flaky", "a/flaky.vpk", 2000, 10));
    fake.fail_downloads(5, 2);
    fake.item(6, FakeItem::vpk("Cut", "a/cut.vpk", 2000, 10));
    fake.cut_short(6, true);
    fake.item(
        7,
        FakeItem::vpk("Sneaky", "../../../../etc/cron.d/evil", 2000, 10),
    );
    let ids: Vec<String> = (1..=7)
        .flat_map(|i| ["--item".to_owned(), i.to_string()])
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (_, done) = workshop(&agent, &fake, &ids);
    let failed: Vec<(u64, String)> = done["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(failed.iter().map(|f| f.0).collect::<Vec<_>>(), [2, 3, 4, 6]);
    assert_eq!(failed[0].1, "it has no direct download (empty file_url)");
    assert_eq!(failed[1].1, "not a Left 4 Dead 2 item (app 620)");
    assert_eq!(failed[2].1, "removed, private or never existed (result 9)");
    assert_eq!(
        failed[3].1,
        "size mismatch: the Workshop says 2000 bytes, the download had 1000 (after 4 attempts)"
    );
    assert_eq!(fake.downloads(5), 3, "two 503s, then the file");
    assert_eq!(done["downloaded"], 3);
    assert_eq!(
        addons(&agent)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        ["evil.vpk", "flaky.vpk", "good.vpk"]
    );
    assert!(!agent.root().join("etc").exists());

    // An item fetched before and failing now keeps its last copy.
    fake.cut_short(6, false);
    let (_, done) = workshop(&agent, &fake, &ids);
    assert_eq!(done["failed"].as_array().unwrap().len(), 3);
    fake.item(6, FakeItem::vpk("Cut", "a/cut.vpk", 2100, 11));
    fake.cut_short(6, true);
    let (_, done) = workshop(&agent, &fake, &ids);
    let six = done["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == 6)
        .unwrap()
        .clone();
    assert!(
        six["reason"]
            .as_str()
            .unwrap()
            .ends_with("; the copy from the last download is kept"),
        "{six}"
    );
    assert!(addons(&agent).contains(&("cut.vpk".to_owned(), 2000)));
}

#[test]
fn limits_and_an_unreachable_api_change_nothing() {
    let agent = Agent::new();
    let fake = FakeWorkshop::start("127.0.0.1");
    fake.item(1, FakeItem::vpk("Small", "a/small.vpk", 1000, 10));
    fake.item(2, FakeItem::vpk("Big", "a/big.vpk", 5000, 10));
    let out = agent.ok(
        &[
            "--json",
            "overlay",
            "workshop",
            "maps",
            "--api-url",
            &fake.url,
            "--item",
            "1",
            "--item",
            "2",
            "--max-bytes",
            "3000",
        ],
        None,
    );
    let done = records(&out).pop().unwrap();
    assert_eq!(done["failed"][0]["id"], 2);
    assert_eq!(
        done["failed"][0]["reason"],
        "5000 bytes would take the overlay over its limit of 3000 bytes"
    );
    assert_eq!(fake.downloads(2), 0);

    // The API is down: the command fails and the overlay stays as it was.
    let before = agent.files();
    let out = agent.run(
        &[
            "overlay",
            "workshop",
            "maps",
            "--api-url",
            "http://127.0.0.1:9",
            "--item",
            "1",
            "--retries",
            "1",
            "--backoff-ms",
            "10",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "l4d2-agent: the Steam Web API (GetPublishedFileDetails at http://127.0.0.1:9) failed"
        ),
        "{stderr}"
    );
    assert_eq!(agent.files(), before);
    let out = agent.run(
        &["overlay", "workshop", "maps", "--api-url", &fake.url],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A schedule that refreshes a Workshop overlay, started as its timer starts it: what
/// changed is fetched, once per due time, and an item that cannot be fetched fails the run
/// and is recorded.
#[test]
fn a_scheduled_refresh_fetches_what_changed_once_per_due_time() {
    let agent = Agent::new();
    let fake = FakeWorkshop::start("127.0.0.1");
    fake.item(1, FakeItem::vpk("One", "a/one.vpk", 1000, 10));
    fake.item(2, FakeItem::vpk("Two", "a/two.vpk", 2000, 10));
    let automation = agent.root().join("automation");
    std::fs::create_dir_all(&automation).unwrap();
    let write_list = |items: &str| {
        std::fs::write(
            automation.join("schedules.json"),
            format!(
                r#"{{"schedules":[{{"name":"maps-nightly","calendar":"*-*-* 04:00","action":"overlay_refresh","overlay":"maps","items":[{items}],"api_url":"{}"}}]}}"#,
                fake.url
            ),
        )
        .unwrap();
    };
    write_list("1,2");
    let me = crate::commands::me();
    let timer_run = |trigger: u64| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_l4d2-agent"))
            .env("TRIGGER_TIMER_REALTIME_USEC", trigger.to_string())
            .arg("--root")
            .arg(agent.root())
            .args(["--owner-account", &me, "--game-account", &me])
            .args(["schedule", "run", "maps-nightly"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Monday 2026-11-30 04:00:00 UTC, and the next day's run.
    let monday = 1_796_011_200_000_000 + 300_000;
    let tuesday = monday + 86_400_000_000;
    let (code, said) = timer_run(monday);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("done: maps: 2 fetched anew, 0 unchanged, 0 removed"),
        "{said}"
    );
    // A second start for the same due time does nothing.
    let (_, again) = timer_run(monday);
    assert!(again.contains("happened already"), "{again}");
    // The Workshop has a new version of one item by the next run.
    fake.item(2, FakeItem::vpk("Two", "a/two.vpk", 2500, 20));
    let (code, said) = timer_run(tuesday);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("done: maps: 1 fetched anew, 1 unchanged, 0 removed"),
        "{said}"
    );
    assert_eq!(
        addons(&agent),
        [("one.vpk".to_owned(), 1000), ("two.vpk".to_owned(), 2500)]
    );
    // An item gone from the Workshop: the run fails, the others stay, the outbox says so.
    write_list("1,2,3");
    let (code, said) = timer_run(tuesday + 86_400_000_000);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("FAILED: maps: 0 fetched anew, 2 unchanged"),
        "{said}"
    );
    assert!(said.contains("could not fetch 3"), "{said}");
    let events = agent.ok(&["events", "--json"], None);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let outcomes: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["done", "skipped", "done", "failed"]);
}
