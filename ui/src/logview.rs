//! A followed server log as the window keeps it: every line that arrives is counted and
//! kept (up to a bound, oldest dropped first, and the count of dropped lines shown), the
//! view can be paused while lines keep arriving, and searched. Only the newest lines are
//! rendered: in chunks of consecutive lines keyed by their first line's number, so a batch
//! adds and changes only the newest chunks and the browser lays out only those (a search
//! renders its matches as one block of text).

use left4me_protocol::agent::LogLine;
use std::collections::VecDeque;

/// Lines kept in memory per followed log.
pub const KEEP: usize = 50_000;
/// Lines rendered at once (at least; in whole chunks).
pub const SHOW: usize = 1_000;
/// Lines in one rendered chunk. Small, as the window lays out only the chunks in sight
/// (`content-visibility`): a flood's lines that scroll past within a frame cost no layout.
pub const CHUNK: u64 = 20;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogView {
    /// Each line with its number (from 1, in arrival order).
    lines: VecDeque<(u64, LogLine)>,
    /// Lines received so far.
    pub received: u64,
    /// The last line number the view shows while paused.
    paused_at: Option<u64>,
}

impl LogView {
    pub fn push(&mut self, batch: Vec<LogLine>) {
        for line in batch {
            self.received += 1;
            if self.lines.len() == KEEP {
                self.lines.pop_front();
            }
            self.lines.push_back((self.received, line));
        }
    }

    /// Lines that no longer fit and were dropped from memory.
    pub fn dropped(&self) -> u64 {
        self.received - self.lines.len() as u64
    }

    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Pauses the view on what it shows now, or follows the log again.
    pub fn toggle_pause(&mut self) {
        self.paused_at = match self.paused_at {
            Some(_) => None,
            None => Some(self.received),
        };
    }

    /// Lines that arrived since the view was paused.
    pub fn held(&self) -> u64 {
        self.paused_at.map_or(0, |at| self.received - at)
    }

    /// The lines kept up to the pause.
    pub fn kept(&self) -> usize {
        self.lines.len() - self.held().min(self.lines.len() as u64) as usize
    }

    /// The newest lines up to the pause, at least `SHOW` of them where there are, in whole
    /// chunks of `CHUNK` lines by number: each chunk's first line number and its text. A
    /// chunk's text changes only while it is the newest.
    pub fn chunks(&self) -> Vec<(u64, String)> {
        let upto = self.paused_at.unwrap_or(self.received).min(self.received);
        let Some(oldest) = self.lines.front().map(|(n, _)| *n) else {
            return Vec::new();
        };
        let from = upto.saturating_sub(SHOW as u64) + 1;
        let mut n = ((from - 1) / CHUNK * CHUNK + 1).max(oldest);
        let mut chunks = Vec::new();
        while n <= upto {
            let start = (n - 1) / CHUNK * CHUNK + 1;
            let end = (start + CHUNK - 1).min(upto);
            let mut text = String::new();
            for number in n..=end {
                write_line(&mut text, &self.lines[(number - oldest) as usize].1);
            }
            chunks.push((start, text));
            n = end + 1;
        }
        chunks
    }

    /// The newest `SHOW` lines up to the pause that contain `search` (any case), oldest
    /// first, as one text; and how many lines matched in all.
    pub fn render(&self, search: &str) -> (String, usize) {
        let needle = search.to_lowercase();
        let upto = self.paused_at.unwrap_or(u64::MAX);
        let matching = self
            .lines
            .iter()
            .rev()
            .filter(|(n, _)| *n <= upto)
            .filter(|(_, l)| needle.is_empty() || l.message.to_lowercase().contains(&needle));
        let mut shown: Vec<&LogLine> = Vec::new();
        let mut count = 0;
        for (_, line) in matching {
            if shown.len() < SHOW {
                shown.push(line);
            }
            count += 1;
        }
        let mut text = String::new();
        for line in shown.iter().rev() {
            write_line(&mut text, line);
        }
        (text, count)
    }
}

/// A line as the view shows it: `2026-11-26T13:02:03.123456Z` → `13:02:03`, its message.
fn write_line(text: &mut String, line: &LogLine) {
    let time = line.timestamp.get(11..19).unwrap_or(&line.timestamp);
    text.push_str(time);
    text.push(' ');
    text.push_str(&line.message);
    text.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64) -> LogLine {
        LogLine {
            timestamp: format!("2026-11-26T13:02:{:02}.000000Z", n % 60),
            message: format!("line {n}"),
        }
    }

    #[test]
    fn every_line_is_counted_and_the_newest_shown() {
        let mut view = LogView::default();
        view.push((1..=3).map(line).collect());
        assert_eq!(
            view.render(""),
            (
                "13:02:01 line 1\n13:02:02 line 2\n13:02:03 line 3\n".into(),
                3
            )
        );
        view.push((4..=(KEEP as u64 + 10)).map(line).collect());
        assert_eq!(view.received, KEEP as u64 + 10);
        assert_eq!(view.dropped(), 10);
        let (text, count) = view.render("");
        assert_eq!(count, KEEP);
        assert_eq!(text.lines().count(), SHOW);
        assert!(text.ends_with(&format!("line {}\n", KEEP + 10)));
    }

    #[test]
    fn the_newest_lines_come_in_chunks_of_which_only_the_newest_change() {
        let mut view = LogView::default();
        view.push((1..=250).map(line).collect());
        let chunks = view.chunks();
        let keys: Vec<u64> = chunks.iter().map(|(k, _)| *k).collect();
        let starts: Vec<u64> = (0..250u64.div_ceil(CHUNK)).map(|i| i * CHUNK + 1).collect();
        assert_eq!(keys, starts);
        assert!(chunks[0].1.starts_with("13:02:01 line 1\n"));
        assert_eq!(
            chunks.last().unwrap().1.lines().count() as u64,
            (250 - 1) % CHUNK + 1
        );
        // More lines: the full chunks stay as they were, the newest grows, new ones follow.
        view.push((251..=2_470).map(line).collect());
        let later = view.chunks();
        // At least SHOW lines, in whole chunks: from the chunk holding line 1,471.
        assert_eq!(later.first().unwrap().0, 1_470 / CHUNK * CHUNK + 1);
        assert_eq!(later.last().unwrap().0, 2_469 / CHUNK * CHUNK + 1);
        let shown: usize = later.iter().map(|(_, t)| t.lines().count()).sum();
        assert!((SHOW..SHOW + CHUNK as usize).contains(&shown), "{shown}");
        assert!(later.last().unwrap().1.ends_with("line 2470\n"));
        // Five more stay in the newest chunk (which is not full): only it changes.
        const { assert!(2_470 % CHUNK + 5 <= CHUNK) };
        let again = {
            view.push((2_471..=2_475).map(line).collect());
            view.chunks()
        };
        assert_eq!(&again[..again.len() - 1], &later[..later.len() - 1]);
        assert_ne!(again.last(), later.last());
        // Paused: the chunks end at the pause while lines keep coming.
        view.toggle_pause();
        view.push((2_476..=2_600).map(line).collect());
        assert!(view.chunks().last().unwrap().1.ends_with("line 2475\n"));
        assert_eq!(view.kept(), 2_475);
    }

    #[test]
    fn a_paused_view_holds_still_while_lines_keep_coming() {
        let mut view = LogView::default();
        view.push((1..=5).map(line).collect());
        view.toggle_pause();
        view.push((6..=9).map(line).collect());
        assert_eq!(view.held(), 4);
        assert!(view.render("").0.ends_with("line 5\n"));
        view.toggle_pause();
        assert_eq!(view.held(), 0);
        assert!(view.render("").0.ends_with("line 9\n"));
    }

    #[test]
    fn search_ignores_case_and_counts_matches() {
        let mut view = LogView::default();
        view.push(vec![
            LogLine {
                timestamp: "t".into(),
                message: "Player Ellis connected".into(),
            },
            line(1),
            LogLine {
                timestamp: "t".into(),
                message: "ellis: hello".into(),
            },
        ]);
        assert_eq!(
            view.render("ELLIS"),
            ("t Player Ellis connected\nt ellis: hello\n".into(), 2)
        );
        assert_eq!(view.render("nobody"), (String::new(), 0));
    }
}
