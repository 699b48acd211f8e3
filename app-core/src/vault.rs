//! The local vault: where secrets go on a computer with no OS credential store (a minimal
//! window manager, WSLg, a fresh Xvfb session). One file in the data folder, readable by
//! this user only, encrypted with a key derived from a passphrase the admin chooses; never
//! the SQLite file, never plaintext. The admin can move its secrets into the OS store later
//! ([`crate::secrets::Secrets::move_into`]).
//!
//! Format, version 1: `L4MVAULT`, the version byte, argon2id's memory (KiB), passes and
//! lanes as little-endian u32, a 16-byte salt and a 12-byte nonce; then the entries sealed
//! with ChaCha20-Poly1305 under the 32-byte argon2id key, the header as associated data (so
//! weakened parameters or a swapped salt fail like a wrong passphrase). The entries are a
//! u32 count, then per entry a u16-length name and a u32-length secret. Every change writes
//! a new file beside the old one with a fresh nonce and renames it over: the vault is whole
//! or not at all.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"L4MVAULT";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + 12 + SALT_LEN + NONCE_LEN;
/// The shortest passphrase accepted for a new vault.
pub const MIN_PASSPHRASE: usize = 10;

/// argon2id's cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl KdfCost {
    /// For a new vault: 64 MiB and three passes, a fraction of a second once per start.
    pub const DEFAULT: KdfCost = KdfCost {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 1,
    };
    /// The least a vault file may ask for; a file asking for less was tampered with.
    const FLOOR: KdfCost = KdfCost {
        memory_kib: 8 * 1024,
        passes: 1,
        lanes: 1,
    };
    /// The most a vault file may ask for: more was not written by left4me, and would
    /// exhaust the computer before the passphrase is even checked.
    const CEILING: KdfCost = KdfCost {
        memory_kib: 1024 * 1024,
        passes: 64,
        lanes: 16,
    };

    fn within_bounds(self) -> bool {
        let (floor, ceiling) = (Self::FLOOR, Self::CEILING);
        (floor.memory_kib..=ceiling.memory_kib).contains(&self.memory_kib)
            && (floor.passes..=ceiling.passes).contains(&self.passes)
            && (floor.lanes..=ceiling.lanes).contains(&self.lanes)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the passphrase is wrong, or the vault file {0} was changed")]
    WrongPassphrase(PathBuf),
    #[error("the vault file {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("a vault already exists at {0}")]
    Exists(PathBuf),
    #[error("choose a passphrase of at least {MIN_PASSPHRASE} characters")]
    WeakPassphrase,
    #[error("cannot use the vault file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An unlocked vault: its key and its entries, in memory for as long as the app runs.
pub struct Vault {
    path: PathBuf,
    cost: KdfCost,
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; 32]>,
    entries: Mutex<BTreeMap<String, Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("path", &self.path).finish()
    }
}

impl Vault {
    /// Makes an empty vault at `path`, locked by `passphrase`.
    pub fn create(path: &Path, passphrase: &str, cost: KdfCost) -> Result<Vault, VaultError> {
        if passphrase.chars().count() < MIN_PASSPHRASE {
            return Err(VaultError::WeakPassphrase);
        }
        if path.exists() {
            return Err(VaultError::Exists(path.to_path_buf()));
        }
        let mut salt = [0u8; SALT_LEN];
        random(&mut salt, path)?;
        let vault = Vault {
            path: path.to_path_buf(),
            cost,
            salt,
            key: derive(passphrase, &salt, cost, path)?,
            entries: Mutex::new(BTreeMap::new()),
        };
        vault.save(&BTreeMap::new())?;
        Ok(vault)
    }

    /// Unlocks the vault at `path`.
    pub fn open(path: &Path, passphrase: &str) -> Result<Vault, VaultError> {
        let io = |source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        };
        let damaged = |reason: &str| VaultError::Damaged {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let bytes = std::fs::read(path).map_err(io)?;
        if bytes.len() < HEADER_LEN + CHACHA20_POLY1305.tag_len() {
            return Err(damaged("it is shorter than its header"));
        }
        let (header, sealed) = bytes.split_at(HEADER_LEN);
        if &header[..MAGIC.len()] != MAGIC {
            return Err(damaged("it is not a left4me vault"));
        }
        if header[MAGIC.len()] != VERSION {
            return Err(damaged("it was written by another version of left4me"));
        }
        let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap());
        let at = MAGIC.len() + 1;
        let cost = KdfCost {
            memory_kib: u32_at(at),
            passes: u32_at(at + 4),
            lanes: u32_at(at + 8),
        };
        if !cost.within_bounds() {
            return Err(VaultError::WrongPassphrase(path.to_path_buf()));
        }
        let salt: [u8; SALT_LEN] = header[at + 12..at + 12 + SALT_LEN].try_into().unwrap();
        let nonce: [u8; NONCE_LEN] = header[HEADER_LEN - NONCE_LEN..].try_into().unwrap();
        let key = derive(passphrase, &salt, cost, path)?;
        let mut plain = Zeroizing::new(sealed.to_vec());
        let opened = sealing_key(&key)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut plain,
            )
            .map_err(|_| VaultError::WrongPassphrase(path.to_path_buf()))?;
        let entries = decode(opened).ok_or_else(|| damaged("its entries do not parse"))?;
        Ok(Vault {
            path: path.to_path_buf(),
            cost,
            salt,
            key,
            entries: Mutex::new(entries),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Option<Zeroizing<Vec<u8>>> {
        self.lock().get(name).cloned()
    }

    /// Stores or replaces a secret; on disk before it returns.
    pub fn set(&self, name: &str, secret: &[u8]) -> Result<(), VaultError> {
        let mut entries = self.lock();
        let mut next = entries.clone();
        next.insert(name.to_owned(), Zeroizing::new(secret.to_vec()));
        self.save(&next)?;
        *entries = next;
        Ok(())
    }

    /// Removes a secret; removing a missing one succeeds.
    pub fn delete(&self, name: &str) -> Result<(), VaultError> {
        let mut entries = self.lock();
        if !entries.contains_key(name) {
            return Ok(());
        }
        let mut next = entries.clone();
        next.remove(name);
        self.save(&next)?;
        *entries = next;
        Ok(())
    }

    /// Every entry, by name.
    pub fn entries(&self) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        self.lock()
            .iter()
            .map(|(name, secret)| (name.clone(), secret.clone()))
            .collect()
    }

    /// Removes the vault file, once its secrets live elsewhere.
    pub fn remove(&self) -> Result<(), VaultError> {
        std::fs::remove_file(&self.path).map_err(|source| VaultError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Zeroizing<Vec<u8>>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seals `entries` under a fresh nonce into a new file and renames it over the vault.
    fn save(&self, entries: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<(), VaultError> {
        let io = |source| VaultError::Io {
            path: self.path.clone(),
            source,
        };
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce, &self.path)?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        for n in [self.cost.memory_kib, self.cost.passes, self.cost.lanes] {
            header.extend_from_slice(&n.to_le_bytes());
        }
        header.extend_from_slice(&self.salt);
        header.extend_from_slice(&nonce);
        let mut sealed = encode(entries);
        sealing_key(&self.key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header),
                &mut *sealed,
            )
            .map_err(|_| io(std::io::Error::other("sealing failed")))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::store::create_private_dir(dir).map_err(io)?;
        let partial = self.path.with_extension("partial");
        let mut options = std::fs::File::options();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&partial).and_then(|mut file| {
            file.write_all(&header)?;
            file.write_all(&sealed)?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&partial, &self.path)) {
            let _ = std::fs::remove_file(&partial);
            return Err(io(e));
        }
        Ok(())
    }
}

fn sealing_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key"))
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    cost: KdfCost,
    path: &Path,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let params = argon2::Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(32))
        .map_err(|_| VaultError::WrongPassphrase(path.to_path_buf()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut *key)
        .map_err(|_| VaultError::WrongPassphrase(path.to_path_buf()))?;
    Ok(key)
}

fn random(buf: &mut [u8], path: &Path) -> Result<(), VaultError> {
    getrandom::fill(buf).map_err(|e| VaultError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn encode(entries: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (name, secret) in entries {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(secret.len() as u32).to_le_bytes());
        out.extend_from_slice(secret);
    }
    out
}

fn decode(mut bytes: &[u8]) -> Option<BTreeMap<String, Zeroizing<Vec<u8>>>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Some(head)
    }
    let count = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?);
    let mut entries = BTreeMap::new();
    for _ in 0..count {
        let len = u16::from_le_bytes(take(&mut bytes, 2)?.try_into().ok()?);
        let name = std::str::from_utf8(take(&mut bytes, len.into())?)
            .ok()?
            .to_owned();
        let len = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?);
        let secret = Zeroizing::new(take(&mut bytes, len as usize)?.to_vec());
        entries.insert(name, secret);
    }
    bytes.is_empty().then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap enough for tests; the format is the same.
    const TEST_COST: KdfCost = KdfCost {
        memory_kib: 8 * 1024,
        passes: 1,
        lanes: 1,
    };
    const PASSPHRASE: &str = "correct horse battery";

    fn made() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault");
        let vault = Vault::create(&path, PASSPHRASE, TEST_COST).unwrap();
        vault
            .set("app/ssh-key", b"-----BEGIN OPENSSH PRIVATE KEY-----")
            .unwrap();
        vault.set("server/3/rcon-password", b"hunter22").unwrap();
        vault.delete("server/3/rcon-password").unwrap();
        vault.set("steam/login", b"owner\nsteam password").unwrap();
        (dir, path)
    }

    #[test]
    fn what_is_kept_comes_back_with_the_passphrase_and_only_with_it() {
        let (_dir, path) = made();
        let vault = Vault::open(&path, PASSPHRASE).unwrap();
        assert_eq!(
            vault.get("steam/login").as_deref().map(Vec::as_slice),
            Some(&b"owner\nsteam password"[..])
        );
        assert_eq!(vault.get("server/3/rcon-password"), None);
        let names: Vec<String> = vault.entries().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["app/ssh-key", "steam/login"]);
        let err = Vault::open(&path, "correct horse battery!").unwrap_err();
        assert!(matches!(err, VaultError::WrongPassphrase(_)), "{err}");
    }

    #[test]
    fn the_file_holds_no_secret_in_the_clear_and_is_private() {
        let (_dir, path) = made();
        let bytes = std::fs::read(&path).unwrap();
        for plain in [
            &b"steam password"[..],
            b"OPENSSH",
            b"steam/login",
            PASSPHRASE.as_bytes(),
        ] {
            assert!(
                !bytes.windows(plain.len()).any(|w| w == plain),
                "{:?} is readable in the file",
                String::from_utf8_lossy(plain)
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.with_extension("partial").exists());
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let (_dir, path) = made();
        let good = std::fs::read(&path).unwrap();
        // Every byte of the header (magic and version aside, which say "damaged") and
        // some of the sealed part.
        let positions = (MAGIC.len() + 1..HEADER_LEN).chain([HEADER_LEN, good.len() - 1]);
        for at in positions {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let err = Vault::open(&path, PASSPHRASE).unwrap_err();
            assert!(
                matches!(err, VaultError::WrongPassphrase(_)),
                "byte {at}: {err}"
            );
        }
    }

    #[test]
    fn a_weakened_or_inflated_cost_is_refused_before_any_work() {
        let (_dir, path) = made();
        let good = std::fs::read(&path).unwrap();
        let at = MAGIC.len() + 1;
        // Memory 1 KiB (below the floor), 16 GiB, a million passes, a thousand lanes.
        for (offset, value) in [(0, 1u32), (0, 16 << 20), (4, 1 << 20), (8, 1000)] {
            let mut bad = good.clone();
            bad[at + offset..at + offset + 4].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&path, &bad).unwrap();
            assert!(matches!(
                Vault::open(&path, PASSPHRASE).unwrap_err(),
                VaultError::WrongPassphrase(_)
            ));
        }
    }

    #[test]
    fn a_truncated_or_foreign_file_is_damaged() {
        let (_dir, path) = made();
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..HEADER_LEN]).unwrap();
        let err = Vault::open(&path, PASSPHRASE).unwrap_err();
        assert!(err.to_string().contains("shorter than its header"), "{err}");
        let mut foreign = good.clone();
        foreign[0] = b'X';
        std::fs::write(&path, &foreign).unwrap();
        let err = Vault::open(&path, PASSPHRASE).unwrap_err();
        assert!(err.to_string().contains("not a left4me vault"), "{err}");
        let mut newer = good;
        newer[MAGIC.len()] = 2;
        std::fs::write(&path, &newer).unwrap();
        let err = Vault::open(&path, PASSPHRASE).unwrap_err();
        assert!(err.to_string().contains("another version"), "{err}");
    }

    #[test]
    fn a_short_passphrase_or_an_existing_vault_makes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault");
        assert!(matches!(
            Vault::create(&path, "short", TEST_COST).unwrap_err(),
            VaultError::WeakPassphrase
        ));
        assert!(!path.exists());
        Vault::create(&path, PASSPHRASE, TEST_COST).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            Vault::create(&path, "another passphrase", TEST_COST).unwrap_err(),
            VaultError::Exists(_)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn every_write_has_a_fresh_nonce() {
        let (_dir, path) = made();
        let vault = Vault::open(&path, PASSPHRASE).unwrap();
        let nonce = |bytes: &[u8]| bytes[HEADER_LEN - NONCE_LEN..HEADER_LEN].to_vec();
        let first = nonce(&std::fs::read(&path).unwrap());
        vault.set("steam/login", b"owner\nsteam password").unwrap();
        let second = nonce(&std::fs::read(&path).unwrap());
        assert_ne!(first, second);
    }
}
