//! The notifier on this machine, against local receivers: what it does when a target
//! fails for a while, and when it refuses for good.

use l4d2_agent::events::{Outbox, now_micros};
use l4d2_agent::notify;
use left4me_protocol::events::{EventKind, StopCause};
use std::time::{Duration, Instant};

fn crash_of(automation: &std::path::Path, server: &str) {
    let event = Outbox::new(automation)
        .record(
            Some(server),
            EventKind::Crashed {
                cause: StopCause::Exited { status: 1 },
                last_lines: vec!["bye".into()],
            },
            now_micros(),
        )
        .unwrap();
    notify::enqueue(automation, &event, "box-1").unwrap();
}

fn targets(automation: &std::path::Path, url: &str) {
    let json = format!(
        r#"{{"targets":[{{"name":"ops","kind":"discord","url":"{url}/api/webhooks/1/t"}}]}}"#
    );
    notify::set(automation, json.as_bytes()).unwrap();
}

#[test]
fn a_target_that_fails_for_a_while_gets_the_message_at_a_later_try() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = testkit::Receiver::answering("127.0.0.1", &[503]);
    targets(dir.path(), &receiver.base);
    crash_of(dir.path(), "coop-1");
    let began = Instant::now();
    notify::run(dir.path(), "box-1").unwrap();
    // The first backoff step, then delivered; nothing is left waiting.
    assert!(
        began.elapsed() >= notify::BACKOFF[0],
        "{:?}",
        began.elapsed()
    );
    let got = receiver.received();
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 204]);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        std::fs::read_dir(dir.path().join("outgoing"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_target_that_refuses_for_good_is_given_up_at_once_and_that_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = testkit::Receiver::answering("127.0.0.1", &[404]);
    targets(dir.path(), &receiver.base);
    crash_of(dir.path(), "coop-1");
    let began = Instant::now();
    notify::run(dir.path(), "box-1").unwrap();
    assert!(began.elapsed() < Duration::from_secs(5), "no retry");
    assert_eq!(receiver.received().len(), 1);
    let events = Outbox::new(dir.path()).after(0).unwrap().events;
    let last = &events.last().unwrap().what;
    match last {
        EventKind::NotificationFailed { target, reason } => {
            assert_eq!(target, "ops");
            assert!(reason.contains("HTTP 404"), "{reason}");
            assert!(!reason.contains("/api/webhooks"), "no URL in it: {reason}");
        }
        other => panic!("{other:?}"),
    }
    // The failure itself is not sent anywhere.
    assert_eq!(
        std::fs::read_dir(dir.path().join("outgoing"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_host_without_targets_queues_nothing_and_a_second_notifier_leaves_at_once() {
    let dir = tempfile::tempdir().unwrap();
    crash_of(dir.path(), "coop-1");
    assert!(!dir.path().join("outgoing").exists());
    let receiver = testkit::Receiver::answering("127.0.0.1", &[]);
    targets(dir.path(), &receiver.base);
    crash_of(dir.path(), "coop-2");
    // One notifier at a time: another one that finds it running leaves the work to it.
    let lock = std::fs::File::create(dir.path().join(".notify.lock")).unwrap();
    lock.lock().unwrap();
    notify::run(dir.path(), "box-1").unwrap();
    assert_eq!(receiver.received().len(), 0);
    drop(lock);
    notify::run(dir.path(), "box-1").unwrap();
    assert_eq!(receiver.received().len(), 1);
}
