//! A desktop notification service on the test run's private session bus, recording what
//! the app raises through the freedesktop `Notify` call instead of drawing it. One test at a
//! time may own the service's name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Title and body of each notification received, in order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

pub struct Recorder {
    seen: Seen,
    _bus: zbus::Connection,
}

struct Service {
    seen: Seen,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Service {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut seen = self.seen.lock().unwrap();
        seen.push((summary, body));
        seen.len() as u32
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "left4me-test".into(),
            "left4me".into(),
            "1.0".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

impl Recorder {
    /// Owns `org.freedesktop.Notifications` on `$DBUS_SESSION_BUS_ADDRESS`.
    pub async fn start() -> Recorder {
        let seen = Seen::default();
        let bus = zbus::connection::Builder::session()
            .expect("the test's session bus (run `cargo xtask test`)")
            .name("org.freedesktop.Notifications")
            .unwrap()
            .serve_at(
                "/org/freedesktop/Notifications",
                Service { seen: seen.clone() },
            )
            .unwrap()
            .build()
            .await
            .expect("own the notification service's name");
        Recorder { seen, _bus: bus }
    }

    /// Waits for a notification whose title contains `title`; returns its body.
    pub async fn wait_for(&self, title: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some((_, body)) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|(summary, _)| summary.contains(title))
            {
                return body.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no notification titled {title:?}; seen: {:?}",
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
