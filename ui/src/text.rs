//! Numbers as people read them (sizes: `left4me_protocol::units::human_bytes`).

/// `1 line`, `3 lines`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How long someone has been connected: `40 s`, `12 min`, `1 h 05 min`.
pub fn duration(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m:02} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        for (seconds, want) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min"),
            (3599, "59 min"),
            (3600, "1 h 00 min"),
            (3725, "1 h 02 min"),
            (90_000, "25 h 00 min"),
        ] {
            assert_eq!(duration(seconds), want, "{seconds} s");
        }
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "line", "lines"), "1 line");
        assert_eq!(count(0, "line", "lines"), "0 lines");
        assert_eq!(count(3, "item", "items"), "3 items");
    }
}
