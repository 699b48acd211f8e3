//! Just enough of the D-Bus wire protocol to read a unit's properties from systemd over the
//! system bus, without starting `systemctl` (which costs several milliseconds per call and
//! made `status` slow). Only systemd's `ListUnitsByPatterns` and
//! `org.freedesktop.DBus.Properties.Get` of basic-typed properties are spoken; anything
//! unexpected is an error, and callers fall back to `systemctl`.
//!
//! Calls can be sent together and their replies read after ([`Bus::calls`]): the bus answers
//! each in turn, so many units cost about one round trip rather than one per property.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// A value of one of D-Bus's basic types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    U32(u32),
    U64(u64),
    I32(i32),
    I64(i64),
    Bool(bool),
    Byte(u8),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::Byte(v) => Some(v.into()),
            _ => None,
        }
    }
}

/// A connection to the system bus.
pub struct Bus {
    stream: UnixStream,
    serial: u32,
    /// Replies read while waiting for another, by the serial they answer.
    early: HashMap<u32, Message>,
    /// The object paths that `PropertiesChanged` signals came from, read on the way to
    /// replies, until [`Bus::take_changed`] (only those a [`Call::watch`] asked for come).
    changed: HashSet<String>,
}

/// A method call to systemd (or, for [`Call::watch`], the bus), to send with others.
pub struct Call {
    pub destination: &'static str,
    pub path: String,
    pub interface: &'static str,
    pub member: &'static str,
    /// The body's signature and bytes; empty for none.
    pub signature: &'static str,
    pub body: Vec<u8>,
}

impl Call {
    /// `ListUnitsByPatterns([], patterns)` of systemd's manager: the loaded units whose
    /// names match, each with its states, in one answer (units not loaded are not loaded
    /// for it). Read the answer with [`listed_units`].
    pub fn list_units(patterns: &[&str]) -> Call {
        let mut body = Vec::new();
        put_string_array(&mut body, &[]);
        put_string_array(&mut body, patterns);
        Call {
            destination: SYSTEMD,
            path: "/org/freedesktop/systemd1".to_owned(),
            interface: "org.freedesktop.systemd1.Manager",
            member: "ListUnitsByPatterns",
            signature: "asas",
            body,
        }
    }

    /// `Properties.Get(interface, property)` on `path`.
    pub fn get_property(path: &str, interface: &str, property: &str) -> Call {
        let mut body = Vec::new();
        put_string(&mut body, interface);
        put_string(&mut body, property);
        Call {
            destination: SYSTEMD,
            path: path.to_owned(),
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            signature: "ss",
            body,
        }
    }

    /// systemd's `Subscribe`: without a subscriber it sends no signals about units.
    pub fn subscribe() -> Call {
        Call {
            destination: SYSTEMD,
            path: "/org/freedesktop/systemd1".to_owned(),
            interface: "org.freedesktop.systemd1.Manager",
            member: "Subscribe",
            signature: "",
            body: Vec::new(),
        }
    }

    /// The bus's `AddMatch` for systemd's `PropertiesChanged` signals about the object at
    /// `path` (a unit): from then on each says that its properties changed.
    pub fn watch(path: &str) -> Call {
        let mut body = Vec::new();
        put_string(
            &mut body,
            &format!(
                "type='signal',sender='{SYSTEMD}',interface='org.freedesktop.DBus.Properties',\
                 member='PropertiesChanged',path='{path}'"
            ),
        );
        Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus".to_owned(),
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            signature: "s",
            body,
        }
    }
}

const SYSTEMD: &str = "org.freedesktop.systemd1";

/// A `Get` reply's value.
pub fn property_value((signature, body): (String, Vec<u8>)) -> io::Result<Value> {
    if signature != "v" {
        return Err(bad("Get answered with an unexpected signature"));
    }
    read_variant(&body)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("D-Bus: {what}"))
}

impl Bus {
    pub fn system() -> io::Result<Bus> {
        let stream = UnixStream::connect(SYSTEM_BUS)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut bus = Bus {
            stream,
            serial: 0,
            early: HashMap::new(),
            changed: HashSet::new(),
        };
        bus.authenticate()?;
        // Hello goes first on the wire; the calls after it need not wait for its answer.
        bus.send(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus".to_owned(),
            interface: "org.freedesktop.DBus",
            member: "Hello",
            signature: "",
            body: Vec::new(),
        })?;
        Ok(bus)
    }

    fn authenticate(&mut self) -> io::Result<()> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.stream
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            self.stream.read_exact(&mut byte)?;
            reply.push(byte[0]);
            if reply.len() > 512 {
                return Err(bad("authentication answer too long"));
            }
        }
        if !reply.starts_with(b"OK ") {
            return Err(bad("authentication refused"));
        }
        self.stream.write_all(b"BEGIN\r\n")
    }

    /// The paths whose properties changed since the last time, as far as the replies read
    /// so far tell: a signal sent before a reply is read before it.
    pub fn take_changed(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.changed)
    }

    /// Sends every call, then reads their replies: (signature, body) each, in the calls'
    /// order. A failed call fails alone; a broken connection fails the rest.
    pub fn calls(&mut self, calls: &[Call]) -> Vec<io::Result<(String, Vec<u8>)>> {
        let mut serials = Vec::with_capacity(calls.len());
        for call in calls {
            match self.send(call) {
                Ok(serial) => serials.push(Ok((serial, call.member))),
                Err(e) => serials.push(Err(e)),
            }
        }
        serials
            .into_iter()
            .map(|sent| {
                let (serial, member) = sent?;
                let reply = self.reply_to(serial)?;
                match reply.kind {
                    2 => Ok((reply.signature, reply.body)),
                    3 => Err(bad(&format!(
                        "{member} failed: {}",
                        reply.error.unwrap_or_default()
                    ))),
                    _ => Err(bad("unexpected message type")),
                }
            })
            .collect()
    }

    /// The reply to `serial`, keeping the others read on the way for their callers.
    fn reply_to(&mut self, serial: u32) -> io::Result<Message> {
        if let Some(reply) = self.early.remove(&serial) {
            return Ok(reply);
        }
        loop {
            let message = self.receive()?;
            if message.kind == SIGNAL
                && message.member.as_deref() == Some("PropertiesChanged")
                && let Some(path) = message.path
            {
                self.changed.insert(path);
                continue;
            }
            match message.reply_serial {
                Some(s) if s == serial => return Ok(message),
                // A signal, such as NameAcquired after Hello, or Hello's own answer.
                Some(s) if s > 1 => {
                    self.early.insert(s, message);
                }
                _ => {}
            }
        }
    }

    /// Writes a method call; its serial says which reply is its.
    fn send(&mut self, call: &Call) -> io::Result<u32> {
        self.serial += 1;
        let serial = self.serial;
        let (signature, body, path, interface, member) = (
            call.signature,
            call.body.as_slice(),
            call.path.as_str(),
            call.interface,
            call.member,
        );
        let mut fields = Vec::new();
        let mut field = |code: u8, kind: u8, value: &str| {
            align(&mut fields, 8);
            fields.push(code);
            fields.extend_from_slice(&[1, kind, 0]);
            if kind == b'g' {
                fields.push(value.len() as u8);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            } else {
                put_string(&mut fields, value);
            }
        };
        field(1, b'o', path);
        field(2, b's', interface);
        field(3, b's', member);
        field(6, b's', call.destination);
        if !signature.is_empty() {
            field(8, b'g', signature);
        }
        let mut message = vec![b'l', 1, 0, 1];
        message.extend_from_slice(&(body.len() as u32).to_le_bytes());
        message.extend_from_slice(&serial.to_le_bytes());
        message.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        message.extend_from_slice(&fields);
        align(&mut message, 8);
        message.extend_from_slice(body);
        self.stream.write_all(&message)?;
        Ok(serial)
    }

    fn receive(&mut self) -> io::Result<Message> {
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed)?;
        if fixed[0] != b'l' {
            return Err(bad("big-endian messages are not supported"));
        }
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let body_len = u32_at(&fixed, 4) as usize;
        let fields_len = u32_at(&fixed, 12) as usize;
        if body_len > 1 << 20 || fields_len > 1 << 16 {
            return Err(bad("message too large"));
        }
        let padded = (16 + fields_len).div_ceil(8) * 8;
        let mut rest = vec![0u8; padded - 16 + body_len];
        self.stream.read_exact(&mut rest)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        let mut message = Message {
            kind: fixed[1],
            path: None,
            member: None,
            reply_serial: None,
            signature: String::new(),
            error: None,
            body: all[padded..].to_vec(),
        };
        // Header fields: a(yv), each struct 8-aligned, values of basic types here.
        let mut at = 16;
        while at < 16 + fields_len {
            at = at.div_ceil(8) * 8;
            let code = all[at];
            let sig_len = all[at + 1] as usize;
            let sig = all[at + 2];
            at += 2 + sig_len + 1;
            match sig {
                b'u' => {
                    at = at.div_ceil(4) * 4;
                    let value = u32_at(&all, at);
                    at += 4;
                    if code == 5 {
                        message.reply_serial = Some(value);
                    }
                }
                b's' | b'o' => {
                    at = at.div_ceil(4) * 4;
                    let len = u32_at(&all, at) as usize;
                    let text = String::from_utf8_lossy(&all[at + 4..at + 4 + len]).into_owned();
                    at += 4 + len + 1;
                    match code {
                        1 => message.path = Some(text),
                        3 => message.member = Some(text),
                        4 => message.error = Some(text),
                        _ => {}
                    }
                }
                b'g' => {
                    let len = all[at] as usize;
                    let text = String::from_utf8_lossy(&all[at + 1..at + 1 + len]).into_owned();
                    at += 1 + len + 1;
                    if code == 8 {
                        message.signature = text;
                    }
                }
                _ => return Err(bad("unexpected header field type")),
            }
        }
        Ok(message)
    }
}

/// A message's type: a signal.
const SIGNAL: u8 = 4;

struct Message {
    kind: u8,
    /// Header fields: the object it is about, and its member (a signal's name).
    path: Option<String>,
    member: Option<String>,
    reply_serial: Option<u32>,
    signature: String,
    error: Option<String>,
    body: Vec<u8>,
}

fn align(buf: &mut Vec<u8>, to: usize) {
    buf.resize(buf.len().div_ceil(to) * to, 0);
}

fn put_string(buf: &mut Vec<u8>, text: &str) {
    align(buf, 4);
    buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
    buf.push(0);
}

/// An `as`: its length in bytes, then the strings.
fn put_string_array(buf: &mut Vec<u8>, texts: &[&str]) {
    align(buf, 4);
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_le_bytes());
    let start = buf.len();
    for text in texts {
        put_string(buf, text);
    }
    let len = (buf.len() - start) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// A unit as `ListUnitsByPatterns` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUnit {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// Its object path, for its other properties.
    pub path: String,
}

/// Reads `ListUnitsByPatterns`'s answer, `a(ssssssouso)`, from a body that starts 8-aligned.
pub fn listed_units((signature, body): (String, Vec<u8>)) -> io::Result<Vec<ListedUnit>> {
    if signature != "a(ssssssouso)" {
        return Err(bad(
            "ListUnitsByPatterns answered with an unexpected signature",
        ));
    }
    let mut reader = Reader { body: &body, at: 0 };
    let len = reader.u32()? as usize;
    reader.align(8);
    let end = reader.at + len;
    if end > body.len() {
        return Err(bad("unit list ends early"));
    }
    let mut units = Vec::new();
    while reader.at < end {
        reader.align(8);
        let name = reader.string()?;
        let _description = reader.string()?;
        let load_state = reader.string()?;
        let active_state = reader.string()?;
        let sub_state = reader.string()?;
        let _following = reader.string()?;
        let path = reader.string()?;
        let _job = reader.u32()?;
        let _job_type = reader.string()?;
        let _job_path = reader.string()?;
        units.push(ListedUnit {
            name,
            load_state,
            active_state,
            sub_state,
            path,
        });
    }
    Ok(units)
}

/// Reads a message body in order, keeping D-Bus's alignment.
struct Reader<'b> {
    body: &'b [u8],
    at: usize,
}

impl Reader<'_> {
    fn align(&mut self, to: usize) {
        self.at = self.at.div_ceil(to) * to;
    }

    fn u32(&mut self) -> io::Result<u32> {
        self.align(4);
        let bytes = self
            .body
            .get(self.at..self.at + 4)
            .ok_or_else(|| bad("body ends early"))?;
        self.at += 4;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap()))
    }

    /// A string or an object path: its length, its bytes and a NUL.
    fn string(&mut self) -> io::Result<String> {
        let len = self.u32()? as usize;
        let bytes = self
            .body
            .get(self.at..self.at + len)
            .ok_or_else(|| bad("body ends early"))?;
        self.at += len + 1;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Reads a variant holding one basic value (the body starts 8-aligned).
pub fn read_variant(body: &[u8]) -> io::Result<Value> {
    let short = || bad("variant ends early");
    let sig_len = *body.first().ok_or_else(short)? as usize;
    if sig_len != 1 {
        return Err(bad("only basic-typed properties are read"));
    }
    let kind = *body.get(1).ok_or_else(short)?;
    let at: usize = 3;
    let aligned = |n: usize| at.div_ceil(n) * n;
    let take = |from: usize, len: usize| body.get(from..from + len).ok_or_else(short);
    Ok(match kind {
        b's' | b'o' => {
            let from = aligned(4);
            let len = u32::from_le_bytes(take(from, 4)?.try_into().unwrap()) as usize;
            Value::Str(String::from_utf8_lossy(take(from + 4, len)?).into_owned())
        }
        b'u' => Value::U32(u32::from_le_bytes(take(aligned(4), 4)?.try_into().unwrap())),
        b'i' => Value::I32(i32::from_le_bytes(take(aligned(4), 4)?.try_into().unwrap())),
        b'b' => Value::Bool(u32::from_le_bytes(take(aligned(4), 4)?.try_into().unwrap()) != 0),
        b't' => Value::U64(u64::from_le_bytes(take(aligned(8), 8)?.try_into().unwrap())),
        b'x' => Value::I64(i64::from_le_bytes(take(aligned(8), 8)?.try_into().unwrap())),
        b'y' => Value::Byte(*take(at, 1)?.first().unwrap()),
        _ => return Err(bad("unsupported property type")),
    })
}

/// systemd's object path of a unit: every byte that is not a letter or digit (and a leading
/// digit) becomes `_xx`.
pub fn unit_path(unit: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    for (i, byte) in unit.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (byte.is_ascii_digit() && i > 0) {
            path.push(byte as char);
        } else {
            path.push_str(&format!("_{byte:02x}"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_escaped_like_systemd() {
        assert_eq!(
            unit_path("left4me-server@coop-1.service"),
            "/org/freedesktop/systemd1/unit/left4me_2dserver_40coop_2d1_2eservice"
        );
        assert_eq!(
            unit_path("1x.service"),
            "/org/freedesktop/systemd1/unit/_31x_2eservice"
        );
    }

    /// A struct of the list as systemd writes it, 8-aligned within `body`.
    fn put_unit(body: &mut Vec<u8>, name: &str, active: &str, job: u32) {
        align(body, 8);
        for text in [
            name,
            "Left 4 Dead 2 server",
            "loaded",
            active,
            "running",
            "",
        ] {
            put_string(body, text);
        }
        put_string(body, &unit_path(name));
        align(body, 4);
        body.extend_from_slice(&job.to_le_bytes());
        put_string(body, "");
        put_string(body, "/");
    }

    #[test]
    fn a_unit_list_is_read_with_its_alignment() {
        let mut list = Vec::new();
        put_unit(&mut list, "left4me-server@a.service", "active", 0);
        put_unit(&mut list, "left4me-server@bb.service", "failed", 7);
        let mut body = (list.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 4]); // to the structs' 8-byte alignment
        body.extend_from_slice(&list);
        let units = listed_units(("a(ssssssouso)".to_owned(), body.clone())).unwrap();
        assert_eq!(
            units
                .iter()
                .map(|u| (u.name.as_str(), u.active_state.as_str()))
                .collect::<Vec<_>>(),
            [
                ("left4me-server@a.service", "active"),
                ("left4me-server@bb.service", "failed")
            ]
        );
        assert_eq!(units[1].path, unit_path("left4me-server@bb.service"));
        // Cut short, or answered in another shape: an error, never a panic.
        for cut in [3, 9, body.len() - 1] {
            assert!(listed_units(("a(ssssssouso)".to_owned(), body[..cut].to_vec())).is_err());
        }
        assert!(listed_units(("as".to_owned(), body)).is_err());
        // The request: two string arrays, the first empty.
        let call = Call::list_units(&["left4me-server@*.service"]);
        assert_eq!(&call.body[..8], &[0, 0, 0, 0, 29, 0, 0, 0]);
    }

    #[test]
    fn variants_of_basic_types_are_read() {
        // "s" "active"
        let mut body = vec![1, b's', 0, 0];
        body.extend_from_slice(&6u32.to_le_bytes());
        body.extend_from_slice(b"active\0");
        assert_eq!(read_variant(&body).unwrap(), Value::Str("active".into()));
        // "t" with 8-byte alignment after the signature
        let mut body = vec![1, b't', 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&1_795_689_296_123_456u64.to_le_bytes());
        assert_eq!(
            read_variant(&body).unwrap(),
            Value::U64(1_795_689_296_123_456)
        );
        let mut body = vec![1, b'u', 0, 0];
        body.extend_from_slice(&4242u32.to_le_bytes());
        assert_eq!(read_variant(&body).unwrap().as_u64(), Some(4242));
        assert!(read_variant(&[2, b'a', b's', 0]).is_err());
        assert!(read_variant(&[1, b's', 0]).is_err());
    }
}
