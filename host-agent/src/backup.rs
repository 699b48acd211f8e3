//! `backup`: what of a server cannot be fetched again, kept on its host.
//!
//! A server's own state is its upper layer (SourceMod's SQLite files, configs written by
//! plugins, ban lists, logs) and its spec; the game and the overlays below can be fetched
//! again, so a backup only names them: the game build and a version digest of each overlay.
//! Archives are `backups/<server>/<id>.tar.gz`, the owner's, each with a summary beside it
//! (`<id>.json`). Inside: `left4me-backup.json` first (the spec and what the server ran on),
//! then `upper/…`, then `left4me-manifest.json`, which lists every entry with what it must be
//! (a file's size and SHA-256, a link's target, a folder's overlayfs attributes, a
//! whiteout). An archive without its manifest, or that differs from it, is refused.
//!
//! Who does what (deploy/README.md has the privilege model):
//! - root (`privileged backup`) reads the overlayfs attributes of the upper layer's folders
//!   (`trusted.overlay.opaque` and `.redirect`: only root can), walking it through
//!   descriptors; everything else is read by a child that is the game account, whose layer
//!   it is, and streamed as a plain tar on stdout. SQLite files are copied through SQLite's
//!   online backup, so a database being written is copied whole; other files are read until
//!   two reads agree. Deleted files are overlayfs whiteouts (character devices 0/0) and are
//!   kept as such, so a restore does not bring them back.
//! - the owner (`backup create`) checks that stream entry by entry, as an overlay import is
//!   checked, compresses it with the manifest into a partial file and renames it into place:
//!   a failure (a full disk, say) leaves no partial archive.
//! - a restore is checked whole by the owner first; then root (`privileged restore`), with
//!   the server stopped and unmounted, has the game account unpack it into a new folder
//!   beside the upper layer, sets the overlayfs attributes itself, and swaps the two folders
//!   in one rename. The owner made a backup of the server as it was first: the undo.

use crate::dir::{Dir, DirError};
use crate::error::AgentError;
use crate::host::Host;
use crate::import::{entry_path, link_stays_inside};
use crate::names::server_name;
use crate::output::Report;
use left4me_protocol::backup::{
    BackupInfo, BackupKind, BackupList, BackupPruned, OverlayUsed, Retention,
};
use left4me_protocol::{AgentMessage, ServerName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The archive format this agent writes and reads.
pub const FORMAT: u32 = 1;
const META: &str = "left4me-backup.json";
const MANIFEST: &str = "left4me-manifest.json";
const UPPER: &str = "upper";
/// Files the agent writes into the upper layer at every start from the spec, RCON password
/// included: never kept (the spec is).
const REGENERATED: &[&str] = &["left4dead2/cfg/server.cfg"];
/// The overlayfs attributes a folder of an upper layer needs back: `opaque` hides what the
/// layers below hold there, `redirect` names where a renamed folder came from. The others
/// (`origin`, `impure`) point into the lower layers' file system and are remade as needed.
const KEPT_XATTRS: &[&str] = &["trusted.overlay.opaque", "trusted.overlay.redirect"];
/// How a tar carries extended attributes (GNU tar's and star's PAX records).
const XATTR_PAX: &str = "SCHILY.xattr.";
/// The most an upper layer may hold for a backup, unpacked.
pub const MAX_CONTENT: u64 = 16 << 30;
const MAX_ENTRIES: u64 = 1_000_000;
const MAX_DEPTH: usize = 256;
/// Files up to this size are read whole and read again until two reads agree.
const SETTLED_READ_MAX: u64 = 64 << 20;
/// The suffixes of SQLite's files beside a database: its rollback journal and WAL files.
const SQLITE_SIDE_FILES: &[&str] = &["-journal", "-wal", "-shm"];

/// The archive's first entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    server: ServerName,
    id: String,
    created: String,
    kind: BackupKind,
    /// The spec as the server had it.
    spec: String,
    base_build: Option<String>,
    overlays: Vec<OverlayUsed>,
    agent_version: String,
}

/// The archive's last entry: every entry of the upper layer, by its path below it (`""`
/// for the layer itself), with what it must be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Manifest {
    meta_sha256: String,
    entries: BTreeMap<String, Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    File {
        size: u64,
        sha256: String,
        mode: u32,
    },
    Dir {
        mode: u32,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        xattrs: BTreeMap<String, String>,
    },
    Link {
        target: String,
    },
    Whiteout,
}

/// An archive's name on the host: its time, made unique with `-<n>`.
pub fn check_id(id: &str) -> Result<(), AgentError> {
    let (stamp, suffix) = id.split_once('-').map_or((id, None), |(s, n)| (s, Some(n)));
    let stamp_ok = stamp.len() == 16
        && stamp.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    let suffix_ok = suffix
        .is_none_or(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()));
    if stamp_ok && suffix_ok {
        Ok(())
    } else {
        Err(AgentError::Invalid(format!(
            "{id:?} is not a backup's name (like 20261130T211500Z)"
        )))
    }
}

/// `20261130T211500Z` for an RFC 3339 time.
fn id_of(created: &str) -> String {
    let digits: String = created
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit())
        .collect();
    format!("{}T{}Z", &digits[..8], &digits[8..14])
}

/// The RFC 3339 time of an id.
fn created_of(id: &str) -> String {
    let d = id.as_bytes();
    let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&d[r]).into_owned();
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        s(0..4),
        s(4..6),
        s(6..8),
        s(9..11),
        s(11..13),
        s(13..15)
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn damaged(what: impl std::fmt::Display) -> AgentError {
    AgentError::Invalid(format!("the backup is damaged: {what}"))
}

/// The path of an upper layer's entry in the archive.
fn archive_path(rel: &str) -> String {
    if rel.is_empty() {
        UPPER.to_owned()
    } else {
        format!("{UPPER}/{rel}")
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    digest: ring::digest::Context,
    read: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            read: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.read, hex(self.digest.finish().as_ref()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// What a backup holds, counted as it is written or read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    files: u64,
    content_bytes: u64,
    deleted: u64,
    entries: u64,
}

impl Counts {
    fn add(&mut self, item: &Item) -> Result<(), String> {
        self.entries += 1;
        match item {
            Item::File { size, .. } => {
                self.files += 1;
                self.content_bytes += size;
            }
            Item::Whiteout => self.deleted += 1,
            Item::Dir { .. } | Item::Link { .. } => {}
        }
        if self.entries > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        if self.content_bytes > MAX_CONTENT {
            return Err(format!(
                "more than {} of files",
                left4me_protocol::units::human_bytes(MAX_CONTENT)
            ));
        }
        Ok(())
    }
}

/// Writes an upper layer's entries as a tar, recording each in a manifest.
struct Writer<W: Write> {
    tar: tar::Builder<W>,
    manifest: Manifest,
    counts: Counts,
}

impl<W: Write> Writer<W> {
    fn new(out: W) -> Self {
        Self {
            tar: tar::Builder::new(out),
            manifest: Manifest::default(),
            counts: Counts::default(),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode & 0o777);
        header.set_mtime(mtime);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    fn record(&mut self, rel: &str, item: Item) -> std::io::Result<()> {
        self.counts
            .add(&item)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::FileTooLarge, e))?;
        self.manifest.entries.insert(rel.to_owned(), item);
        Ok(())
    }

    fn meta(&mut self, meta: &Meta) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(meta).expect("the backup's facts serialise");
        self.manifest.meta_sha256 = sha256_hex(&bytes);
        let mut header = Self::header(tar::EntryType::Regular, 0o644, 0, bytes.len() as u64);
        self.tar.append_data(&mut header, META, bytes.as_slice())
    }

    fn dir(
        &mut self,
        rel: &str,
        mode: u32,
        mtime: u64,
        xattrs: &BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        if !xattrs.is_empty() {
            let records: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(name, value)| (format!("{XATTR_PAX}{name}"), value.as_bytes()))
                .collect();
            self.tar
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))?;
        }
        let mut header = Self::header(tar::EntryType::Directory, mode, mtime, 0);
        self.tar
            .append_data(&mut header, archive_path(rel), std::io::empty())?;
        self.record(
            rel,
            Item::Dir {
                mode: mode & 0o777,
                xattrs: xattrs.clone(),
            },
        )
    }

    fn file(
        &mut self,
        rel: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        content: impl Read,
    ) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, mode, mtime, size);
        let mut hashing = Hashing::new(content.take(size));
        self.tar
            .append_data(&mut header, archive_path(rel), &mut hashing)?;
        let (read, sha256) = hashing.finish();
        if read != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{rel}: {read} bytes where {size} were announced"),
            ));
        }
        self.record(
            rel,
            Item::File {
                size,
                sha256,
                mode: mode & 0o777,
            },
        )
    }

    fn link(&mut self, rel: &str, target: &str, mtime: u64) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, mtime, 0);
        self.tar
            .append_link(&mut header, archive_path(rel), target)?;
        self.record(
            rel,
            Item::Link {
                target: target.to_owned(),
            },
        )
    }

    fn whiteout(&mut self, rel: &str, mtime: u64) -> std::io::Result<()> {
        let mut header = Self::header(tar::EntryType::Char, 0, mtime, 0);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        self.tar
            .append_data(&mut header, archive_path(rel), std::io::empty())?;
        self.record(rel, Item::Whiteout)
    }

    /// Ends the archive with its manifest.
    fn finish(mut self) -> std::io::Result<(W, Manifest, Counts)> {
        let bytes = serde_json::to_vec(&self.manifest).expect("the manifest serialises");
        let mut header = Self::header(tar::EntryType::Regular, 0o644, 0, bytes.len() as u64);
        self.tar
            .append_data(&mut header, MANIFEST, bytes.as_slice())?;
        let out = self.tar.into_inner()?;
        Ok((out, self.manifest, self.counts))
    }

    /// Ends a stream that carries no manifest (root's, checked and given one by the owner).
    fn finish_plain(self) -> std::io::Result<W> {
        self.tar.into_inner()
    }
}

/// One entry of an upper layer read from a tar, checked: its path below the layer and what
/// it is (a file's size and mode; its SHA-256 is known once its content was read).
struct Entry {
    rel: String,
    mtime: u64,
    item: Item,
}

/// Checks a tar entry of an upper layer as an overlay import is checked: a path below
/// `upper/` without `..`, a link that stays inside, no hard links, devices or fifos but
/// whiteouts, and only overlayfs's kept attributes.
fn check_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Entry, String> {
    let raw = entry.path_bytes().into_owned();
    let raw = String::from_utf8(raw).map_err(|_| "a path that is not UTF-8".to_owned())?;
    let refuse = |why: &str| format!("entry {raw:?}: {why}");
    let rel = if raw.trim_end_matches('/') == UPPER {
        String::new()
    } else {
        let below = raw
            .strip_prefix("upper/")
            .ok_or_else(|| refuse("not in upper/"))?;
        let clean = entry_path(Path::new(below)).map_err(refuse)?;
        clean
            .to_str()
            .ok_or_else(|| refuse("not UTF-8"))?
            .to_owned()
    };
    if rel.split('/').count() > MAX_DEPTH {
        return Err(refuse("nested too deep"));
    }
    let header = entry.header().clone();
    let mode = header.mode().map_err(|e| refuse(&e.to_string()))? & 0o777;
    let mtime = header.mtime().unwrap_or(0);
    let kind = header.entry_type();
    let mut xattrs = BTreeMap::new();
    if let Some(extensions) = entry.pax_extensions().map_err(|e| refuse(&e.to_string()))? {
        for extension in extensions {
            let extension = extension.map_err(|e| refuse(&e.to_string()))?;
            let key = extension
                .key()
                .map_err(|_| refuse("a PAX record that is not UTF-8"))?;
            if let Some(name) = key.strip_prefix(XATTR_PAX) {
                if !KEPT_XATTRS.contains(&name) || !kind.is_dir() {
                    return Err(refuse(&format!(
                        "the attribute {name} is not kept in backups"
                    )));
                }
                let value = extension
                    .value()
                    .map_err(|_| refuse("an attribute that is not UTF-8"))?;
                xattrs.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    let item = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => Item::File {
            size: entry.size(),
            sha256: String::new(),
            mode,
        },
        tar::EntryType::Directory => Item::Dir { mode, xattrs },
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a link without a target"))?;
            let target = String::from_utf8(target.into_owned())
                .map_err(|_| refuse("a link target that is not UTF-8"))?;
            if rel.is_empty() || !link_stays_inside(Path::new(&rel), Path::new(&target)) {
                return Err(refuse(
                    "links that point outside the server's files are refused",
                ));
            }
            Item::Link { target }
        }
        tar::EntryType::Char
            if header.device_major().ok().flatten() == Some(0)
                && header.device_minor().ok().flatten() == Some(0) =>
        {
            Item::Whiteout
        }
        tar::EntryType::Link => return Err(refuse("hard links are refused")),
        _ => return Err(refuse("devices, fifos and other special files are refused")),
    };
    if rel.is_empty() && !matches!(item, Item::Dir { .. }) {
        return Err(refuse("upper/ must be a folder"));
    }
    Ok(Entry { rel, mtime, item })
}

/// Reads a backup archive from `reader` whole, checking every entry against the manifest;
/// `each` sees every entry of the upper layer (a file's content as it is read) in order.
fn read_archive<R: Read>(
    reader: R,
    mut each: impl FnMut(&Entry, &mut dyn Read) -> Result<(), AgentError>,
) -> Result<(Meta, Manifest, Counts), AgentError> {
    let mut gz = flate2::read::GzDecoder::new(reader);
    let mut meta: Option<Meta> = None;
    let mut meta_sha256 = String::new();
    let mut manifest: Option<Manifest> = None;
    let mut found = Manifest::default();
    let mut counts = Counts::default();
    {
        let mut archive = tar::Archive::new(&mut gz);
        let entries = archive
            .entries()
            .map_err(|e| damaged(format!("cannot read it: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| damaged(format!("cannot read it: {e}")))?;
            if manifest.is_some() {
                return Err(damaged("entries follow its manifest"));
            }
            let path = entry.path_bytes().into_owned();
            if meta.is_none() {
                if path != META.as_bytes() || entry.size() > 1 << 20 {
                    return Err(damaged(format!("it does not start with {META}")));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| damaged(format!("cannot read {META}: {e}")))?;
                meta_sha256 = sha256_hex(&bytes);
                let parsed: Meta = serde_json::from_slice(&bytes)
                    .map_err(|e| damaged(format!("{META} is not readable: {e}")))?;
                if parsed.format != FORMAT {
                    return Err(AgentError::Invalid(format!(
                        "the backup is in format {}, and this agent reads format {FORMAT}: use a newer agent",
                        parsed.format
                    )));
                }
                meta = Some(parsed);
                continue;
            }
            if path == MANIFEST.as_bytes() {
                if entry.size() > 256 << 20 {
                    return Err(damaged("its manifest is too large"));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| damaged(format!("cannot read its manifest: {e}")))?;
                manifest = Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| damaged(format!("its manifest is not readable: {e}")))?,
                );
                continue;
            }
            let mut checked = check_entry(&mut entry).map_err(AgentError::Invalid)?;
            if found.entries.contains_key(&checked.rel) {
                return Err(damaged(format!("{:?} is in it twice", checked.rel)));
            }
            if let Item::File { size, .. } = checked.item {
                let mut hashing = Hashing::new((&mut entry).take(size));
                each(&checked, &mut hashing)?;
                // Whatever `each` left unread is hashed too.
                std::io::copy(&mut hashing, &mut std::io::sink())
                    .map_err(|e| damaged(format!("cannot read {:?}: {e}", checked.rel)))?;
                let (read, sha256) = hashing.finish();
                if read != size {
                    return Err(damaged(format!("{:?} is cut short", checked.rel)));
                }
                if let Item::File { sha256: s, .. } = &mut checked.item {
                    *s = sha256;
                }
            } else {
                each(&checked, &mut std::io::empty())?;
            }
            counts.add(&checked.item).map_err(damaged)?;
            found.entries.insert(checked.rel, checked.item);
        }
    }
    // The rest of the stream (gzip's trailer with its checksum) is read too.
    std::io::copy(&mut gz, &mut std::io::sink())
        .map_err(|e| damaged(format!("cannot read it to its end: {e}")))?;
    let meta = meta.ok_or_else(|| damaged("it is empty"))?;
    let manifest =
        manifest.ok_or_else(|| damaged("it is cut short: it ends before its manifest"))?;
    if manifest.meta_sha256 != meta_sha256 {
        return Err(damaged(format!(
            "{META} differs from what its manifest says"
        )));
    }
    found.meta_sha256 = meta_sha256;
    if found != manifest {
        let differs = manifest
            .entries
            .iter()
            .find(|(rel, item)| found.entries.get(*rel) != Some(item))
            .map(|(rel, _)| rel.clone())
            .or_else(|| {
                found
                    .entries
                    .keys()
                    .find(|rel| !manifest.entries.contains_key(*rel))
                    .cloned()
            })
            .unwrap_or_default();
        return Err(damaged(format!(
            "{:?} differs from what its manifest says",
            archive_path(&differs)
        )));
    }
    Ok((meta, manifest, counts))
}

/// A digest of an overlay's content as the file system shows it: names, sizes and times.
fn overlay_version(dir: &Path) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut lines = Vec::new();
    while let Some((path, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let rel = entry.path();
            let rel = rel
                .strip_prefix(dir)
                .unwrap_or(&rel)
                .to_string_lossy()
                .into_owned();
            lines.push(format!("{rel}\0{}\0{}\n", meta.len(), meta.mtime()));
            if meta.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    lines.sort();
    for line in lines {
        digest.update(line.as_bytes());
    }
    hex(&digest.finish().as_ref()[..8])
}

/// The owner's folder of a server's backups; made when `create`.
fn server_backups(host: &Host<'_>, name: &ServerName, create: bool) -> Result<PathBuf, AgentError> {
    let all = host.layout.backups();
    if !all.is_dir() {
        return Err(AgentError::failed(
            format!("{} is missing", all.display()),
            "run `l4d2-agent setup` as root to make it",
        ));
    }
    let dir = all.join(name.as_str());
    if create {
        crate::fsutil::create_dir(&dir, 0o700).map_err(crate::error::io_context("create", &dir))?;
    }
    Ok(dir)
}

fn summary(server: &ServerName, meta: &Meta, counts: Counts, bytes: u64) -> BackupInfo {
    BackupInfo {
        server: server.clone(),
        id: meta.id.clone(),
        created: meta.created.clone(),
        kind: meta.kind,
        bytes,
        files: counts.files,
        content_bytes: counts.content_bytes,
        deleted: counts.deleted,
        base_build: meta.base_build.clone(),
        overlays: meta.overlays.clone(),
    }
}

/// Opens one of the owner's archives, never through a link.
fn open_archive(dir: &Path, id: &str) -> Result<std::fs::File, AgentError> {
    let path = dir.join(format!("{id}.tar.gz"));
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AgentError::NotFound {
                what: "backup",
                name: id.to_owned(),
            },
            _ => AgentError::failed(format!("cannot open {}", path.display()), e),
        })
}

/// `backup create <server>`: the server's upper layer and spec, while it runs or not.
pub fn create(host: &Host<'_>, name: &str, kind: BackupKind) -> Result<BackupInfo, AgentError> {
    let name = server_name(name)?;
    let spec = crate::server::read_spec(host, &name)?;
    let dir = server_backups(host, &name, true)?;
    let now = crate::events::now_micros();
    let created = left4me_protocol::time::rfc3339(now - now % 1_000_000).replace(".000000Z", "Z");
    let mut id = id_of(&created);
    let mut n = 1;
    while dir.join(format!("{id}.tar.gz")).exists() {
        n += 1;
        id = format!("{}-{n}", id_of(&created));
    }
    let meta = Meta {
        format: FORMAT,
        server: name.clone(),
        id: id.clone(),
        created,
        kind,
        spec: spec.to_yaml(),
        base_build: crate::install::installed_build(&host.layout),
        overlays: spec
            .overlays
            .iter()
            .map(|o| OverlayUsed {
                name: o.clone(),
                version: overlay_version(&host.layout.overlay(o)),
            })
            .collect(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let partial = dir.join(format!(".{id}.partial"));
    let result = write_archive(&partial, &meta, &name);
    let (counts, bytes) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let archive = dir.join(format!("{id}.tar.gz"));
    std::fs::rename(&partial, &archive).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        AgentError::failed(format!("cannot name {}", archive.display()), e)
    })?;
    let info = summary(&name, &meta, counts, bytes);
    write_summary(&dir, &info)?;
    Ok(info)
}

fn write_summary(dir: &Path, info: &BackupInfo) -> Result<(), AgentError> {
    let path = dir.join(format!("{}.json", info.id));
    let text = serde_json::to_vec_pretty(info).expect("a backup's summary serialises");
    // `backup list` writes a missing summary, maybe while `create` writes it.
    crate::fsutil::write_shared(&path, &text, 0o600)
        .map_err(crate::error::io_context("write", &path))
}

/// Has root stream the upper layer, checks it and writes the archive to `partial`.
fn write_archive(
    partial: &Path,
    meta: &Meta,
    name: &ServerName,
) -> Result<(Counts, u64), AgentError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(partial)
        .map_err(crate::error::io_context("create", partial))?;
    let gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    );
    let mut writer = Writer::new(gz);
    writer.meta(meta).map_err(write_failed)?;
    let mut child = std::process::Command::new("sudo")
        .args([
            "-n",
            crate::service::INSTALLED_AGENT,
            "privileged",
            "backup",
            name.as_str(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| AgentError::failed("cannot run sudo", e))?;
    let mut stderr = child.stderr.take().expect("piped");
    let told = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut text);
        text
    });
    let stream = child.stdout.take().expect("piped");
    let copied = copy_stream(stream, &mut writer);
    if copied.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        copied?;
    }
    let status = child
        .wait()
        .map_err(|e| AgentError::failed("cannot wait for sudo", e))?;
    let told = told.join().unwrap_or_default();
    if !status.success() {
        // The agent's own last word, and a panic's, which comes before it.
        let said: Vec<&str> = told
            .lines()
            .filter(|l| l.starts_with("l4d2-agent: ") || l.contains("panicked at"))
            .map(|l| l.trim_start_matches("l4d2-agent: "))
            .collect();
        let said = if said.is_empty() {
            told.trim().to_owned()
        } else {
            said.join("; ")
        };
        return Err(AgentError::Relayed(format!(
            "cannot back up server \"{name}\": {said}"
        )));
    }
    let (gz, _, counts) = writer.finish().map_err(write_failed)?;
    let file = gz
        .finish()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .map_err(write_failed)?;
    file.sync_all().map_err(write_failed)?;
    let bytes = file.metadata().map_err(write_failed)?.len();
    Ok((counts, bytes))
}

/// Writing the archive failed: a full disk is said as such.
fn write_failed(e: std::io::Error) -> AgentError {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => AgentError::failed(
            "the backup does not fit: the disk is full; nothing was kept",
            e,
        ),
        _ => AgentError::failed("cannot write the backup; nothing was kept", e),
    }
}

/// Copies root's stream of the upper layer into `writer`, checking every entry.
fn copy_stream<W: Write>(stream: impl Read, writer: &mut Writer<W>) -> Result<(), AgentError> {
    let refused = |e: String| AgentError::failed("the server's files cannot be backed up", e);
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| refused(format!("cannot read what root sent: {e}")))?;
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| refused(format!("cannot read what root sent: {e}")))?;
        let checked = check_entry(&mut entry).map_err(refused)?;
        if !seen.insert(checked.rel.clone()) {
            return Err(refused(format!("{:?} came twice", checked.rel)));
        }
        let rel = checked.rel.as_str();
        match &checked.item {
            Item::File { size, mode, .. } => {
                writer.file(rel, *mode, checked.mtime, *size, &mut entry)
            }
            Item::Dir { mode, xattrs } => writer.dir(rel, *mode, checked.mtime, xattrs),
            Item::Link { target } => writer.link(rel, target, checked.mtime),
            Item::Whiteout => writer.whiteout(rel, checked.mtime),
        }
        .map_err(write_failed)?;
    }
    Ok(())
}

/// `privileged backup <server>`, as root: streams the server's upper layer as a plain tar on
/// stdout, its folders' overlayfs attributes read by root and everything else by the game
/// account.
pub fn privileged_backup(host: &Host<'_>, name: &str) -> Result<(), AgentError> {
    let name = server_name(name)?;
    let game = host.game()?;
    let state = host.state()?;
    let failed =
        |e: DirError| AgentError::failed(format!("cannot read server \"{name}\"'s files"), e);
    let upper = state
        .open_beneath(&Path::new("runtime").join(name.as_str()).join("upper"))
        .map_err(failed)?;
    let Some(upper) = upper else {
        // Never started: nothing of its own yet.
        let writer = Writer::new(std::io::stdout().lock());
        writer
            .finish_plain()
            .and_then(|mut w| w.flush())
            .map_err(|e| AgentError::failed("cannot write the stream", e))?;
        return Ok(());
    };
    upper.check_owner(game.uid).map_err(failed)?;
    let xattrs = overlay_attributes(&upper).map_err(failed)?;
    let path = upper.path().to_path_buf();
    // A database the game has open is read through the game's own view of it: SQLite's
    // locks are kept on the overlay's file, which a reader of the upper layer never sees
    // (it would take a transaction in flight for a crashed one and roll it back under the
    // game).
    let merged = host.layout.server(&name).merged();
    let live = (crate::mountinfo::count_at(&host.mount_table()?, &merged) > 0).then_some(merged);
    crate::accounts::run_as(game, move || {
        // Stdout itself: the child keeps descriptors 0-2 and closes root's others.
        // SAFETY: descriptor 1 is open for the process's life; ManuallyDrop never closes it.
        let out = std::mem::ManuallyDrop::new(unsafe {
            <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(1)
        });
        let mut writer = Writer::new(std::io::BufWriter::new(&*out));
        stream_upper(&path, live.as_deref(), &xattrs, &mut writer)?;
        writer
            .finish_plain()
            .and_then(|mut w| w.flush())
            .map_err(|e| AgentError::failed("cannot write the stream", e))
    })
}

/// The kept overlayfs attributes of every folder of an upper layer, by path below it; read
/// as root through descriptors, never following a link.
fn overlay_attributes(upper: &Dir) -> Result<BTreeMap<String, BTreeMap<String, String>>, DirError> {
    let mut found = BTreeMap::new();
    let mut stack: Vec<(String, Dir)> = Vec::new();
    let top = Dir::open_no_follow(upper.path())?;
    stack.push((String::new(), top));
    while let Some((rel, dir)) = stack.pop() {
        let mut kept = BTreeMap::new();
        for name in KEPT_XATTRS {
            if let Some(value) = dir.xattr(name)? {
                kept.insert(
                    (*name).to_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                );
            }
        }
        if !kept.is_empty() {
            found.insert(rel.clone(), kept);
        }
        if rel.split('/').count() >= MAX_DEPTH {
            continue;
        }
        for child in dir.names()? {
            match dir.open_dir(&child) {
                Ok(Some(sub)) => {
                    let path = if rel.is_empty() {
                        child
                    } else {
                        format!("{rel}/{child}")
                    };
                    stack.push((path, sub));
                }
                // Files, links, whiteouts, or gone since listed.
                Ok(None) | Err(DirError::NotDir { .. } | DirError::Symlink { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(found)
}

/// As the game account: writes the upper layer at `upper` into `writer`, folders first; the
/// databases of a running game are read through `live`, its merged view.
fn stream_upper<W: Write>(
    upper: &Path,
    live: Option<&Path>,
    xattrs: &BTreeMap<String, BTreeMap<String, String>>,
    writer: &mut Writer<W>,
) -> Result<(), AgentError> {
    let io = |what: &str, path: &Path| crate::error::io_context(what, path);
    let none = BTreeMap::new();
    let meta = std::fs::symlink_metadata(upper).map_err(io("inspect", upper))?;
    writer
        .dir(
            "",
            meta.mode(),
            meta.mtime().max(0) as u64,
            xattrs.get("").unwrap_or(&none),
        )
        .map_err(io("stream", upper))?;
    let mut stack = vec![(upper.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io("list", &dir))? {
            let entry = entry.map_err(io("list", &dir))?;
            let name = entry.file_name().into_string().map_err(|raw| {
                AgentError::Invalid(format!(
                    "{} has a name that is not UTF-8 ({}): rename or delete it",
                    dir.display(),
                    raw.to_string_lossy()
                ))
            })?;
            names.push(name);
        }
        names.sort();
        let databases: Vec<String> = names
            .iter()
            .filter(|n| is_sqlite(&dir.join(n)))
            .cloned()
            .collect();
        for name in names {
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if REGENERATED.contains(&child_rel.as_str()) {
                continue;
            }
            // A copy made through SQLite is whole: its journal must not come back beside it.
            if SQLITE_SIDE_FILES.iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|db| databases.iter().any(|d| d == db))
            }) {
                continue;
            }
            let path = dir.join(&name);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Deleted since listed: the game is running.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("inspect", &path)(e)),
            };
            let mtime = meta.mtime().max(0) as u64;
            let file_type = meta.file_type();
            let streamed = if file_type.is_dir() {
                if child_rel.split('/').count() >= MAX_DEPTH {
                    return Err(AgentError::Invalid(format!(
                        "{} is nested too deep",
                        path.display()
                    )));
                }
                stack.push((path.clone(), child_rel.clone()));
                writer.dir(
                    &child_rel,
                    meta.mode(),
                    mtime,
                    xattrs.get(&child_rel).unwrap_or(&none),
                )
            } else if file_type.is_symlink() {
                let target = std::fs::read_link(&path).map_err(io("read", &path))?;
                let target = target.to_str().ok_or_else(|| {
                    AgentError::Invalid(format!(
                        "{} points at a name that is not UTF-8",
                        path.display()
                    ))
                })?;
                if !link_stays_inside(Path::new(&child_rel), Path::new(target)) {
                    return Err(AgentError::Invalid(format!(
                        "{} links to {target}, outside the server's files: a backup could not bring it back; remove it",
                        path.display()
                    )));
                }
                writer.link(&child_rel, target, mtime)
            } else if file_type.is_char_device() && meta.rdev() == 0 {
                writer.whiteout(&child_rel, mtime)
            } else if file_type.is_file() {
                let content = if databases.contains(&name) {
                    let open = live.map_or_else(|| path.clone(), |m| m.join(&child_rel));
                    sqlite_copy(&open).or_else(|_| settled_read(&path))
                } else {
                    settled_read(&path)
                };
                match content {
                    Ok(Content::Whole(bytes)) => writer.file(
                        &child_rel,
                        meta.mode(),
                        mtime,
                        bytes.len() as u64,
                        bytes.as_slice(),
                    ),
                    Ok(Content::Stream(file, size)) => {
                        writer.file(&child_rel, meta.mode(), mtime, size, file)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("read", &path)(e)),
                }
            } else {
                // Sockets and fifos are of a running process, not state.
                eprintln!(
                    "l4d2-agent: note: {} is not a file; left out",
                    path.display()
                );
                continue;
            };
            streamed.map_err(io("stream", &path))?;
        }
    }
    Ok(())
}

enum Content {
    Whole(Vec<u8>),
    /// A file too large to hold: streamed up to its size when opened.
    Stream(std::fs::File, u64),
}

fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// A file as it is between two writes: read whole, and read again while it changed under
/// the reading (the game writes while it runs), a few times at most.
fn settled_read(path: &Path) -> std::io::Result<Content> {
    let stamp = |m: &std::fs::Metadata| (m.len(), m.mtime(), m.mtime_nsec(), m.ctime_nsec());
    let mut last = Vec::new();
    for _ in 0..5 {
        let mut file = open_no_follow(path)?;
        let before = file.metadata()?;
        if before.len() > SETTLED_READ_MAX {
            return Ok(Content::Stream(file, before.len()));
        }
        last.clear();
        (&mut file).take(SETTLED_READ_MAX).read_to_end(&mut last)?;
        let after = file.metadata()?;
        if stamp(&before) == stamp(&after) && last.len() as u64 == after.len() {
            return Ok(Content::Whole(last));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(Content::Whole(last))
}

/// Whether `path` is a SQLite database (by its header).
fn is_sqlite(path: &Path) -> bool {
    let mut header = [0u8; 16];
    open_no_follow(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header == b"SQLite format 3\0")
}

/// A SQLite database copied through SQLite's online backup: whole, as of one transaction,
/// however the game writes to it meanwhile. One step copies every page under one read lock
/// (a plugin's database is a few megabytes: milliseconds): a copy made in steps starts over
/// whenever another process writes between them, and a busy game writes all the time.
fn sqlite_copy(path: &Path) -> std::io::Result<Content> {
    use rusqlite::{Connection, OpenFlags};
    let other = |e: rusqlite::Error| std::io::Error::other(e.to_string());
    let source = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(other)?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(other)?;
    let mut copy = Connection::open_in_memory().map_err(other)?;
    {
        use rusqlite::backup::StepResult;
        let backup = rusqlite::backup::Backup::new(&source, &mut copy).map_err(other)?;
        // A writer holding its lock makes a step busy: tried again for up to ten seconds.
        let mut waits = 0;
        loop {
            match backup.step(-1).map_err(other)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if waits < 1000 => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => {
                    return Err(std::io::Error::other(
                        "the database stayed locked for ten seconds",
                    ));
                }
            }
        }
    }
    let data = copy.serialize(rusqlite::MAIN_DB).map_err(other)?;
    Ok(Content::Whole(data.to_vec()))
}

/// `backup list <server>`: newest first, from the summaries beside the archives (an archive
/// without one is read to make it).
pub fn list(host: &Host<'_>, name: &str) -> Result<BackupList, AgentError> {
    let name = server_name(name)?;
    let dir = server_backups(host, &name, false)?;
    let mut backups = Vec::new();
    for id in ids(&dir)? {
        let summary = std::fs::read(dir.join(format!("{id}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<BackupInfo>(&b).ok())
            .filter(|info| info.id == id);
        match summary {
            Some(info) => backups.push(info),
            None => {
                let info = verify_in(&dir, &name, &id)?;
                write_summary(&dir, &info)?;
                backups.push(info);
            }
        }
    }
    Ok(BackupList { backups })
}

/// The ids of the archives in a server's folder, newest first.
fn ids(dir: &Path) -> Result<Vec<String>, AgentError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::error::io_context("read", dir)(e)),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".tar.gz")?.to_owned();
            check_id(&id).ok().map(|()| id)
        })
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    Ok(ids)
}

/// `backup verify <server> <id>`: reads the archive whole against its manifest.
pub fn verify(host: &Host<'_>, name: &str, id: &str) -> Result<BackupInfo, AgentError> {
    let name = server_name(name)?;
    check_id(id)?;
    let dir = server_backups(host, &name, false)?;
    verify_in(&dir, &name, id)
}

fn verify_in(dir: &Path, name: &ServerName, id: &str) -> Result<BackupInfo, AgentError> {
    let file = open_archive(dir, id)?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (meta, _, counts) = read_archive(std::io::BufReader::new(file), |_, _| Ok(()))?;
    if meta.id != id {
        return Err(damaged(format!("it calls itself {:?}", meta.id)));
    }
    Ok(summary(name, &meta, counts, bytes))
}

/// `backup prune <server>`: removes the backups retention does not keep.
pub fn prune(
    host: &Host<'_>,
    name: &str,
    retention: Retention,
) -> Result<BackupPruned, AgentError> {
    let name = server_name(name)?;
    retention.check().map_err(AgentError::Invalid)?;
    let dir = server_backups(host, &name, false)?;
    let ids = ids(&dir)?;
    let created: Vec<String> = ids.iter().map(|id| created_of(id)).collect();
    let keep = retention.keep(&created.iter().map(String::as_str).collect::<Vec<_>>());
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for (id, keep) in ids.into_iter().zip(keep) {
        if keep {
            kept.push(id);
        } else {
            for file in [format!("{id}.tar.gz"), format!("{id}.json")] {
                match std::fs::remove_file(dir.join(&file)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(crate::error::io_context("remove", &dir.join(file))(e)),
                }
            }
            removed.push(id);
        }
    }
    Ok(BackupPruned {
        server: name,
        kept,
        removed,
    })
}

/// `backup get <server> <id>`: the archive on stdout, as it is on the host.
pub fn get(host: &Host<'_>, name: &str, id: &str, out: &mut dyn Write) -> Result<(), AgentError> {
    let name = server_name(name)?;
    check_id(id)?;
    let dir = server_backups(host, &name, false)?;
    let mut file = open_archive(&dir, id)?;
    std::io::copy(&mut file, out).map_err(AgentError::Output)?;
    out.flush().map_err(AgentError::Output)
}

/// `backup put <server>`: an archive from stdin (made on this host or another) kept as one
/// of the server's backups, once it was read whole against its manifest.
pub fn put(host: &Host<'_>, name: &str, input: &mut dyn Read) -> Result<BackupInfo, AgentError> {
    let name = server_name(name)?;
    let dir = server_backups(host, &name, true)?;
    let stamp = crate::events::now_micros();
    let partial = dir.join(format!(".put-{stamp}.partial"));
    let kept = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)
            .map_err(crate::error::io_context("create", &partial))?;
        std::io::copy(&mut input.take(MAX_CONTENT), &mut file)
            .and_then(|_| file.sync_all())
            .map_err(crate::error::io_context("write", &partial))?;
        let reader =
            std::fs::File::open(&partial).map_err(crate::error::io_context("read", &partial))?;
        let bytes = reader.metadata().map(|m| m.len()).unwrap_or(0);
        let (meta, _, counts) = read_archive(std::io::BufReader::new(reader), |_, _| Ok(()))?;
        check_id(&meta.id)?;
        let archive = dir.join(format!("{}.tar.gz", meta.id));
        if archive.exists() {
            return Err(AgentError::InUse(format!(
                "server \"{name}\" already has backup {}",
                meta.id
            )));
        }
        std::fs::rename(&partial, &archive).map_err(crate::error::io_context("name", &archive))?;
        Ok(summary(&name, &meta, counts, bytes))
    })();
    let info = kept.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    write_summary(&dir, &info)?;
    Ok(info)
}

/// `backup restore <server> <id> [--from <server>]`: the backup (of this server, or of
/// `from`) becomes the server's upper layer. Checked whole first; the server as it was is
/// backed up (the undo), stopped, restored and started again if it ran.
pub fn restore(
    host: &Host<'_>,
    systemd: &dyn crate::systemd::Systemd,
    name: &str,
    id: &str,
    from: Option<&str>,
) -> Result<BackupInfo, AgentError> {
    let name = server_name(name)?;
    let from = from
        .map(server_name)
        .transpose()?
        .unwrap_or_else(|| name.clone());
    check_id(id)?;
    // Its spec says it exists here; the backup's spec is not taken: the app (or the admin)
    // declares the server, the backup gives it its files.
    crate::server::read_spec(host, &name)?;
    let dir = server_backups(host, &from, false)?;
    let info = verify_in(&dir, &from, id)?;
    let unit = crate::systemd::unit(&name);
    let running = systemd.show(&unit).is_ok_and(|s| s.is_active());
    if host.layout.server(&name).upper().is_dir() {
        create(host, name.as_str(), BackupKind::BeforeRestore)?;
    }
    if running {
        crate::service::control(host, systemd, crate::service::Action::Stop, name.as_str())?;
    }
    let backup = format!("{from}/{id}");
    crate::service::sudo_agent(
        &["privileged", "restore", name.as_str(), "--backup", &backup],
        &format!("restore server \"{name}\""),
    )?;
    if running {
        crate::service::control(host, systemd, crate::service::Action::Start, name.as_str())?;
    }
    Ok(info)
}

/// `privileged restore <server> --backup <from>/<id>`, as root, with the server unmounted:
/// the game account unpacks the owner's archive beside the upper layer, root gives its
/// folders their overlayfs attributes and swaps it in.
pub fn privileged_restore(
    host: &Host<'_>,
    systemd: &dyn crate::systemd::Systemd,
    name: &str,
    backup: &str,
) -> Result<(), AgentError> {
    let name = server_name(name)?;
    let (from, id) = backup
        .split_once('/')
        .ok_or_else(|| AgentError::Invalid(format!("--backup {backup:?}: give <server>/<id>")))?;
    let from = server_name(from)?;
    check_id(id)?;
    let (owner, game) = (host.owner()?, host.game()?);
    let state = host.state()?;
    let failed = |e: DirError| AgentError::failed(format!("cannot restore server \"{name}\""), e);
    // The archive is the owner's: opened below the owner's folder, never through a link.
    let folder = state
        .open_beneath(&Path::new("backups").join(from.as_str()))
        .map_err(failed)?
        .ok_or_else(|| AgentError::NotFound {
            what: "backup",
            name: backup.to_owned(),
        })?;
    folder.check_owner(owner.uid).map_err(failed)?;
    let archive = Path::new("backups")
        .join(from.as_str())
        .join(format!("{id}.tar.gz"));
    let read = || -> Result<std::fs::File, AgentError> {
        let file = state
            .open_file_beneath(&archive)
            .map_err(failed)?
            .ok_or_else(|| AgentError::NotFound {
                what: "backup",
                name: backup.to_owned(),
            })?;
        let meta = file.metadata().map_err(|e| {
            failed(DirError::Io {
                op: "inspect",
                path: archive.clone(),
                source: e,
            })
        })?;
        if meta.uid() != owner.uid || !meta.is_file() {
            return Err(AgentError::Invalid(format!(
                "{}: not a file of {}",
                archive.display(),
                host.owner_account
            )));
        }
        Ok(file)
    };
    // Read whole by root first; the game account unpacks the same open file after, checked
    // against the same manifest.
    let mut file = read()?;
    let (_, manifest, _) = read_archive(std::io::BufReader::new(&file), |_, _| Ok(()))?;
    std::io::Seek::rewind(&mut file).map_err(|e| {
        failed(DirError::Io {
            op: "read",
            path: archive.clone(),
            source: e,
        })
    })?;
    let server = crate::server::runtime_folder_for(&state, &name)?;
    let merged = host.layout.server(&name).merged();
    let mounted = || -> Result<bool, AgentError> {
        Ok(crate::mountinfo::count_at(&host.mount_table()?, &merged) > 0)
    };
    if systemd
        .show(&crate::systemd::unit(&name))
        .is_ok_and(|s| s.is_active())
    {
        return Err(AgentError::InUse(format!(
            "server \"{name}\" is running: stop it before a restore"
        )));
    }
    if mounted()? {
        // Stopped, with its game tree still mounted (its game ended on its own): the mount
        // unit's stop unmounts it, taking the runtime lock itself.
        systemd
            .control("stop", &crate::systemd::mount_unit(&name))
            .map_err(|e| AgentError::failed(format!("cannot unmount server \"{name}\""), e))?;
    }
    let _lock = crate::server::lock_runtime(&server, &name)?;
    if mounted()? {
        return Err(AgentError::InUse(format!(
            "server \"{name}\" is mounted: stop it before a restore"
        )));
    }
    server.remove_tree("restoring").map_err(failed)?;
    let (restoring, _) = server
        .ensure_dir("restoring", 0o755, (game.uid, game.gid))
        .map_err(failed)?;
    let target = restoring.path().to_path_buf();
    // The game account's step keeps only descriptors 0-2: the archive becomes its stdin.
    // SAFETY: both descriptors are open; 0 is this process's own, unused from here on.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 0) } < 0 {
        return Err(AgentError::failed(
            format!("cannot restore server \"{name}\""),
            std::io::Error::last_os_error(),
        ));
    }
    drop(file);
    let checked = &manifest;
    let unpacked = crate::accounts::run_as(game, move || {
        // SAFETY: descriptor 0 is the archive, open for the process's life; never closed here.
        let file = std::mem::ManuallyDrop::new(unsafe {
            <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0)
        });
        let (_, unpacked, _) = read_archive(std::io::BufReader::new(&*file), |entry, content| {
            unpack_entry(&target, entry, content)
        })?;
        // The owner's file, changed between root's reading and this one, is refused.
        if &unpacked != checked {
            return Err(damaged("it changed while it was restored"));
        }
        Ok(())
    });
    if let Err(e) = unpacked {
        let _ = server.remove_tree("restoring");
        return Err(e);
    }
    // Only root can give folders overlayfs's attributes; each folder is reached without
    // following a link, so none of the game account's links leads root elsewhere.
    for (rel, item) in &manifest.entries {
        let Item::Dir { xattrs, .. } = item else {
            continue;
        };
        if xattrs.is_empty() {
            continue;
        }
        let mut dir = Dir::open_no_follow(restoring.path()).map_err(failed)?;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            dir = dir.open_dir(part).map_err(failed)?.ok_or_else(|| {
                AgentError::failed(
                    format!("cannot restore server \"{name}\""),
                    format!("{rel} went missing while it was restored"),
                )
            })?;
        }
        for (attribute, value) in xattrs {
            dir.set_xattr(attribute, value.as_bytes()).map_err(failed)?;
        }
    }
    if server.open_dir("upper").map_err(failed)?.is_some() {
        server.exchange("restoring", "upper").map_err(failed)?;
        server.remove_tree("restoring").map_err(failed)?;
    } else {
        server
            .rename_noreplace("restoring", &server, "upper")
            .map_err(failed)?;
    }
    Ok(())
}

/// As the game account: one checked entry into the folder being restored. Every folder on
/// the way is opened without following a link.
fn unpack_entry(root: &Path, entry: &Entry, content: &mut dyn Read) -> Result<(), AgentError> {
    let failed = |e: DirError| AgentError::failed("cannot unpack the backup", e);
    if entry.rel.is_empty() {
        if let Item::Dir { mode, .. } = entry.item {
            Dir::open_no_follow(root)
                .and_then(|d| d.chmod(mode))
                .map_err(failed)?;
        }
        return Ok(());
    }
    let (parent_rel, leaf) = entry.rel.rsplit_once('/').unwrap_or(("", &entry.rel));
    let mut parent = Dir::open_no_follow(root).map_err(failed)?;
    for part in parent_rel.split('/').filter(|p| !p.is_empty()) {
        parent = parent.open_dir(part).map_err(failed)?.ok_or_else(|| {
            AgentError::failed(
                "cannot unpack the backup",
                format!("{parent_rel} is not a folder"),
            )
        })?;
    }
    let me = (unsafe { libc::geteuid() }, unsafe { libc::getegid() });
    match &entry.item {
        Item::Dir { mode, .. } => {
            parent.ensure_dir(leaf, *mode, me).map_err(failed)?;
        }
        Item::File { mode, .. } => {
            let mut file = parent.create_file(leaf, *mode).map_err(failed)?;
            std::io::copy(content, &mut file)
                .map_err(|e| AgentError::failed(format!("cannot unpack {}", entry.rel), e))?;
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.mtime);
            let _ = file.set_modified(when);
        }
        Item::Link { target } => parent.symlink(leaf, target).map_err(failed)?,
        Item::Whiteout => parent.whiteout(leaf).map_err(failed)?,
    }
    Ok(())
}

impl Report for BackupInfo {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Backup(self.clone())
    }

    fn to_human(&self) -> String {
        use left4me_protocol::units::human_bytes;
        let mut text = format!(
            "backup {} of {} ({}, {})\n  {} in the archive: {} files ({}), {} deleted\n  game build {}\n",
            self.id,
            self.server,
            self.created,
            self.kind.describe(),
            human_bytes(self.bytes),
            self.files,
            human_bytes(self.content_bytes),
            self.deleted,
            self.base_build.as_deref().unwrap_or("not installed"),
        );
        for overlay in &self.overlays {
            text.push_str(&format!(
                "  overlay {} (version {})\n",
                overlay.name, overlay.version
            ));
        }
        text
    }
}

impl Report for BackupList {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Backups(self.clone())
    }

    fn to_human(&self) -> String {
        use left4me_protocol::units::human_bytes;
        if self.backups.is_empty() {
            return "no backups\n".to_owned();
        }
        let mut text = format!(
            "{:<20} {:<17} {:>10} {:>7}  game build\n",
            "ID", "MADE", "SIZE", "FILES"
        );
        for b in &self.backups {
            text.push_str(&format!(
                "{:<20} {:<17} {:>10} {:>7}  {}\n",
                b.id,
                b.kind.describe(),
                human_bytes(b.bytes),
                b.files,
                b.base_build.as_deref().unwrap_or("–")
            ));
        }
        text
    }
}

impl Report for BackupPruned {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::BackupPruned(self.clone())
    }

    fn to_human(&self) -> String {
        format!(
            "kept {} backup{} of {}; removed {}\n",
            self.kept.len(),
            if self.kept.len() == 1 { "" } else { "s" },
            self.server,
            if self.removed.is_empty() {
                "none".to_owned()
            } else {
                self.removed.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            format: FORMAT,
            server: ServerName::new("coop-1").unwrap(),
            id: "20261130T211500Z".into(),
            created: "2026-11-30T21:15:00Z".into(),
            kind: BackupKind::Manual,
            spec: "version: 1\n".into(),
            base_build: Some("123".into()),
            overlays: vec![],
            agent_version: "0".into(),
        }
    }

    /// An archive as `create` writes it.
    fn archive(build: impl FnOnce(&mut Writer<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
        let mut writer = Writer::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        writer.meta(&meta()).unwrap();
        writer.dir("", 0o755, 0, &BTreeMap::new()).unwrap();
        build(&mut writer);
        let (gz, _, _) = writer.finish().unwrap();
        gz.finish().unwrap()
    }

    fn read(bytes: &[u8]) -> Result<Counts, String> {
        read_archive(bytes, |_, _| Ok(()))
            .map(|(_, _, counts)| counts)
            .map_err(|e| e.to_string())
    }

    fn sample(w: &mut Writer<flate2::write::GzEncoder<Vec<u8>>>) {
        let opaque = BTreeMap::from([("trusted.overlay.opaque".to_owned(), "y".to_owned())]);
        w.dir("left4dead2", 0o755, 0, &opaque).unwrap();
        w.file("left4dead2/banned_user.cfg", 0o644, 0, 5, &b"hello"[..])
            .unwrap();
        w.whiteout("left4dead2/motd.txt", 0).unwrap();
        w.link("left4dead2/latest.log", "banned_user.cfg", 0)
            .unwrap();
    }

    #[test]
    fn an_archive_reads_back_with_its_whiteouts_links_and_attributes() {
        let bytes = archive(sample);
        let mut seen = Vec::new();
        let (meta, manifest, counts) = read_archive(bytes.as_slice(), |entry, content| {
            let mut text = String::new();
            content.read_to_string(&mut text).unwrap();
            seen.push((entry.rel.clone(), text));
            Ok(())
        })
        .unwrap();
        assert_eq!(meta.id, "20261130T211500Z");
        assert_eq!(
            (counts.files, counts.content_bytes, counts.deleted),
            (1, 5, 1)
        );
        assert_eq!(
            seen.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
            [
                "",
                "left4dead2",
                "left4dead2/banned_user.cfg",
                "left4dead2/motd.txt",
                "left4dead2/latest.log"
            ]
        );
        assert_eq!(seen[2].1, "hello");
        assert_eq!(
            manifest.entries["left4dead2"],
            Item::Dir {
                mode: 0o755,
                xattrs: BTreeMap::from([("trusted.overlay.opaque".to_owned(), "y".to_owned())]),
            }
        );
        assert_eq!(manifest.entries["left4dead2/motd.txt"], Item::Whiteout);
    }

    #[test]
    fn a_cut_or_changed_archive_is_refused_with_the_reason() {
        let bytes = archive(sample);
        // Cut anywhere: short of its manifest, or of gzip's end.
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 4] {
            let err = read(&bytes[..cut]).unwrap_err();
            assert!(
                err.starts_with("the backup is damaged"),
                "cut at {cut}: {err}"
            );
        }
        // A byte changed in the compressed stream.
        let mut changed = bytes.clone();
        let middle = changed.len() / 2;
        changed[middle] ^= 0x55;
        assert!(read(&changed).unwrap_err().contains("damaged"));
        // Content that differs from the manifest, in an archive otherwise well made.
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        let at = raw.windows(5).position(|w| w == b"hello").unwrap();
        raw[at] = b'j';
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let err = read(&gz.finish().unwrap()).unwrap_err();
        assert!(
            err.contains(
                "\"upper/left4dead2/banned_user.cfg\" differs from what its manifest says"
            ),
            "{err}"
        );
    }

    #[test]
    fn entries_that_could_reach_outside_are_refused() {
        let refused = |build: &dyn Fn(&mut tar::Builder<Vec<u8>>), says: &str| {
            let mut tar = tar::Builder::new(Vec::new());
            build(&mut tar);
            let raw = tar.into_inner().unwrap();
            let mut archive = tar::Archive::new(raw.as_slice());
            let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
            let err = check_entry(&mut entry).err().unwrap_or_default();
            assert!(err.contains(says), "{err}");
        };
        let file = |path: &'static str| {
            move |tar: &mut tar::Builder<Vec<u8>>| {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o755);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Regular);
                // Written raw: the tar crate refuses to write such paths itself.
                h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                tar.append(&h, std::io::empty()).unwrap();
            }
        };
        refused(&file("upper/../etc/passwd"), "'..' is refused");
        refused(&file("/upper/x"), "not in upper/");
        refused(&file("elsewhere/x"), "not in upper/");
        let link = |target: &'static str| {
            move |tar: &mut tar::Builder<Vec<u8>>| {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, "upper/a/b", target).unwrap();
            }
        };
        refused(&link("/etc/shadow"), "outside the server's files");
        refused(&link("../../../etc"), "outside the server's files");
        let device = |tar: &mut tar::Builder<Vec<u8>>| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Block);
            h.set_size(0);
            h.set_device_major(8).unwrap();
            h.set_device_minor(0).unwrap();
            tar.append_data(&mut h, "upper/sda", std::io::empty())
                .unwrap();
        };
        refused(&device, "devices");
        let hard = |tar: &mut tar::Builder<Vec<u8>>| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            tar.append_link(&mut h, "upper/x", "upper/y").unwrap();
        };
        refused(&hard, "hard links");
        let attribute = |tar: &mut tar::Builder<Vec<u8>>| {
            tar.append_pax_extensions([("SCHILY.xattr.security.capability", &b"x"[..])])
                .unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, "upper/bin", std::io::empty())
                .unwrap();
        };
        refused(&attribute, "security.capability is not kept");
    }

    #[test]
    fn a_database_being_written_is_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sq3");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE ledger (amount INTEGER NOT NULL, pad BLOB)")
            .unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut db = rusqlite::Connection::open(&path).unwrap();
                db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                for n in 1..=2000i64 {
                    let tx = db.transaction().unwrap();
                    for amount in [n, -n] {
                        tx.execute("INSERT INTO ledger VALUES (?1, zeroblob(512))", [amount])
                            .unwrap();
                    }
                    tx.commit().unwrap();
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(is_sqlite(&path));
        let Content::Whole(bytes) = sqlite_copy(&path).unwrap() else {
            panic!("a database is copied whole");
        };
        writer.join().unwrap();
        let copy = dir.path().join("copy.sq3");
        std::fs::write(&copy, bytes).unwrap();
        let copy = rusqlite::Connection::open(&copy).unwrap();
        let (rows, sum): (i64, i64) = copy
            .query_row(
                "SELECT count(*), coalesce(sum(amount), 0) FROM ledger",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((rows % 2, sum), (0, 0), "{rows} rows");
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn ids_are_times() {
        assert_eq!(id_of("2026-11-30T21:15:00Z"), "20261130T211500Z");
        assert_eq!(created_of("20261130T211500Z-2"), "2026-11-30T21:15:00Z");
        for good in ["20261130T211500Z", "20261130T211500Z-2"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in [
            "../x",
            "20261130T211500",
            "20261130T211500Z-",
            "2026113OT211500Z",
            "20261130T211500Z-1234",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
