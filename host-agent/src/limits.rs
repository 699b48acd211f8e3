//! A server's resource limits on this host: checked against what the host has (its memory,
//! its cores, the cgroup controllers its systemd can use) before a spec is saved, set on the
//! server's unit by root with `systemctl set-property --runtime` before every start (and at
//! once on a running server, which systemd allows for all of them), and read back from the
//! unit's cgroup as evidence: memory the game itself uses, out-of-memory kills, time held
//! back by a CPU quota.
//!
//! Hosts run cgroup v2 (Debian 11 and later, Ubuntu 21.10 and later) or, on older systems
//! and some containers, cgroup v1, where systemd has no `MemoryHigh=` and no `AllowedCPUs=`:
//! a spec that asks for those there is refused rather than silently not enforced.

use crate::AgentError;
use left4me_protocol::limits::{Limits, Usage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CGROUP: &str = "/sys/fs/cgroup";

/// What the host's cgroups offer its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    pub v2: bool,
    /// The controllers units can use: `cpu`, `memory`, `pids`, `cpuset`, …
    pub controllers: Vec<String>,
}

impl Cgroups {
    /// Reads `/sys/fs/cgroup`: the unified hierarchy's controllers, or the v1 hierarchies
    /// mounted writable (a read-only one is of no use to systemd).
    pub fn detect() -> Cgroups {
        let root = Path::new(CGROUP);
        if let Ok(text) = std::fs::read_to_string(root.join("cgroup.controllers")) {
            return Cgroups {
                v2: true,
                controllers: text.split_whitespace().map(str::to_owned).collect(),
            };
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Cgroups {
            v2: false,
            controllers: v1_controllers(&mountinfo),
        }
    }

    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Where a controller's files for the cgroup at `path` (as systemd's `ControlGroup`
    /// names it) are.
    fn dir(&self, controller: &str, path: &str) -> PathBuf {
        let base = if self.v2 {
            PathBuf::from(CGROUP)
        } else {
            Path::new(CGROUP).join(controller)
        };
        base.join(path.trim_start_matches('/'))
    }
}

/// The controllers of the writable v1 hierarchies in a mountinfo.
fn v1_controllers(mountinfo: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let mut fs = fs.split_whitespace();
        if fs.next() != Some("cgroup") {
            continue;
        }
        let writable = mount
            .split_whitespace()
            .nth(5)
            .is_some_and(|o| o.split(',').any(|o| o == "rw"));
        let options = fs.nth(1).unwrap_or_default();
        if writable {
            found.extend(
                options
                    .split(',')
                    .filter(|o| {
                        matches!(
                            *o,
                            "cpu" | "cpuacct" | "cpuset" | "memory" | "pids" | "blkio"
                        )
                    })
                    .map(str::to_owned),
            );
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The host's physical cores, numbered from 0 in (package, core) order, each with its
/// CPUs (hardware threads).
pub fn cores() -> Vec<Vec<u32>> {
    let mut by_core: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(cpu) = name.strip_prefix("cpu").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let read = |file: &str| {
            std::fs::read_to_string(entry.path().join("topology").join(file))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
        };
        // A CPU without topology (offline) is not offered.
        if let (Some(package), Some(core)) = (read("physical_package_id"), read("core_id")) {
            by_core.entry((package, core)).or_default().push(cpu);
        }
    }
    by_core
        .into_values()
        .map(|mut cpus| {
            cpus.sort_unstable();
            cpus
        })
        .collect()
}

/// Checks `limits` against this host: its memory, its CPUs and cores, and the controllers
/// that would enforce each. The error says what to change.
pub fn check(
    limits: &Limits,
    cgroups: &Cgroups,
    memory: u64,
    cpus: u32,
    cores: usize,
) -> Result<(), String> {
    let v1 = |what: &str| {
        format!("{what} needs cgroup v2, and this host's systemd runs cgroup v1; leave it out here")
    };
    let missing = |what: &str, controller: &str| {
        format!(
            "{what} needs the {controller} cgroup controller, which this host's systemd cannot use"
        )
    };
    if (limits.memory_high.is_some() || limits.memory_max.is_some()) && !cgroups.has("memory") {
        return Err(missing("a memory limit", "memory"));
    }
    if limits.memory_high.is_some() && !cgroups.v2 {
        return Err(v1("memory_high"));
    }
    for (name, value) in [
        ("memory_high", limits.memory_high),
        ("memory_max", limits.memory_max),
    ] {
        if let Some(bytes) = value
            && bytes > memory
        {
            return Err(format!(
                "{name} {} is more than this host's memory ({})",
                left4me_protocol::units::human_bytes(bytes),
                left4me_protocol::units::human_bytes(memory)
            ));
        }
    }
    if (limits.cpu_weight.is_some() || limits.cpu_quota_percent.is_some()) && !cgroups.has("cpu") {
        return Err(missing("a CPU weight or quota", "cpu"));
    }
    if let Some(quota) = limits.cpu_quota_percent
        && quota > 100 * cpus
    {
        return Err(format!(
            "cpu_quota_percent {quota} is more than this host's {cpus} CPUs can give ({})",
            100 * cpus
        ));
    }
    if limits.tasks_max.is_some() && !cgroups.has("pids") {
        return Err(missing("tasks_max", "pids"));
    }
    if !limits.cores.is_empty() {
        if let Some(why) = pinning_refused(cgroups, cores) {
            return Err(format!("{why}; leave it out here"));
        }
        if let Some(core) = limits.cores.iter().find(|c| **c as usize >= cores) {
            return Err(format!(
                "core {core} does not exist: this host has cores 0-{}",
                cores.saturating_sub(1)
            ));
        }
    }
    Ok(())
}

/// Why servers here cannot be pinned to cores, if they cannot: systemd's `AllowedCPUs=`
/// needs cgroup v2 with the cpuset controller, and the cores must be known.
pub fn pinning_refused(cgroups: &Cgroups, cores: usize) -> Option<String> {
    if !cgroups.v2 {
        Some("pinning to cores needs cgroup v2, and this host's systemd runs cgroup v1".to_owned())
    } else if !cgroups.has("cpuset") {
        Some(
            "pinning to cores needs the cpuset cgroup controller, which this host's systemd cannot use"
                .to_owned(),
        )
    } else if cores == 0 {
        Some("this host's cores could not be read from /sys/devices/system/cpu".to_owned())
    } else {
        None
    }
}

/// `check` with this host's facts.
pub fn check_here(limits: &Limits) -> Result<(), AgentError> {
    if limits.is_unset() {
        return Ok(());
    }
    let facts_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kib| kib * 1024);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    check(
        limits,
        &Cgroups::detect(),
        facts_memory,
        cpus,
        cores().len(),
    )
    .map_err(|e| AgentError::Invalid(format!("limits: {e}")))
}

/// Root sets the unit's limits from the spec: every property, so a limit taken out is
/// lifted. A runtime setting (`/run/systemd/system.control`), made again before each start
/// from the spec as it is then.
pub fn apply(unit: &str, limits: &Limits) -> Result<(), AgentError> {
    let topology = cores();
    let cpus: Vec<u32> = limits
        .cores
        .iter()
        .filter_map(|c| topology.get(*c as usize))
        .flatten()
        .copied()
        .collect();
    let out = Command::new("systemctl")
        .args(["set-property", "--runtime", unit])
        .args(limits.properties(&cpus))
        .output()
        .map_err(|e| AgentError::failed("cannot run systemctl", e))?;
    if !out.status.success() {
        return Err(AgentError::failed(
            format!("cannot set the limits of {unit}"),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// The properties `status` shows as the limits in force.
const IN_FORCE: &[&str] = &[
    "CPUWeight",
    "MemoryHigh",
    "MemoryMax",
    "TasksMax",
    "CPUQuotaPerSecUSec",
    "CPUQuotaPeriodUSec",
    "AllowedCPUs",
];

/// What a running server's cgroup shows: memory, kills, CPU time and throttling.
pub fn usage(unit: &str) -> Option<Usage> {
    let mut args = vec![
        "show".to_owned(),
        unit.to_owned(),
        "-p".to_owned(),
        "ControlGroup".to_owned(),
    ];
    for property in IN_FORCE {
        args.push("-p".to_owned());
        args.push((*property).to_owned());
    }
    let out = Command::new("systemctl").args(&args).output().ok()?;
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |key: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let path = value("ControlGroup");
    if path.is_empty() {
        return None;
    }
    let cgroups = Cgroups::detect();
    let mut usage = read_usage(&cgroups, &path, &|dir: &Path, file: &str| {
        std::fs::read_to_string(dir.join(file)).ok()
    });
    usage.in_force = IN_FORCE
        .iter()
        .map(|p| format!("{p}={}", value(p)))
        .filter(|l| !l.ends_with('=') && !l.ends_with("=infinity") && !l.ends_with("=[not set]"))
        .collect();
    Some(usage)
}

/// Reads the figures from a cgroup's files, through `read` (tests give it text).
fn read_usage(
    cgroups: &Cgroups,
    path: &str,
    read: &dyn Fn(&Path, &str) -> Option<String>,
) -> Usage {
    let field = |text: &str, key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    let number = |dir: &Path, file: &str| read(dir, file)?.trim().parse::<u64>().ok();
    if cgroups.v2 {
        let dir = cgroups.dir("", path);
        let stat = read(&dir, "memory.stat").unwrap_or_default();
        let events = read(&dir, "memory.events").unwrap_or_default();
        let cpu = read(&dir, "cpu.stat").unwrap_or_default();
        Usage {
            cgroup: "v2".to_owned(),
            memory_anon: field(&stat, "anon"),
            memory_current: number(&dir, "memory.current"),
            oom_kills: field(&events, "oom_kill"),
            cpu_usec: field(&cpu, "usage_usec"),
            throttled_usec: field(&cpu, "throttled_usec"),
            throttled_periods: field(&cpu, "nr_throttled"),
            tasks: number(&dir, "pids.current"),
            ..Usage::default()
        }
    } else {
        let memory = cgroups.dir("memory", path);
        let stat = read(&memory, "memory.stat").unwrap_or_default();
        let oom = read(&memory, "memory.oom_control").unwrap_or_default();
        let cpu = read(&cgroups.dir("cpu", path), "cpu.stat").unwrap_or_default();
        Usage {
            cgroup: "v1".to_owned(),
            // v1's `rss` is the anonymous memory (and swap cache) of the cgroup itself.
            memory_anon: field(&stat, "total_rss").or_else(|| field(&stat, "rss")),
            memory_current: number(&memory, "memory.usage_in_bytes"),
            oom_kills: field(&oom, "oom_kill"),
            cpu_usec: number(&cgroups.dir("cpuacct", path), "cpuacct.usage").map(|ns| ns / 1000),
            throttled_usec: field(&cpu, "throttled_time").map(|ns| ns / 1000),
            throttled_periods: field(&cpu, "nr_throttled"),
            tasks: number(&cgroups.dir("pids", path), "pids.current"),
            ..Usage::default()
        }
    }
}

/// The frames per second srcds reports in RCON `stats`' table:
/// `CPU In_(KB/s) Out_(KB/s) Uptime Map_changes FPS Players Connects`.
pub fn fps_of_stats(answer: &str) -> Option<f32> {
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let column = header.iter().position(|h| h.eq_ignore_ascii_case("FPS"))?;
    let row: Vec<&str> = lines.next()?.split_whitespace().collect();
    // "In (KB/s)" is two words in some builds' header: count from the end instead.
    let from_end = header.len() - column;
    row.get(row.len().checked_sub(from_end)?)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gib(n: u64) -> u64 {
        n << 30
    }

    #[test]
    fn limits_are_refused_where_the_host_cannot_hold_them() {
        let v2 = Cgroups {
            v2: true,
            controllers: ["cpuset", "cpu", "io", "memory", "pids"]
                .map(String::from)
                .to_vec(),
        };
        let v1 = Cgroups {
            v2: false,
            controllers: ["cpu", "cpuacct", "memory", "pids"]
                .map(String::from)
                .to_vec(),
        };
        let bare = Cgroups {
            v2: true,
            controllers: vec!["hugetlb".to_owned()],
        };
        let all = Limits {
            cpu_weight: Some(1000),
            memory_high: Some(gib(1)),
            memory_max: Some(gib(2)),
            tasks_max: Some(256),
            cpu_quota_percent: Some(150),
            cpu_quota_period_ms: None,
            cores: vec![3],
        };
        assert_eq!(check(&all, &v2, gib(8), 8, 4), Ok(()));
        let expect = |limits: &Limits, cgroups: &Cgroups, part: &str| {
            let err = check(limits, cgroups, gib(8), 8, 4).unwrap_err();
            assert!(err.contains(part), "{err}");
        };
        expect(&all, &v1, "memory_high needs cgroup v2");
        let no_high = Limits {
            memory_high: None,
            ..all.clone()
        };
        expect(&no_high, &v1, "pinning to cores needs cgroup v2");
        expect(
            &Limits {
                cores: vec![3],
                ..Limits::default()
            },
            &bare,
            "pinning to cores needs the cpuset cgroup controller",
        );
        assert_eq!(pinning_refused(&v2, 4), None);
        assert!(pinning_refused(&v2, 0).is_some_and(|why| why.contains("could not be read")));
        let on_v1 = Limits {
            cores: vec![],
            ..no_high.clone()
        };
        assert_eq!(check(&on_v1, &v1, gib(8), 8, 4), Ok(()));
        expect(&on_v1, &bare, "the memory cgroup controller");
        expect(
            &Limits {
                memory_max: Some(gib(16)),
                ..Limits::default()
            },
            &v2,
            "more than this host's memory (8.0 GiB)",
        );
        expect(
            &Limits {
                cpu_quota_percent: Some(900),
                ..Limits::default()
            },
            &v2,
            "more than this host's 8 CPUs can give (800)",
        );
        expect(
            &Limits {
                cores: vec![4],
                ..Limits::default()
            },
            &v2,
            "core 4 does not exist: this host has cores 0-3",
        );
    }

    #[test]
    fn writable_v1_hierarchies_are_the_controllers() {
        let mountinfo = "\
59 57 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
60 57 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:17 - cgroup cgroup rw,cpu,cpuacct
61 57 0:36 / /sys/fs/cgroup/pids ro,nosuid,nodev shared:17 - cgroup cgroup rw,pids
66 57 0:37 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,name=systemd
";
        assert_eq!(v1_controllers(mountinfo), vec!["cpu", "cpuacct", "memory"]);
    }

    #[test]
    fn usage_is_read_from_either_cgroup_version() {
        let files: BTreeMap<&str, &str> = [
            ("/sys/fs/cgroup/system.slice/s.service/memory.stat", "anon 734003200\nfile 2147483648\n"),
            ("/sys/fs/cgroup/system.slice/s.service/memory.current", "2881486848\n"),
            ("/sys/fs/cgroup/system.slice/s.service/memory.events", "low 0\nhigh 12\nmax 0\noom 1\noom_kill 1\n"),
            ("/sys/fs/cgroup/system.slice/s.service/cpu.stat", "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\nnr_periods 600\nnr_throttled 42\nthrottled_usec 210000\n"),
            ("/sys/fs/cgroup/system.slice/s.service/pids.current", "23\n"),
            ("/sys/fs/cgroup/memory/system.slice/s.service/memory.stat", "cache 2147483648\nrss 734003200\ntotal_rss 734003200\n"),
            ("/sys/fs/cgroup/memory/system.slice/s.service/memory.usage_in_bytes", "2881486848\n"),
            ("/sys/fs/cgroup/memory/system.slice/s.service/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"),
            ("/sys/fs/cgroup/cpu/system.slice/s.service/cpu.stat", "nr_periods 600\nnr_throttled 42\nthrottled_time 210000000\n"),
            ("/sys/fs/cgroup/cpuacct/system.slice/s.service/cpuacct.usage", "5000000000\n"),
            ("/sys/fs/cgroup/pids/system.slice/s.service/pids.current", "23\n"),
        ]
        .into_iter()
        .collect();
        let read = |dir: &Path, file: &str| {
            files
                .get(dir.join(file).to_str().unwrap())
                .map(|t| (*t).to_owned())
        };
        for v2 in [true, false] {
            let cgroups = Cgroups {
                v2,
                controllers: Vec::new(),
            };
            let usage = read_usage(&cgroups, "/system.slice/s.service", &read);
            assert_eq!(usage.memory_anon, Some(734_003_200), "v2 {v2}");
            assert_eq!(usage.memory_current, Some(2_881_486_848));
            assert_eq!(usage.oom_kills, Some(1));
            assert_eq!(usage.cpu_usec, Some(5_000_000));
            assert_eq!(usage.throttled_usec, Some(210_000));
            assert_eq!(usage.throttled_periods, Some(42));
            assert_eq!(usage.tasks, Some(23));
        }
    }

    #[test]
    fn fps_is_read_from_the_stats_table() {
        let stats = "CPU    In_(KB/s)  Out_(KB/s)  Uptime  Map_changes  FPS      Players  Connects\n\
                     0.00   0.00       0.00        12      1            29.97    3        3\n";
        assert_eq!(fps_of_stats(stats), Some(29.97));
        let spaced = "CPU   In (KB/s)  Out (KB/s)  Uptime  Map changes  FPS      Players  Connects\n\
                      4.21  1.20       3.40        120     2            66.67    8        9\n";
        assert_eq!(fps_of_stats(spaced), Some(66.67));
        assert_eq!(fps_of_stats("Unknown command \"stats\"\n"), None);
    }
}
