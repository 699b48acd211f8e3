//! Reading `/proc/self/mountinfo`, the only reliable source of mount state: comparing
//! `st_dev` with the parent misses same-filesystem bind mounts, which is how the original
//! project leaked one bind mount per start/stop cycle.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    /// Field 4: the folder of its file system the mount shows (for a bind mount, the bound
    /// folder's path inside its file system), with octal escapes undone.
    pub root: PathBuf,
    /// Field 5: where it is mounted, with octal escapes undone.
    pub target: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Where the kernel shows the calling process's mount table.
pub const PATH: &str = "/proc/self/mountinfo";

/// The calling process's mount table: every reader of the real one comes through here.
pub fn read() -> std::io::Result<Vec<Mount>> {
    std::fs::read_to_string(PATH).map(|text| parse(&text))
}

/// Parses mountinfo text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    // Optional fields end with a lone "-", after which come fs type and source.
    let dash = fields.iter().position(|f| *f == "-")?;
    Some(Mount {
        id: fields.first()?.parse().ok()?,
        parent: fields.get(1)?.parse().ok()?,
        root: PathBuf::from(unescape(fields.get(3)?)),
        target: PathBuf::from(unescape(fields.get(4)?)),
        fs_type: fields.get(dash + 1)?.to_string(),
        source: unescape(fields.get(dash + 2)?),
    })
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011` tab, `\012` newline,
/// `\134` backslash).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let octal = field
                .get(i + 1..i + 4)
                .filter(|d| d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(byte) = octal {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How many mounts sit exactly at `target` (stacked mounts count each).
pub fn count_at(mounts: &[Mount], target: &Path) -> usize {
    mounts.iter().filter(|m| m.target == target).count()
}

/// The topmost mount at `target`, if any.
pub fn top_at<'a>(mounts: &'a [Mount], target: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.target == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
101 22 0:45 / /var/lib/left4me/runtime/coop-1/merged rw,relatime shared:60 - overlay overlay rw,lowerdir=a:b,upperdir=u,workdir=w
102 22 254:0 /var/lib/left4me/overlays/maps /var/lib/left4me/runtime/coop-1/idmap/maps rw,relatime idmapped shared:1 - ext4 /dev/vda rw
103 102 254:0 /var/lib/left4me/overlays/maps /var/lib/left4me/runtime/coop-1/idmap/maps rw,relatime idmapped shared:1 - ext4 /dev/vda rw
104 22 0:50 / /mnt/with\\040space rw - tmpfs my\\134tmp rw
";

    #[test]
    fn parses_targets_types_and_sources() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[1].fs_type, "overlay");
        assert_eq!(
            mounts[1].target,
            Path::new("/var/lib/left4me/runtime/coop-1/merged")
        );
        assert_eq!(mounts[4].target, Path::new("/mnt/with space"));
        assert_eq!(mounts[4].source, "my\\tmp");
    }

    #[test]
    fn same_filesystem_binds_are_seen_and_counted() {
        // The original's bug: a bind of a folder of the same filesystem, stacked twice.
        let mounts = parse(SAMPLE);
        let idmap = Path::new("/var/lib/left4me/runtime/coop-1/idmap/maps");
        assert_eq!(count_at(&mounts, idmap), 2);
        assert_eq!(top_at(&mounts, idmap).unwrap().id, 103);
        assert_eq!(count_at(&mounts, Path::new("/var/lib/left4me")), 0);
    }
}
