//! The `natural_order` collation: names ordered as people count, so `coop-2` comes before
//! `coop-10` and `Alpha` beside `alpha`.

use std::cmp::Ordering;

/// The collation's name in SQL: `ORDER BY name COLLATE natural_order`.
pub const COLLATION: &str = "natural_order";

/// Compares runs of digits by their value and the text between them without regard to
/// case; names equal that way are ordered by their bytes, so the order is total.
pub fn cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        match (x.chars().next(), y.chars().next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (m, rest_x) = split_digits(x);
                let (n, rest_y) = split_digits(y);
                // Without leading zeros, a longer run is a larger number.
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                let order = m.len().cmp(&n.len()).then_with(|| m.cmp(n));
                if order != Ordering::Equal {
                    return order;
                }
                (x, y) = (rest_x, rest_y);
            }
            (Some(c), Some(d)) => {
                let order = c.to_lowercase().cmp(d.to_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                (x, y) = (&x[c.len_utf8()..], &y[d.len_utf8()..]);
            }
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()))
}

#[cfg(test)]
mod tests {
    use super::cmp;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| cmp(a, b));
        v
    }

    #[test]
    fn numbers_by_value_letters_without_case() {
        assert_eq!(
            sorted(&["coop-10", "coop-2", "coop-1", "Coop-3", "coop-0", "versus"]),
            ["coop-0", "coop-1", "coop-2", "Coop-3", "coop-10", "versus"]
        );
        assert_eq!(
            sorted(&["h10", "h9", "h009", "h1a"]),
            ["h1a", "h009", "h9", "h10"]
        );
        assert_eq!(sorted(&["b", "a", "", "ä", "B"]), ["", "a", "B", "b", "ä"]);
    }

    #[test]
    fn only_equal_names_compare_equal() {
        use std::cmp::Ordering::*;
        assert_eq!(cmp("coop-1", "coop-1"), Equal);
        assert_ne!(cmp("coop-01", "coop-1"), Equal);
        assert_ne!(cmp("Coop", "coop"), Equal);
        assert_eq!(cmp("a2", "a10"), Less);
        assert_eq!(cmp("a10", "a2"), Greater);
    }
}
