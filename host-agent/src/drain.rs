//! Draining a server before something stops it: players are told with `say`, and the stop
//! waits until the last human has left, or until a deadline. LinuxGSM's
//! `stoponlyifnoplayers` and AMP's "wait for empty" are what admins ask the peers for; the
//! countdown is what players ask for.

use std::time::Duration;

/// When the countdown speaks, as time left before the deadline.
const MARKS: [Duration; 4] = [
    Duration::from_secs(600),
    Duration::from_secs(300),
    Duration::from_secs(60),
    Duration::from_secs(10),
];
/// Looks in a row without an answer after which the server counts as not answering (a
/// hung or crashed game has nobody to wait for).
const MISSES: u32 = 3;
/// How often the players are counted.
pub const POLL: Duration = Duration::from_secs(5);

/// The server being drained.
pub trait Players {
    /// Human players on it now; `None` when it did not answer.
    fn humans(&mut self) -> Option<u32>;
    /// Tells the players something.
    fn say(&mut self, text: &str);
    /// Whether whoever waits has stopped waiting (a rollout paused): asked at each count.
    fn called_off(&mut self) -> bool {
        false
    }
}

/// Time, so that tests need not wait.
pub trait Clock {
    /// Time since the drain began.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, span: Duration);
}

/// How a drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained {
    /// Nobody is (or is left) on it; `waited` is how long that took.
    Empty { waited: Duration },
    /// The deadline came with players still on.
    Deadline { humans: u32 },
    /// The server stopped answering, so nobody could be counted.
    NoAnswer,
    /// Whoever waited stopped waiting; nothing was done to the server.
    CalledOff,
}

impl Drained {
    /// A phrase for after "restarted": "after the last player left (3 min)".
    pub fn describe(&self) -> String {
        match self {
            Drained::Empty { waited } if waited.is_zero() => "with nobody on".to_owned(),
            Drained::Empty { waited } => format!(
                "after the last player left ({})",
                match waited.as_secs() {
                    s if s >= 60 => format!("{} min", s / 60),
                    s => format!("{s} s"),
                }
            ),
            Drained::Deadline { humans: 1 } => "at its deadline, with 1 player still on".to_owned(),
            Drained::Deadline { humans } => {
                format!("at its deadline, with {humans} players still on")
            }
            Drained::NoAnswer => "without waiting: it answered no query".to_owned(),
            Drained::CalledOff => "not yet: the wait was called off".to_owned(),
        }
    }
}

/// Time left, rounded up to the second: 299.9 s is "5 minutes".
fn in_words(left: Duration) -> String {
    match left.as_secs_f64().ceil() as u64 {
        s if s >= 120 => format!("{} minutes", s / 60),
        s if s >= 60 => "1 minute".to_owned(),
        s => format!("{s} seconds"),
    }
}

/// Waits until `players` has no human on it, at most `deadline`, telling them what is
/// coming (`what`, e.g. "restarts"): once at the start, then 10 and 5 minutes, 1 minute and
/// 10 seconds before the deadline.
pub fn drain(
    players: &mut dyn Players,
    clock: &dyn Clock,
    deadline: Duration,
    what: &str,
) -> Drained {
    let mut misses = 0;
    let mut told_start = false;
    // The marks still to speak at: those inside the deadline, after the first message.
    let mut marks: Vec<Duration> = MARKS.iter().copied().filter(|m| *m < deadline).collect();
    loop {
        if players.called_off() {
            return Drained::CalledOff;
        }
        let elapsed = clock.elapsed();
        match players.humans() {
            Some(0) => return Drained::Empty { waited: elapsed },
            Some(humans) => {
                misses = 0;
                if elapsed >= deadline {
                    players.say(&format!("This server {what} now."));
                    return Drained::Deadline { humans };
                }
                let left = deadline - elapsed;
                if !told_start {
                    told_start = true;
                    players.say(&format!(
                        "Scheduled: this server {what} when the last player leaves, at the latest in {}.",
                        in_words(left)
                    ));
                    marks.retain(|m| *m < left);
                } else if let Some(mark) = marks.iter().position(|m| left <= *m) {
                    let spoken = marks[mark];
                    marks.retain(|m| *m < spoken);
                    players.say(&format!("This server {what} in {}.", in_words(left)));
                }
            }
            None => {
                misses += 1;
                if misses >= MISSES {
                    return Drained::NoAnswer;
                }
            }
        }
        let left = deadline.saturating_sub(clock.elapsed());
        // Wake for the next mark or the deadline, if either comes before the next count.
        let next_mark = marks
            .iter()
            .map(|m| left.saturating_sub(*m))
            .filter(|d| !d.is_zero())
            .min()
            .unwrap_or(left);
        clock.sleep(
            POLL.min(next_mark)
                .min(left)
                .max(Duration::from_millis(100)),
        );
    }
}

/// The real clock.
pub struct Wall(pub std::time::Instant);

impl Clock for Wall {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, span: Duration) {
        std::thread::sleep(span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A server whose humans follow a script of (from this second on, this many).
    struct Scripted<'c> {
        clock: &'c Fake,
        humans: Vec<(u64, Option<u32>)>,
        said: Vec<(u64, String)>,
    }

    impl Players for Scripted<'_> {
        fn humans(&mut self) -> Option<u32> {
            let now = self.clock.now.get();
            self.humans
                .iter()
                .rev()
                .find(|(from, _)| *from <= now)
                .and_then(|(_, n)| *n)
        }

        fn say(&mut self, text: &str) {
            self.said.push((self.clock.now.get(), text.to_owned()));
        }
    }

    struct Fake {
        /// Whole seconds since the start.
        now: Cell<u64>,
    }

    impl Clock for Fake {
        fn elapsed(&self) -> Duration {
            Duration::from_secs(self.now.get())
        }

        fn sleep(&self, span: Duration) {
            self.now.set(self.now.get() + span.as_secs().max(1));
        }
    }

    fn run(humans: Vec<(u64, Option<u32>)>, minutes: u64) -> (Drained, Vec<(u64, String)>) {
        let clock = Fake { now: Cell::new(0) };
        let mut server = Scripted {
            clock: &clock,
            humans,
            said: Vec::new(),
        };
        let drained = drain(
            &mut server,
            &clock,
            Duration::from_secs(minutes * 60),
            "restarts",
        );
        (drained, server.said)
    }

    #[test]
    fn an_empty_server_is_not_waited_for_nor_told() {
        assert_eq!(
            run(vec![(0, Some(0))], 30),
            (
                Drained::Empty {
                    waited: Duration::ZERO
                },
                vec![]
            )
        );
    }

    #[test]
    fn players_are_told_and_the_drain_ends_when_the_last_leaves() {
        let (drained, said) = run(vec![(0, Some(3)), (100, Some(1)), (400, Some(0))], 15);
        assert_eq!(
            drained,
            Drained::Empty {
                waited: Duration::from_secs(400)
            }
        );
        assert_eq!(
            said,
            vec![
                (
                    0,
                    "Scheduled: this server restarts when the last player leaves, at the latest in 15 minutes."
                        .to_owned()
                ),
                (300, "This server restarts in 10 minutes.".to_owned()),
            ]
        );
    }

    #[test]
    fn the_countdown_speaks_at_its_marks_and_the_deadline_ends_the_wait() {
        let (drained, said) = run(vec![(0, Some(2))], 6);
        assert_eq!(drained, Drained::Deadline { humans: 2 });
        let times: Vec<u64> = said.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, vec![0, 60, 300, 350, 360]);
        assert_eq!(said[1].1, "This server restarts in 5 minutes.");
        assert_eq!(said[2].1, "This server restarts in 1 minute.");
        assert_eq!(said[3].1, "This server restarts in 10 seconds.");
        assert_eq!(said[4].1, "This server restarts now.");
    }

    #[test]
    fn a_server_that_stops_answering_is_not_waited_for() {
        let (drained, _) = run(vec![(0, Some(1)), (20, None)], 30);
        assert_eq!(drained, Drained::NoAnswer);
        // One missed answer is not enough.
        let (drained, _) = run(vec![(0, Some(1)), (20, None), (25, Some(0))], 30);
        assert_eq!(
            drained,
            Drained::Empty {
                waited: Duration::from_secs(25)
            }
        );
    }

    #[test]
    fn no_deadline_means_at_once_after_one_word() {
        let (drained, said) = run(vec![(0, Some(1))], 0);
        assert_eq!(drained, Drained::Deadline { humans: 1 });
        assert_eq!(said, vec![(0, "This server restarts now.".to_owned())]);
    }
}
