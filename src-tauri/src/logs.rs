//! The server logs the window follows. Each follow's lines wait here until the window asks
//! for them (`log_lines`), and the window asks again only once it has drawn the last
//! answer: a flood costs one answer a frame, and never queues in the window behind what it
//! has not drawn yet.

use left4me_protocol::agent::LogLine;
use left4me_protocol::model::LogPoll;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The most lines one answer carries.
pub const MAX_LINES: usize = 5000;
/// How long an answer waits for a line before it answers none.
pub const QUIET: Duration = Duration::from_secs(20);

/// The follows of this window, at most one per server.
#[derive(Default)]
pub struct Follows {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    last_id: u64,
    by_server: HashMap<i64, Arc<Follow>>,
}

struct Follow {
    id: u64,
    /// Taken by one `next` at a time.
    lines: tokio::sync::Mutex<mpsc::Receiver<LogLine>>,
    /// Set once the follow is stopped, waking a `next` that waits.
    stopped: watch::Sender<bool>,
}

impl Follows {
    /// Keeps `lines` as the server's follow and answers its id; an older follow of the
    /// server ends.
    pub fn start(&self, server_id: i64, lines: mpsc::Receiver<LogLine>) -> u64 {
        let mut inner = self.lock();
        inner.last_id += 1;
        let follow = Arc::new(Follow {
            id: inner.last_id,
            lines: tokio::sync::Mutex::new(lines),
            stopped: watch::Sender::new(false),
        });
        if let Some(old) = inner.by_server.insert(server_id, follow) {
            old.stop();
        }
        inner.last_id
    }

    /// Ends the follow `id` (its remote `logs --follow` ends once no `next` holds it); an
    /// unknown id is one that already ended.
    pub fn stop(&self, id: u64) {
        let mut inner = self.lock();
        inner.by_server.retain(|_, follow| {
            if follow.id == id {
                follow.stop();
            }
            follow.id != id
        });
    }

    /// Ends every follow (at logout).
    pub fn stop_all(&self) {
        for (_, follow) in self.lock().by_server.drain() {
            follow.stop();
        }
    }

    /// The lines of follow `id` that came since the last call, at most `max`: at once when
    /// there are some, else as soon as one comes, or none after `quiet`. Ended when the
    /// follow was stopped, replaced, or its stream closed.
    pub async fn next(&self, id: u64, max: usize, quiet: Duration) -> LogPoll {
        let ended = LogPoll {
            lines: Vec::new(),
            ended: true,
        };
        let Some(follow) = self.lock().by_server.values().find(|f| f.id == id).cloned() else {
            return ended;
        };
        let mut stopped = follow.stopped.subscribe();
        let wait = async {
            let mut receiver = follow.lines.lock().await;
            let mut lines = Vec::new();
            let count = receiver.recv_many(&mut lines, max).await;
            LogPoll {
                lines,
                ended: count == 0,
            }
        };
        let poll = tokio::select! {
            biased;
            _ = stopped.wait_for(|stopped| *stopped) => ended,
            poll = wait => poll,
            () = tokio::time::sleep(quiet) => LogPoll { lines: Vec::new(), ended: false },
        };
        if poll.ended {
            // A stream that closed takes its follow with it.
            self.lock().by_server.retain(|_, f| f.id != id);
        }
        poll
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Follow {
    fn stop(&self) {
        self.stopped.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            timestamp: "2026-12-01T12:00:00.000000Z".into(),
            message: text.into(),
        }
    }

    fn texts(poll: &LogPoll) -> Vec<&str> {
        poll.lines.iter().map(|l| l.message.as_str()).collect()
    }

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn an_answer_carries_every_line_that_came_since_the_last_one_up_to_the_most() {
        let follows = Follows::default();
        let (tx, rx) = mpsc::channel(16);
        let id = follows.start(7, rx);
        for text in ["a", "b", "c"] {
            tx.send(line(text)).await.unwrap();
        }
        let poll = follows.next(id, 2, LONG).await;
        assert_eq!((texts(&poll), poll.ended), (vec!["a", "b"], false));
        let poll = follows.next(id, 2, LONG).await;
        assert_eq!((texts(&poll), poll.ended), (vec!["c"], false));
    }

    #[tokio::test]
    async fn a_waiting_answer_comes_with_the_next_line_or_empty_after_the_quiet_time() {
        let follows = Arc::new(Follows::default());
        let (tx, rx) = mpsc::channel(16);
        let id = follows.start(7, rx);
        let poll = follows.next(id, MAX_LINES, Duration::from_millis(20)).await;
        assert_eq!((poll.lines.len(), poll.ended), (0, false));
        let waiting = tokio::spawn({
            let follows = follows.clone();
            async move { follows.next(id, MAX_LINES, LONG).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(line("late")).await.unwrap();
        let poll = waiting.await.unwrap();
        assert_eq!((texts(&poll), poll.ended), (vec!["late"], false));
    }

    #[tokio::test]
    async fn stopping_ends_a_waiting_answer_and_lets_go_of_the_stream() {
        let follows = Arc::new(Follows::default());
        let (tx, rx) = mpsc::channel(16);
        let id = follows.start(7, rx);
        let waiting = tokio::spawn({
            let follows = follows.clone();
            async move { follows.next(id, MAX_LINES, LONG).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        follows.stop(id);
        assert!(waiting.await.unwrap().ended);
        // The receiver is dropped: app-core's reader sees it and ends the remote follow.
        tokio::time::timeout(LONG, tx.closed()).await.unwrap();
        assert!(follows.next(id, MAX_LINES, LONG).await.ended);
    }

    #[tokio::test]
    async fn a_newer_follow_of_the_server_ends_the_older_and_others_go_on() {
        let follows = Follows::default();
        let (old_tx, old) = mpsc::channel(16);
        let (_tx, new) = mpsc::channel(16);
        let (other_tx, other) = mpsc::channel(16);
        let old_id = follows.start(7, old);
        let other_id = follows.start(8, other);
        let new_id = follows.start(7, new);
        assert_ne!(old_id, new_id);
        // The older stream is let go at once: its remote follow ends.
        assert!(old_tx.send(line("stale")).await.is_err());
        assert!(follows.next(old_id, MAX_LINES, LONG).await.ended);
        other_tx.send(line("other")).await.unwrap();
        let poll = follows.next(other_id, MAX_LINES, LONG).await;
        assert_eq!((texts(&poll), poll.ended), (vec!["other"], false));
        follows.stop_all();
        assert!(follows.next(new_id, MAX_LINES, LONG).await.ended);
        assert!(follows.next(other_id, MAX_LINES, LONG).await.ended);
    }

    #[tokio::test]
    async fn a_closed_stream_ends_its_follow_after_its_last_lines() {
        let follows = Follows::default();
        let (tx, rx) = mpsc::channel(16);
        let id = follows.start(7, rx);
        tx.send(line("last")).await.unwrap();
        drop(tx);
        let poll = follows.next(id, MAX_LINES, LONG).await;
        assert_eq!((texts(&poll), poll.ended), (vec!["last"], false));
        assert!(follows.next(id, MAX_LINES, LONG).await.ended);
        // Gone: asking again does not wait.
        assert!(follows.next(id, MAX_LINES, LONG).await.ended);
    }
}
