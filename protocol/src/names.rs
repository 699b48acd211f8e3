//! Names that end up in paths, unit names and command lines, validated once at the edge.
//!
//! A name is never a path: the character sets below leave no room for `/`, `..`, spaces or
//! shell metacharacters, so code that builds paths from names needs no further checks.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $max:literal, $check:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                let invalid = |reason| InvalidName { kind: $kind, value: value.clone(), reason };
                if value.is_empty() {
                    return Err(invalid("must not be empty"));
                }
                if value.len() > $max {
                    return Err(invalid(concat!("must be at most ", $max, " characters")));
                }
                let check: fn(&str) -> bool = $check;
                if !check(&value) {
                    return Err(invalid($rule));
                }
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `^[a-z0-9][a-z0-9-]*$`: safe in paths, unit instance names and shell words alike.
fn lower_alnum_dash(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

name_type!(
    /// A game server's name on its host: the systemd instance in
    /// `left4me-server@<name>.service` and the folder `runtime/<name>/`.
    ServerName,
    "server name",
    32,
    lower_alnum_dash,
    "use lower-case letters, digits and '-', starting with a letter or digit"
);

name_type!(
    /// An overlay's name: the folder `overlays/<name>/` on a host.
    OverlayName,
    "overlay name",
    32,
    lower_alnum_dash,
    "use lower-case letters, digits and '-', starting with a letter or digit"
);

name_type!(
    /// A schedule's name on its host: the timer `left4me-schedule-<name>.timer`.
    ScheduleName,
    "schedule name",
    32,
    lower_alnum_dash,
    "use lower-case letters, digits and '-', starting with a letter or digit"
);

name_type!(
    /// A map as srcds takes it after `+map` (`c1m1_hotel`).
    MapName,
    "map name",
    64,
    |s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
    "use letters, digits, '_' and '-'"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expect: Result<(), &str>) {
        let got = ServerName::new(input)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(got, expect.map_err(str::to_owned), "input {input:?}");
    }

    #[test]
    fn server_names() {
        check("coop-1", Ok(()));
        check("a", Ok(()));
        check("versus-2", Ok(()));
        check(
            "versus_2",
            Err(
                r#"invalid server name "versus_2": use lower-case letters, digits and '-', starting with a letter or digit"#,
            ),
        );
        check("", Err(r#"invalid server name "": must not be empty"#));
        check(
            "../etc",
            Err(
                r#"invalid server name "../etc": use lower-case letters, digits and '-', starting with a letter or digit"#,
            ),
        );
        check(
            "-rf",
            Err(
                r#"invalid server name "-rf": use lower-case letters, digits and '-', starting with a letter or digit"#,
            ),
        );
        check(
            "a b",
            Err(
                r#"invalid server name "a b": use lower-case letters, digits and '-', starting with a letter or digit"#,
            ),
        );
        check(
            "x@y.service",
            Err(
                r#"invalid server name "x@y.service": use lower-case letters, digits and '-', starting with a letter or digit"#,
            ),
        );
        check(
            &"a".repeat(33),
            Err(
                r#"invalid server name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": must be at most 32 characters"#,
            ),
        );
    }

    #[test]
    fn names_validate_when_deserialised() {
        let err = serde_json::from_str::<OverlayName>(r#""Sourcemod/..""#).unwrap_err();
        assert!(err.to_string().contains("invalid overlay name"), "{err}");
        let ok: MapName = serde_json::from_str(r#""c1m1_hotel""#).unwrap();
        assert_eq!(ok.as_str(), "c1m1_hotel");
    }
}
