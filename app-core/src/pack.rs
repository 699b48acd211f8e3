//! Packs a folder from this computer into the tar stream `overlay import` reads. Links are
//! kept as links (the agent refuses those that point outside the overlay); the agent, not
//! this side, is the one that checks what it unpacks.

use std::path::Path;

/// A packed folder and what it holds.
pub struct Packed {
    pub archive: Vec<u8>,
    pub files: u64,
    pub bytes: u64,
}

pub fn pack_folder(dir: &Path) -> std::io::Result<Packed> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a folder", dir.display()),
        ));
    }
    let (mut files, mut bytes) = (0, 0);
    count(dir, &mut files, &mut bytes)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all(".", dir)?;
    Ok(Packed {
        archive: builder.into_inner()?,
        files,
        bytes,
    })
}

fn count(dir: &Path, files: &mut u64, bytes: &mut u64) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            count(&entry.path(), files, bytes)?;
        } else if kind.is_file() {
            *files += 1;
            *bytes += entry.metadata()?.len();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_files_and_folders_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("left4dead2/cfg")).unwrap();
        std::fs::write(dir.path().join("left4dead2/cfg/extra.cfg"), "sv_cheats 0\n").unwrap();
        std::fs::write(dir.path().join("readme.txt"), "hi").unwrap();
        let packed = pack_folder(dir.path()).unwrap();
        assert_eq!((packed.files, packed.bytes), (2, 14));
        let mut names: Vec<String> = tar::Archive::new(packed.archive.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with('/') && !n.contains("..")),
            "{names:?}"
        );
        assert!(
            names.contains(&"left4dead2/cfg/extra.cfg".to_owned()),
            "{names:?}"
        );
        assert!(pack_folder(&dir.path().join("missing")).is_err());
    }
}
