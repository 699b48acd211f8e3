//! Notification targets, checked the same way by the window, the app and the host before
//! anything is saved: names, the secrets each kind needs, and URLs that go out over HTTPS
//! (plain HTTP only to the host itself or a private network, where TLS is the admin's
//! choice). Errors never quote a URL past its host: its path may hold a token.

use crate::agent::{NotifyKind, NotifyTarget};

/// The most targets a host sends to.
pub const MAX_TARGETS: usize = 8;

/// The parts of a target's URL that decide where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl Endpoint {
    /// Reads `scheme://host[:port][/path][?query]`, refusing what a notification target
    /// must not be.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        if url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
            return Err("the URL is too long or holds spaces or control characters".to_owned());
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!("{:?} is not a URL", redact(url)));
        };
        let scheme = scheme.to_ascii_lowercase();
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err("the URL must not carry a user name or password".to_owned());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (inside, after) = v6
                    .split_once(']')
                    .ok_or_else(|| "the URL's address is not closed with ']'".to_owned())?;
                (format!("[{inside}]"), after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (authority.to_owned(), None),
            },
        };
        let host = host.to_ascii_lowercase();
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        {
            return Err("the URL has no valid host".to_owned());
        }
        let port = match port {
            None => None,
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| "the URL's port is not a port number".to_owned())?,
            ),
        };
        let path = path.split(['?', '#']).next().unwrap_or("").to_owned();
        let endpoint = Endpoint {
            scheme,
            host,
            port,
            path,
        };
        match endpoint.scheme.as_str() {
            "https" => Ok(endpoint),
            "http" if endpoint.is_local() => Ok(endpoint),
            "http" => Err(format!(
                "{}: use https (plain http only to the host itself or a private network)",
                endpoint.origin()
            )),
            other => Err(format!("the URL's scheme {other:?} is not https")),
        }
    }

    /// Loopback, private (RFC 1918, RFC 4193) or link-local addresses, and `localhost`.
    pub fn is_local(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" {
            return true;
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local()
            }
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00
            }
            Err(_) => false,
        }
    }

    /// `https://discord.com`: where it goes, without path, query or token.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

/// A URL as a message may show it: scheme and host only.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}/…")
        }
        None => "…".to_owned(),
    }
}

/// Where a target's messages go, for lists: its URL's origin.
pub fn endpoint_of(url: &str) -> String {
    Endpoint::parse(url)
        .map(|e| e.origin())
        .unwrap_or_else(|_| redact(url))
}

/// Checks one target on its own.
pub fn validate_target(target: &NotifyTarget) -> Result<(), String> {
    let name = &target.name;
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "notification target {name:?}: a name is 1 to 32 lower-case letters, digits and '-'"
        ));
    }
    let endpoint =
        Endpoint::parse(&target.url).map_err(|why| format!("notification target {name}: {why}"))?;
    if target.kind == NotifyKind::Ntfy && endpoint.path.trim_matches('/').is_empty() {
        return Err(format!(
            "notification target {name}: an ntfy URL names its topic, like https://ntfy.sh/my-servers"
        ));
    }
    match (&target.kind, &target.secret) {
        (NotifyKind::Webhook, None) => Err(format!(
            "notification target {name}: a webhook needs a shared secret to sign with"
        )),
        (NotifyKind::Gotify, None) => Err(format!(
            "notification target {name}: Gotify needs an application token"
        )),
        (_, Some(secret))
            if secret.is_empty() || secret.len() > 512 || secret.chars().any(char::is_control) =>
        {
            Err(format!(
                "notification target {name}: the secret must be 1 to 512 characters without control characters"
            ))
        }
        _ => Ok(()),
    }
}

/// Checks a host's whole list: each target, their number, and unique names.
pub fn validate_targets(targets: &[NotifyTarget]) -> Result<(), String> {
    if targets.len() > MAX_TARGETS {
        return Err(format!(
            "{} notification targets: at most {MAX_TARGETS}",
            targets.len()
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for target in targets {
        validate_target(target)?;
        if !names.insert(target.name.as_str()) {
            return Err(format!(
                "notification target {:?} is named twice",
                target.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: NotifyKind, url: &str, secret: Option<&str>) -> NotifyTarget {
        NotifyTarget {
            name: "t".into(),
            kind,
            url: url.into(),
            secret: secret.map(Into::into),
        }
    }

    fn check(kind: NotifyKind, url: &str, secret: Option<&str>) -> Result<(), String> {
        validate_targets(&[target(kind, url, secret)])
    }

    #[test]
    fn targets_are_checked_before_they_are_saved() {
        use NotifyKind::*;
        let discord = "https://discord.com/api/webhooks/1/tok";
        assert_eq!(check(Discord, discord, None), Ok(()));
        assert_eq!(check(Ntfy, "http://10.213.77.1:8080/left4me", None), Ok(()));
        assert_eq!(check(Gotify, "http://[::1]:80", Some("tok")), Ok(()));
        assert_eq!(check(Gotify, "HTTP://LOCALHOST", Some("tok")), Ok(()));
        let refused = [
            (
                check(Discord, "http://discord.com/api/webhooks/1/tok", None),
                "notification target t: http://discord.com: use https (plain http only to the host itself or a private network)",
            ),
            (
                check(Discord, "http://11.0.0.1/x", None),
                "notification target t: http://11.0.0.1: use https (plain http only to the host itself or a private network)",
            ),
            (
                check(Discord, "ftp://x/y", None),
                "notification target t: the URL's scheme \"ftp\" is not https",
            ),
            (
                check(Discord, "discord.com/api/webhooks/1/tok", None),
                "notification target t: \"…\" is not a URL",
            ),
            (
                check(Discord, "https://user:pw@x/y", None),
                "notification target t: the URL must not carry a user name or password",
            ),
            (
                check(Discord, "https://x:99999/y", None),
                "notification target t: the URL's port is not a port number",
            ),
            (
                check(Discord, "https:///y", None),
                "notification target t: the URL has no valid host",
            ),
            (
                check(Webhook, "https://x/hook", None),
                "notification target t: a webhook needs a shared secret to sign with",
            ),
            (
                check(Gotify, "https://x", None),
                "notification target t: Gotify needs an application token",
            ),
            (
                check(Ntfy, "https://ntfy.sh/", None),
                "notification target t: an ntfy URL names its topic, like https://ntfy.sh/my-servers",
            ),
            (
                check(Discord, "https://x/a\nb", None),
                "notification target t: the URL is too long or holds spaces or control characters",
            ),
        ];
        for (got, want) in refused {
            assert_eq!(got, Err(want.to_owned()));
        }
        let twice = [
            target(Discord, discord, None),
            target(Discord, discord, None),
        ];
        assert_eq!(
            validate_targets(&twice),
            Err("notification target \"t\" is named twice".to_owned())
        );
        assert_eq!(endpoint_of(discord), "https://discord.com");
        assert_eq!(
            endpoint_of("http://10.0.0.1:8080/x?t=1"),
            "http://10.0.0.1:8080"
        );
    }
}
