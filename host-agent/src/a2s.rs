//! The Source query protocol (A2S) over UDP: the requests the agent sends to learn a running
//! server's name, map and players, the answers it parses, and the encoders the stand-in game
//! server uses. All integers are little-endian; strings are NUL-terminated.
//!
//! L4D2 answers `A2S_INFO` with a challenge first (since mid-2021); a client sends the request
//! again with the challenge appended. Answers too long for one datagram arrive as split
//! packets (`FE FF FF FF` header), which [`Client`] reassembles.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const SIMPLE: [u8; 4] = [0xFF; 4];
const SPLIT: [u8; 4] = [0xFE, 0xFF, 0xFF, 0xFF];
const INFO_REQUEST: u8 = 0x54;
const INFO_REPLY: u8 = 0x49;
const PLAYER_REQUEST: u8 = 0x55;
const PLAYER_REPLY: u8 = 0x44;
const RULES_REQUEST: u8 = 0x56;
const RULES_REPLY: u8 = 0x45;
const CHALLENGE_REPLY: u8 = 0x41;
const INFO_PAYLOAD: &[u8] = b"Source Engine Query\0";

/// The largest datagram a Source server sends; longer answers are split.
pub const MAX_PACKET: usize = 1400;

/// An `A2S_INFO` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    pub protocol: u8,
    pub name: String,
    pub map: String,
    pub folder: String,
    pub game: String,
    pub app_id: u16,
    pub players: u8,
    pub max_players: u8,
    pub bots: u8,
    /// `b'd'` dedicated, `b'l'` listen, `b'p'` SourceTV relay.
    pub server_type: u8,
    /// `b'l'` Linux, `b'w'` Windows, `b'm'` macOS.
    pub environment: u8,
    pub password: bool,
    pub vac: bool,
    pub version: String,
    /// Extra data, present when the server sends it.
    pub port: Option<u16>,
    pub steam_id: Option<u64>,
    pub source_tv: Option<(u16, String)>,
    pub keywords: Option<String>,
    pub game_id: Option<u64>,
}

/// One entry of an `A2S_PLAYER` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    pub index: u8,
    pub name: String,
    pub score: i32,
    /// Seconds connected.
    pub duration: f32,
}

/// A request as the server receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Info { challenge: Option<i32> },
    Players { challenge: i32 },
    Rules { challenge: i32 },
}

/// An answer as the client receives it (after reassembly).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Challenge(i32),
    Info(Info),
    Players(Vec<Player>),
    /// `A2S_RULES`: the server's public cvars (`FCVAR_NOTIFY`), name and value.
    Rules(Vec<(String, String)>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("packet ends early (wanted {wanted} more bytes at offset {at})")]
    Truncated { at: usize, wanted: usize },
    #[error("packet has an unknown header {0:02x?}")]
    Header(Vec<u8>),
    #[error("packet has an unknown type 0x{0:02x}")]
    Kind(u8),
    #[error("A2S_INFO request has the wrong payload")]
    Payload,
    #[error("split packet {number} of {total} is inconsistent")]
    Split { number: u8, total: u8 },
    #[error("split answer is bzip2-compressed, which Source servers of this engine never send")]
    Compressed,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot query {addr}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("malformed answer from {addr}")]
    Malformed {
        addr: SocketAddr,
        #[source]
        source: WireError,
    },
    #[error("{addr} answered with something else than asked for")]
    Unexpected { addr: SocketAddr },
}

// ---- encoding -----------------------------------------------------------------------------

/// `A2S_INFO`, with the challenge appended when the server asked for one.
pub fn info_request(challenge: Option<i32>) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(INFO_REQUEST);
    out.extend_from_slice(INFO_PAYLOAD);
    if let Some(challenge) = challenge {
        out.extend_from_slice(&challenge.to_le_bytes());
    }
    out
}

/// `A2S_PLAYER`; a challenge of -1 asks for one.
pub fn player_request(challenge: i32) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(PLAYER_REQUEST);
    out.extend_from_slice(&challenge.to_le_bytes());
    out
}

pub fn encode_challenge(challenge: i32) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(CHALLENGE_REPLY);
    out.extend_from_slice(&challenge.to_le_bytes());
    out
}

pub fn encode_info(info: &Info) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(INFO_REPLY);
    out.push(info.protocol);
    for text in [&info.name, &info.map, &info.folder, &info.game] {
        put_str(&mut out, text);
    }
    out.extend_from_slice(&info.app_id.to_le_bytes());
    out.extend_from_slice(&[
        info.players,
        info.max_players,
        info.bots,
        info.server_type,
        info.environment,
        u8::from(info.password),
        u8::from(info.vac),
    ]);
    put_str(&mut out, &info.version);
    let mut flags = 0u8;
    let mut extra = Vec::new();
    // The fields follow in this order, whatever the flag values.
    if let Some(port) = info.port {
        flags |= 0x80;
        extra.extend_from_slice(&port.to_le_bytes());
    }
    if let Some(steam_id) = info.steam_id {
        flags |= 0x10;
        extra.extend_from_slice(&steam_id.to_le_bytes());
    }
    if let Some((port, name)) = &info.source_tv {
        flags |= 0x40;
        extra.extend_from_slice(&port.to_le_bytes());
        put_str(&mut extra, name);
    }
    if let Some(keywords) = &info.keywords {
        flags |= 0x20;
        put_str(&mut extra, keywords);
    }
    if let Some(game_id) = info.game_id {
        flags |= 0x01;
        extra.extend_from_slice(&game_id.to_le_bytes());
    }
    if flags != 0 {
        out.push(flags);
        out.extend_from_slice(&extra);
    }
    out
}

pub fn encode_players(players: &[Player]) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(PLAYER_REPLY);
    out.push(players.len().min(255) as u8);
    for player in players.iter().take(255) {
        out.push(player.index);
        put_str(&mut out, &player.name);
        out.extend_from_slice(&player.score.to_le_bytes());
        out.extend_from_slice(&player.duration.to_le_bytes());
    }
    out
}

pub fn rules_request(challenge: i32) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(RULES_REQUEST);
    out.extend_from_slice(&challenge.to_le_bytes());
    out
}

pub fn encode_rules(rules: &[(String, String)]) -> Vec<u8> {
    let mut out = SIMPLE.to_vec();
    out.push(RULES_REPLY);
    out.extend_from_slice(&(rules.len().min(u16::MAX as usize) as u16).to_le_bytes());
    for (name, value) in rules.iter().take(u16::MAX as usize) {
        put_str(&mut out, name);
        put_str(&mut out, value);
    }
    out
}

/// Cuts an answer into datagrams: itself if it fits, else Source-style split packets
/// (`FE FF FF FF`, id, total, number, size, then a slice of the whole answer).
pub fn split(answer: &[u8], id: i32) -> Vec<Vec<u8>> {
    const HEADER: usize = 12;
    if answer.len() <= MAX_PACKET {
        return vec![answer.to_vec()];
    }
    let chunk = MAX_PACKET - HEADER;
    let total = answer.len().div_ceil(chunk) as u8;
    answer
        .chunks(chunk)
        .enumerate()
        .map(|(number, part)| {
            let mut out = SPLIT.to_vec();
            out.extend_from_slice(&(id & 0x7FFF_FFFF).to_le_bytes());
            out.extend_from_slice(&[total, number as u8]);
            out.extend_from_slice(&(MAX_PACKET as u16).to_le_bytes());
            out.extend_from_slice(part);
            out
        })
        .collect()
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // A NUL inside a string would end it early on the wire.
    out.extend(text.bytes().filter(|b| *b != 0));
    out.push(0);
}

// ---- decoding -----------------------------------------------------------------------------

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(WireError::Truncated {
                at: self.at,
                wanted: n,
            })?;
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn f32(&mut self) -> Result<f32, WireError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn string(&mut self) -> Result<String, WireError> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(WireError::Truncated {
                at: self.bytes.len(),
                wanted: 1,
            })?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// Parses a request datagram (the server's side).
pub fn parse_request(packet: &[u8]) -> Result<Request, WireError> {
    let mut r = Reader::new(packet);
    let header = r.take(4)?;
    if header != SIMPLE {
        return Err(WireError::Header(header.to_vec()));
    }
    match r.u8()? {
        INFO_REQUEST => {
            if r.take(INFO_PAYLOAD.len())? != INFO_PAYLOAD {
                return Err(WireError::Payload);
            }
            let challenge = if r.is_empty() { None } else { Some(r.i32()?) };
            Ok(Request::Info { challenge })
        }
        PLAYER_REQUEST => Ok(Request::Players {
            challenge: r.i32()?,
        }),
        RULES_REQUEST => Ok(Request::Rules {
            challenge: r.i32()?,
        }),
        other => Err(WireError::Kind(other)),
    }
}

/// Parses a whole (reassembled) answer.
pub fn parse_reply(packet: &[u8]) -> Result<Reply, WireError> {
    let mut r = Reader::new(packet);
    let header = r.take(4)?;
    if header != SIMPLE {
        return Err(WireError::Header(header.to_vec()));
    }
    match r.u8()? {
        CHALLENGE_REPLY => Ok(Reply::Challenge(r.i32()?)),
        INFO_REPLY => {
            let mut info = Info {
                protocol: r.u8()?,
                name: r.string()?,
                map: r.string()?,
                folder: r.string()?,
                game: r.string()?,
                app_id: r.u16()?,
                players: r.u8()?,
                max_players: r.u8()?,
                bots: r.u8()?,
                server_type: r.u8()?,
                environment: r.u8()?,
                password: r.u8()? != 0,
                vac: r.u8()? != 0,
                version: r.string()?,
                port: None,
                steam_id: None,
                source_tv: None,
                keywords: None,
                game_id: None,
            };
            if !r.is_empty() {
                let flags = r.u8()?;
                if flags & 0x80 != 0 {
                    info.port = Some(r.u16()?);
                }
                if flags & 0x10 != 0 {
                    info.steam_id = Some(r.u64()?);
                }
                if flags & 0x40 != 0 {
                    info.source_tv = Some((r.u16()?, r.string()?));
                }
                if flags & 0x20 != 0 {
                    info.keywords = Some(r.string()?);
                }
                if flags & 0x01 != 0 {
                    info.game_id = Some(r.u64()?);
                }
            }
            Ok(Reply::Info(info))
        }
        PLAYER_REPLY => {
            let count = r.u8()?;
            let mut players = Vec::with_capacity(count as usize);
            for _ in 0..count {
                players.push(Player {
                    index: r.u8()?,
                    name: r.string()?,
                    score: r.i32()?,
                    duration: r.f32()?,
                });
            }
            Ok(Reply::Players(players))
        }
        RULES_REPLY => {
            let count = r.u16()?;
            let mut rules = Vec::with_capacity(count as usize);
            for _ in 0..count {
                rules.push((r.string()?, r.string()?));
            }
            Ok(Reply::Rules(rules))
        }
        other => Err(WireError::Kind(other)),
    }
}

/// The header of one split packet: (id, total, number, payload).
fn parse_split(packet: &[u8]) -> Result<(i32, u8, u8, &[u8]), WireError> {
    let mut r = Reader::new(packet);
    r.take(4)?;
    let id = r.i32()?;
    let (total, number) = (r.u8()?, r.u8()?);
    let _size = r.u16()?;
    if id < 0 {
        // The high bit marks bzip2 compression, used only by old engines.
        return Err(WireError::Compressed);
    }
    if total == 0 || number >= total {
        return Err(WireError::Split { number, total });
    }
    Ok((id, total, number, &packet[r.at..]))
}

// ---- client -------------------------------------------------------------------------------

/// Asks one server for its info and players, handling challenges and split answers.
pub struct Client {
    socket: UdpSocket,
    addr: SocketAddr,
    timeout: Duration,
}

impl Client {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Result<Self, QueryError> {
        let io = |source| QueryError::Io { addr, source };
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let socket = UdpSocket::bind(bind).map_err(io)?;
        socket.connect(addr).map_err(io)?;
        Ok(Self {
            socket,
            addr,
            timeout,
        })
    }

    pub fn info(&self) -> Result<Info, QueryError> {
        match self.ask(&info_request(None))? {
            Reply::Info(info) => Ok(info),
            Reply::Challenge(challenge) => match self.ask(&info_request(Some(challenge)))? {
                Reply::Info(info) => Ok(info),
                _ => Err(QueryError::Unexpected { addr: self.addr }),
            },
            _ => Err(QueryError::Unexpected { addr: self.addr }),
        }
    }

    pub fn players(&self) -> Result<Vec<Player>, QueryError> {
        self.challenged(player_request, |reply| match reply {
            Reply::Players(players) => Some(players),
            _ => None,
        })
    }

    /// The server's public cvars, as `A2S_RULES` gives them.
    pub fn rules(&self) -> Result<Vec<(String, String)>, QueryError> {
        self.challenged(rules_request, |reply| match reply {
            Reply::Rules(rules) => Some(rules),
            _ => None,
        })
    }

    /// A request that takes a challenge: asked with -1, then again with the challenge the
    /// server gives (some servers skip it and answer at once).
    fn challenged<T>(
        &self,
        request: fn(i32) -> Vec<u8>,
        answer: fn(Reply) -> Option<T>,
    ) -> Result<T, QueryError> {
        let reply = match self.ask(&request(-1))? {
            Reply::Challenge(challenge) => self.ask(&request(challenge))?,
            other => other,
        };
        answer(reply).ok_or(QueryError::Unexpected { addr: self.addr })
    }

    /// Sends one request and reads one whole answer.
    fn ask(&self, request: &[u8]) -> Result<Reply, QueryError> {
        let addr = self.addr;
        let io = |source| QueryError::Io { addr, source };
        let malformed = |source| QueryError::Malformed { addr, source };
        self.socket.send(request).map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        let mut whole = Assembler::default();
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QueryError::Timeout {
                    addr,
                    timeout: self.timeout,
                });
            }
            self.socket.set_read_timeout(Some(left)).map_err(io)?;
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(io(e)),
            };
            if let Some(reply) = whole.take(&buf[..n]).map_err(malformed)? {
                return Ok(reply);
            }
        }
    }
}

/// Puts an answer together from its packets: one, or the parts of a split answer.
#[derive(Default)]
struct Assembler {
    split_id: Option<i32>,
    parts: Vec<Option<Vec<u8>>>,
}

impl Assembler {
    /// The answer, once `packet` completes it.
    fn take(&mut self, packet: &[u8]) -> Result<Option<Reply>, WireError> {
        if !packet.starts_with(&SPLIT) {
            return parse_reply(packet).map(Some);
        }
        let (id, total, number, payload) = parse_split(packet)?;
        if *self.split_id.get_or_insert(id) != id {
            return Ok(None); // a late part of an earlier answer
        }
        if self.parts.is_empty() {
            self.parts = vec![None; total as usize];
        }
        if self.parts.len() != total as usize {
            return Err(WireError::Split { number, total });
        }
        self.parts[number as usize] = Some(payload.to_vec());
        if !self.parts.iter().all(Option::is_some) {
            return Ok(None);
        }
        let whole: Vec<u8> = std::mem::take(&mut self.parts)
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        self.split_id = None;
        parse_reply(&whole).map(Some)
    }
}

/// What one server answered [`query_all`]: its info, and its players when it has any
/// (empty when that second question went unanswered).
pub type Answered = Option<(Info, Vec<Player>)>;

/// Asks every server in `addrs` for its info, then those with players for them, all at
/// once on one thread: each question waits at most `timeout` for its answer (a challenge
/// asks again). A server that does not answer, or answers nonsense, gets `None`.
pub fn query_all(addrs: &[SocketAddr], timeout: Duration) -> Vec<Answered> {
    use std::os::fd::AsRawFd;
    enum Step {
        Info,
        Players(Info),
        Done(Answered),
    }
    struct Asked {
        client: Option<Client>,
        step: Step,
        deadline: Instant,
        whole: Assembler,
    }
    let send = |asked: &mut Asked, request: &[u8]| {
        let sent = asked.client.as_ref().map(|c| c.socket.send(request));
        asked.deadline = Instant::now() + timeout;
        asked.whole = Assembler::default();
        if !matches!(sent, Some(Ok(_))) {
            asked.step = Step::Done(None);
        }
    };
    let mut all: Vec<Asked> = addrs
        .iter()
        .map(|addr| {
            let client = Client::new(*addr, timeout)
                .ok()
                .filter(|c| c.socket.set_nonblocking(true).is_ok());
            Asked {
                step: if client.is_some() {
                    Step::Info
                } else {
                    Step::Done(None)
                },
                client,
                deadline: Instant::now(),
                whole: Assembler::default(),
            }
        })
        .collect();
    for asked in &mut all {
        if matches!(asked.step, Step::Info) {
            send(asked, &info_request(None));
        }
    }
    let mut buf = [0u8; 65536];
    loop {
        let now = Instant::now();
        for asked in &mut all {
            if !matches!(asked.step, Step::Done(_)) && asked.deadline <= now {
                // The info alone stands when the players go unanswered.
                asked.step = Step::Done(match std::mem::replace(&mut asked.step, Step::Info) {
                    Step::Players(info) => Some((info, Vec::new())),
                    _ => None,
                });
            }
        }
        let waiting: Vec<usize> = (0..all.len())
            .filter(|&i| !matches!(all[i].step, Step::Done(_)))
            .collect();
        let Some(first) = waiting.iter().map(|&i| all[i].deadline).min() else {
            break;
        };
        let mut fds: Vec<libc::pollfd> = waiting
            .iter()
            .map(|&i| libc::pollfd {
                fd: all[i].client.as_ref().map_or(-1, |c| c.socket.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wait = first
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 60_000) as i32;
        // SAFETY: fds is a live array of pollfd of the length given.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
        for (fd, &i) in fds.iter().zip(&waiting) {
            if fd.revents == 0 {
                continue;
            }
            let asked = &mut all[i];
            let Some(n) = asked
                .client
                .as_ref()
                .and_then(|c| c.socket.recv(&mut buf).ok())
            else {
                if fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    // Refused (nothing listens on the port): no answer will come.
                    asked.step = Step::Done(None);
                }
                continue;
            };
            let reply = match asked.whole.take(&buf[..n]) {
                Ok(Some(reply)) => reply,
                Ok(None) => continue,
                Err(_) => {
                    asked.step = Step::Done(None);
                    continue;
                }
            };
            match (std::mem::replace(&mut asked.step, Step::Info), reply) {
                (Step::Info, Reply::Challenge(challenge)) => {
                    send(asked, &info_request(Some(challenge)));
                }
                (Step::Info, Reply::Info(info)) if info.players > 0 => {
                    asked.step = Step::Players(info);
                    send(asked, &player_request(-1));
                }
                (Step::Info, Reply::Info(info)) => {
                    asked.step = Step::Done(Some((info, Vec::new())))
                }
                (Step::Players(info), Reply::Challenge(challenge)) => {
                    asked.step = Step::Players(info);
                    send(asked, &player_request(challenge));
                }
                (Step::Players(info), Reply::Players(players)) => {
                    asked.step = Step::Done(Some((info, players)));
                }
                (Step::Players(info), _) => asked.step = Step::Done(Some((info, Vec::new()))),
                _ => asked.step = Step::Done(None),
            }
        }
    }
    all.into_iter()
        .map(|asked| match asked.step {
            Step::Done(answered) => answered,
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn l4d2_info() -> Info {
        Info {
            protocol: 17,
            name: "Friday coop".into(),
            map: "c1m1_hotel".into(),
            folder: "left4dead2".into(),
            game: "Left 4 Dead 2".into(),
            app_id: 550,
            players: 2,
            max_players: 8,
            bots: 0,
            server_type: b'd',
            environment: b'l',
            password: false,
            vac: true,
            version: "2.2.4.3".into(),
            port: Some(27015),
            steam_id: Some(90_000_000_000_000_001),
            source_tv: None,
            keywords: Some("coop,empty".into()),
            game_id: Some(550),
        }
    }

    /// A server on a local port that answers like the game: a challenge first for each
    /// question (as L4D2 has since 2020), then the answer; `players` empty is an empty game.
    fn challenging_server(mut info: Info, players: Vec<Player>) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        info.players = players.len() as u8;
        std::thread::spawn(move || {
            let mut buf = [0u8; 1400];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let answer = match parse_request(&buf[..n]) {
                    Ok(Request::Info { challenge: None }) => encode_challenge(77),
                    Ok(Request::Info {
                        challenge: Some(77),
                    }) => encode_info(&info),
                    Ok(Request::Players { challenge: 77 }) => encode_players(&players),
                    Ok(Request::Players { .. }) => encode_challenge(77),
                    _ => continue,
                };
                socket.send_to(&answer, from).unwrap();
            }
        });
        addr
    }

    #[test]
    fn many_servers_are_asked_at_once_and_each_gets_its_own_answer() {
        let player = |name: &str| Player {
            index: 0,
            name: name.into(),
            score: 3,
            duration: 61.5,
        };
        let empty = challenging_server(l4d2_info(), Vec::new());
        let busy = challenging_server(
            Info {
                map: "c2m1_highway".into(),
                ..l4d2_info()
            },
            vec![player("Ellis"), player("Nick")],
        );
        // Nothing listens: refused at once, no wait for the timeout.
        let closed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // Something listens and never answers (a hung game).
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let answered = query_all(
            &[empty, closed, busy, silent.local_addr().unwrap()],
            Duration::from_millis(300),
        );
        assert_eq!(answered.len(), 4);
        let (info, players) = answered[0].clone().expect("the empty server answers");
        assert_eq!((info.map.as_str(), info.players), ("c1m1_hotel", 0));
        assert!(players.is_empty());
        assert_eq!(answered[1], None);
        let (info, players) = answered[2].clone().expect("the busy server answers");
        assert_eq!((info.map.as_str(), info.players), ("c2m1_highway", 2));
        let names: Vec<&str> = players.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Ellis", "Nick"]);
        assert_eq!(answered[3], None);
    }

    #[test]
    fn info_request_matches_the_documented_bytes() {
        let mut expect = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x54];
        expect.extend_from_slice(b"Source Engine Query\0");
        assert_eq!(info_request(None), expect);
        expect.extend_from_slice(&[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(info_request(Some(0x1234_5678)), expect);
        assert_eq!(
            player_request(-1),
            [0xFF, 0xFF, 0xFF, 0xFF, 0x55, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            encode_challenge(0x0A0B_0C0D),
            [0xFF, 0xFF, 0xFF, 0xFF, 0x41, 0x0D, 0x0C, 0x0B, 0x0A]
        );
    }

    #[test]
    fn info_reply_matches_the_documented_layout() {
        let mut expect = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x49, 17];
        expect.extend_from_slice(b"Friday coop\0c1m1_hotel\0left4dead2\0Left 4 Dead 2\0");
        expect.extend_from_slice(&[0x26, 0x02]); // 550
        expect.extend_from_slice(&[2, 8, 0, b'd', b'l', 0, 1]);
        expect.extend_from_slice(b"2.2.4.3\0");
        expect.push(0x80 | 0x10 | 0x20 | 0x01);
        expect.extend_from_slice(&27015u16.to_le_bytes());
        expect.extend_from_slice(&90_000_000_000_000_001u64.to_le_bytes());
        expect.extend_from_slice(b"coop,empty\0");
        expect.extend_from_slice(&550u64.to_le_bytes());
        assert_eq!(encode_info(&l4d2_info()), expect);
        assert_eq!(parse_reply(&expect).unwrap(), Reply::Info(l4d2_info()));
    }

    #[test]
    fn player_reply_matches_the_documented_layout() {
        let players = [Player {
            index: 0,
            name: "Zoey".into(),
            score: 7,
            duration: 1.5,
        }];
        let mut expect = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x44, 1, 0];
        expect.extend_from_slice(b"Zoey\0");
        expect.extend_from_slice(&[7, 0, 0, 0]);
        expect.extend_from_slice(&1.5f32.to_le_bytes());
        assert_eq!(encode_players(&players), expect);
        assert_eq!(
            parse_reply(&expect).unwrap(),
            Reply::Players(players.to_vec())
        );
    }

    #[test]
    fn requests_are_recognised() {
        assert_eq!(
            parse_request(&info_request(Some(5))).unwrap(),
            Request::Info { challenge: Some(5) }
        );
        assert_eq!(
            parse_request(&player_request(-1)).unwrap(),
            Request::Players { challenge: -1 }
        );
        assert_eq!(
            parse_request(b"\xFF\xFF\xFF\xFFTSource Engine Quer"),
            Err(WireError::Truncated { at: 5, wanted: 20 })
        );
        assert_eq!(
            parse_request(&rules_request(-1)).unwrap(),
            Request::Rules { challenge: -1 }
        );
        assert_eq!(
            parse_request(b"\xFF\xFF\xFF\xFF\x56"),
            Err(WireError::Truncated { at: 5, wanted: 4 })
        );
        assert_eq!(
            parse_request(b"\xFF\xFF\xFF\xFF\x57"),
            Err(WireError::Kind(0x57))
        );
    }

    #[test]
    fn rules_reply_matches_the_documented_layout() {
        assert_eq!(
            rules_request(-1),
            [0xFF, 0xFF, 0xFF, 0xFF, 0x56, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let rules = vec![
            ("mp_gamemode".to_owned(), "coop".to_owned()),
            ("sv_tags".to_owned(), String::new()),
        ];
        let bytes = encode_rules(&rules);
        let mut expect = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x45, 2, 0];
        expect.extend_from_slice(b"mp_gamemode\0coop\0sv_tags\0\0");
        assert_eq!(bytes, expect);
        assert_eq!(parse_reply(&bytes).unwrap(), Reply::Rules(rules));
    }

    #[test]
    fn truncated_answers_are_errors_not_panics() {
        let whole = encode_info(&l4d2_info());
        for len in 0..whole.len() - 1 {
            // Every prefix either parses (extra data is optional) or reports truncation.
            let _ = parse_reply(&whole[..len]);
        }
        assert!(matches!(
            parse_reply(&whole[..10]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn long_answers_are_split_with_source_headers() {
        let players: Vec<Player> = (0..32)
            .map(|i| Player {
                index: i,
                name: format!("{:-<40}", i),
                score: i as i32,
                duration: 10.0,
            })
            .collect();
        let whole = encode_players(&players);
        assert!(whole.len() > MAX_PACKET);
        let parts = split(&whole, 77);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            &parts[0][..12],
            &[0xFE, 0xFF, 0xFF, 0xFF, 77, 0, 0, 0, 2, 0, 0x78, 0x05]
        );
        assert!(parts.iter().all(|p| p.len() <= MAX_PACKET));
        let rejoined: Vec<u8> = parts.iter().flat_map(|p| p[12..].to_vec()).collect();
        assert_eq!(rejoined, whole);
    }
}
