//! Source RCON over TCP: the packet format both sides share, and the client the agent uses
//! to run console commands on a server it manages.
//!
//! A packet is `size: i32` (bytes after this field, 10..=4096), `id: i32`, `type: i32`, a
//! NUL-terminated body and one more NUL. Quirks a client must live with, all reproduced by
//! the stand-in server: authentication answers with an empty `RESPONSE_VALUE` before the
//! `AUTH_RESPONSE`; a long answer spans several `RESPONSE_VALUE` packets with no length
//! header, so its end is found by sending an empty `RESPONSE_VALUE` after the command, which
//! the server mirrors once the answer is complete, followed by one more packet whose body is
//! `00 00 00 01 00 00 00 00` bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const SERVERDATA_AUTH: i32 = 3;
pub const SERVERDATA_AUTH_RESPONSE: i32 = 2;
pub const SERVERDATA_EXECCOMMAND: i32 = 2;
pub const SERVERDATA_RESPONSE_VALUE: i32 = 0;

/// The smallest and largest values of the size field.
pub const MIN_SIZE: i32 = 10;
pub const MAX_SIZE: i32 = 4096;

/// The longest body that fits one packet.
pub const MAX_BODY: usize = (MAX_SIZE - MIN_SIZE) as usize;

/// The extra packet a Source server sends after mirroring the end marker.
pub const TRAILER_BODY: &[u8] = &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: i32,
    pub kind: i32,
    pub body: Vec<u8>,
}

impl Packet {
    pub fn new(id: i32, kind: i32, body: impl Into<Vec<u8>>) -> Self {
        Self {
            id,
            kind,
            body: body.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let size = (self.body.len() + MIN_SIZE as usize) as i32;
        let mut out = Vec::with_capacity(size as usize + 4);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// Reads one packet; `Ok(None)` when the stream ends cleanly between packets.
    pub fn read(stream: &mut impl Read) -> Result<Option<Packet>, RconError> {
        let mut size = [0u8; 4];
        match stream.read_exact(&mut size) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(RconError::Io(e)),
        }
        let size = i32::from_le_bytes(size);
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(RconError::Size(size));
        }
        let mut rest = vec![0u8; size as usize];
        stream.read_exact(&mut rest).map_err(RconError::Io)?;
        let id = i32::from_le_bytes(rest[0..4].try_into().unwrap());
        let kind = i32::from_le_bytes(rest[4..8].try_into().unwrap());
        if rest[rest.len() - 2..] != [0, 0] {
            return Err(RconError::Terminator);
        }
        let body = rest[8..rest.len() - 2].to_vec();
        Ok(Some(Packet { id, kind, body }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RconError {
    #[error("cannot connect to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("RCON connection failed")]
    Io(#[source] std::io::Error),
    #[error("RCON packet size {0} is outside 10-4096")]
    Size(i32),
    #[error("RCON packet is not terminated by two NUL bytes")]
    Terminator,
    #[error("the server closed the RCON connection")]
    Closed,
    #[error("the server refused the RCON password")]
    BadPassword,
    #[error("the command is longer than one RCON packet ({MAX_BODY} bytes)")]
    CommandTooLong,
}

/// An authenticated RCON connection.
pub struct Client {
    stream: TcpStream,
    next_id: i32,
}

impl Client {
    /// Connects and authenticates. The password is sent only on this socket.
    pub fn connect(addr: SocketAddr, password: &str, timeout: Duration) -> Result<Self, RconError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|source| RconError::Connect { addr, source })?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(RconError::Io)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(RconError::Io)?;
        let mut client = Client { stream, next_id: 1 };
        let id = client.take_id();
        client.send(&Packet::new(id, SERVERDATA_AUTH, password))?;
        loop {
            let packet = client.receive()?;
            // Source sends an empty RESPONSE_VALUE before the AUTH_RESPONSE.
            if packet.kind != SERVERDATA_AUTH_RESPONSE {
                continue;
            }
            return if packet.id == id {
                Ok(client)
            } else {
                Err(RconError::BadPassword)
            };
        }
    }

    /// Runs one console command and returns its whole answer.
    pub fn exec(&mut self, command: &str) -> Result<String, RconError> {
        if command.len() > MAX_BODY {
            return Err(RconError::CommandTooLong);
        }
        let id = self.take_id();
        let marker = self.take_id();
        self.send(&Packet::new(id, SERVERDATA_EXECCOMMAND, command))?;
        self.send(&Packet::new(marker, SERVERDATA_RESPONSE_VALUE, ""))?;
        let mut answer = Vec::new();
        loop {
            let packet = self.receive()?;
            if packet.id == marker {
                return Ok(String::from_utf8_lossy(&answer).into_owned());
            }
            // Anything else (the trailer after an earlier marker) belongs to an earlier call.
            if packet.id == id && packet.kind == SERVERDATA_RESPONSE_VALUE {
                answer.extend_from_slice(&packet.body);
            }
        }
    }

    fn take_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn send(&mut self, packet: &Packet) -> Result<(), RconError> {
        self.stream
            .write_all(&packet.encode())
            .map_err(RconError::Io)
    }

    fn receive(&mut self) -> Result<Packet, RconError> {
        Packet::read(&mut self.stream)?.ok_or(RconError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_match_the_documented_layout() {
        let packet = Packet::new(7, SERVERDATA_EXECCOMMAND, "status");
        let mut expect = vec![16, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0];
        expect.extend_from_slice(b"status\0\0");
        assert_eq!(packet.encode(), expect);
        let back = Packet::read(&mut expect.as_slice()).unwrap().unwrap();
        assert_eq!(back, packet);
        assert_eq!(
            Packet::new(1, SERVERDATA_RESPONSE_VALUE, "").encode(),
            [10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut huge = 5000i32.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 12]);
        assert!(matches!(
            Packet::read(&mut huge.as_slice()),
            Err(RconError::Size(5000))
        ));
        let mut tiny = 9i32.to_le_bytes().to_vec();
        tiny.extend_from_slice(&[0; 9]);
        assert!(matches!(
            Packet::read(&mut tiny.as_slice()),
            Err(RconError::Size(9))
        ));
        assert!(Packet::read(&mut [].as_slice()).unwrap().is_none());
    }
}
