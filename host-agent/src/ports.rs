//! Which ports are taken on this host, read from the kernel's socket tables
//! (`/proc/net/{udp,udp6,tcp,tcp6}`): every bound UDP socket and every listening TCP socket,
//! with the account that holds it. What `initialize` checks a spec's ports against, and where
//! it finds free client and SourceTV ports.

use std::collections::BTreeSet;

/// A port some socket on this host holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub port: u16,
    pub protocol: &'static str,
    pub uid: u32,
}

/// The ports taken on this host now; a table that cannot be read counts as empty.
pub fn taken() -> Vec<Taken> {
    let mut all = Vec::new();
    for (file, protocol) in [
        ("/proc/net/udp", "UDP"),
        ("/proc/net/udp6", "UDP"),
        ("/proc/net/tcp", "TCP"),
        ("/proc/net/tcp6", "TCP"),
    ] {
        if let Ok(text) = std::fs::read_to_string(file) {
            all.extend(parse(&text, protocol));
        }
    }
    all
}

/// The taken ports in one table: UDP sockets bound to a port, TCP sockets listening.
pub fn parse(text: &str, protocol: &'static str) -> Vec<Taken> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, port) = fields.get(1)?.rsplit_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let state = *fields.get(3)?;
            // TCP_LISTEN is 0A; a UDP socket holds its port in any state.
            let holds = protocol == "UDP" || state == "0A";
            (holds && port != 0).then(|| {
                Some(Taken {
                    port,
                    protocol,
                    uid: fields.get(7)?.parse().ok()?,
                })
            })?
        })
        .collect()
}

/// The first port from `from` up that is not in `avoid`.
pub fn first_free(from: u16, avoid: &BTreeSet<u16>) -> Option<u16> {
    (from..=u16::MAX).find(|port| !avoid.contains(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_udp_and_listening_tcp_sockets_are_taken() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                   \x20 12: 00000000:6987 00000000:0000 07 00000000:00000000 00:00000000 00000000   997        0 21345 2 0000000000000000 0\n\
                   \x20 13: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 0\n";
        assert_eq!(
            parse(udp, "UDP"),
            [
                Taken {
                    port: 27015,
                    protocol: "UDP",
                    uid: 997
                },
                Taken {
                    port: 53,
                    protocol: "UDP",
                    uid: 0
                }
            ]
        );
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                   \x20  0: 0101007F:6987 00000000:0000 0A 00000000:00000000 00:00000000 00000000   997        0 21346 1 0000000000000000 100 0 0 10 0\n\
                   \x20  1: 0100007F:8F2A 0100007F:6987 01 00000000:00000000 00:00000000 00000000  1000        0 21347 1 0000000000000000 20 4 30 10 -1\n";
        // The connected client socket holds no port others would bind.
        assert_eq!(
            parse(tcp, "TCP"),
            [Taken {
                port: 27015,
                protocol: "TCP",
                uid: 997
            }]
        );
    }

    #[test]
    fn the_first_free_port_skips_what_is_taken() {
        let avoid: BTreeSet<u16> = [27005, 27006, 27008].into();
        assert_eq!(first_free(27005, &avoid), Some(27007));
        assert_eq!(first_free(u16::MAX, &[u16::MAX].into()), None);
    }
}
