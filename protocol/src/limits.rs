//! Resource limits for a server's unit, from its blueprint: systemd's resource control
//! (`CPUWeight=`, `MemoryHigh=`, `MemoryMax=`, `TasksMax=`, `CPUQuota=` with a short
//! `CPUQuotaPeriodSec=`, `AllowedCPUs=`). What a spec can say is checked here; whether the
//! host can hold it (its memory, its cores, its cgroup controllers) is the host's to say.

use serde::{Deserialize, Serialize};

/// The smallest memory limit accepted: srcds with a map loaded needs several hundred MiB.
pub const MIN_MEMORY: u64 = 256 << 20;
/// The quota period used when a quota is set without one: srcds ticks every 10-33 ms, and
/// a quota spent early in systemd's default 100 ms period would stall several ticks.
pub const DEFAULT_QUOTA_PERIOD_MS: u32 = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `CPUWeight=` (1-10000, systemd's default 100): the server's share of CPU time when
    /// the host's CPUs are contended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// `MemoryHigh=` in bytes: above it the kernel takes memory back hard, slowing the game.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<u64>,
    /// `MemoryMax=` in bytes: above it the game is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// `TasksMax=`: processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_max: Option<u32>,
    /// `CPUQuota=` in percent of one CPU (100: one whole CPU's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota_percent: Option<u32>,
    /// `CPUQuotaPeriodSec=` in milliseconds; 10 when a quota is set without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota_period_ms: Option<u32>,
    /// `AllowedCPUs=`: whole physical cores by their number (each with all its hardware
    /// threads); none: every CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<u32>,
}

impl Limits {
    pub fn is_unset(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks what needs no host: ranges, and that the soft memory limit is below the hard.
    pub fn check(&self) -> Result<(), String> {
        if let Some(weight) = self.cpu_weight
            && !(1..=10_000).contains(&weight)
        {
            return Err(format!("cpu_weight {weight} is outside 1-10000"));
        }
        for (name, value) in [
            ("memory_high", self.memory_high),
            ("memory_max", self.memory_max),
        ] {
            if let Some(bytes) = value
                && bytes < MIN_MEMORY
            {
                return Err(format!(
                    "{name} {} is below {}: the game needs more than that",
                    crate::units::human_bytes(bytes),
                    crate::units::human_bytes(MIN_MEMORY)
                ));
            }
        }
        if let (Some(high), Some(max)) = (self.memory_high, self.memory_max)
            && high >= max
        {
            return Err(format!(
                "memory_high ({}) must be below memory_max ({}): it is where the kernel starts taking memory back, before the kill at the maximum",
                crate::units::human_bytes(high),
                crate::units::human_bytes(max)
            ));
        }
        if let Some(tasks) = self.tasks_max
            && !(32..=1_000_000).contains(&tasks)
        {
            return Err(format!(
                "tasks_max {tasks} is outside 32-1000000 (srcds runs a few dozen threads)"
            ));
        }
        if let Some(quota) = self.cpu_quota_percent
            && !(10..=100_000).contains(&quota)
        {
            return Err(format!("cpu_quota_percent {quota} is outside 10-100000"));
        }
        match (self.cpu_quota_percent, self.cpu_quota_period_ms) {
            (None, Some(_)) => {
                return Err("cpu_quota_period_ms needs a cpu_quota_percent".to_owned());
            }
            (Some(_), Some(period)) if !(1..=1000).contains(&period) => {
                return Err(format!("cpu_quota_period_ms {period} is outside 1-1000"));
            }
            _ => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(core) = self.cores.iter().find(|c| !seen.insert(**c)) {
            return Err(format!("core {core} is listed twice"));
        }
        Ok(())
    }

    /// systemd's properties for the unit, every one of them: those not set are given empty,
    /// which is systemd's "no limit", so a limit taken out of a blueprint is lifted.
    /// `cpus` are the CPU numbers of `cores`, from the host's topology.
    pub fn properties(&self, cpus: &[u32]) -> Vec<String> {
        let or_empty = |v: Option<String>| v.unwrap_or_default();
        vec![
            format!(
                "CPUWeight={}",
                or_empty(self.cpu_weight.map(|w| w.to_string()))
            ),
            format!(
                "MemoryHigh={}",
                or_empty(self.memory_high.map(|b| b.to_string()))
            ),
            format!(
                "MemoryMax={}",
                or_empty(self.memory_max.map(|b| b.to_string()))
            ),
            format!(
                "TasksMax={}",
                or_empty(self.tasks_max.map(|t| t.to_string()))
            ),
            format!(
                "CPUQuota={}",
                or_empty(self.cpu_quota_percent.map(|q| format!("{q}%")))
            ),
            format!(
                "CPUQuotaPeriodSec={}",
                or_empty(self.cpu_quota_percent.map(|_| {
                    format!(
                        "{}ms",
                        self.cpu_quota_period_ms.unwrap_or(DEFAULT_QUOTA_PERIOD_MS)
                    )
                }))
            ),
            format!(
                "AllowedCPUs={}",
                cpus.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ]
    }
}

/// What a server's cgroup shows of its limits at work (`status`): whether a limit hurts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// `v1` or `v2`: where the figures come from.
    pub cgroup: String,
    /// Anonymous memory (the game's own, not page cache of shared files it read), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_anon: Option<u64>,
    /// All memory charged to it, page cache included, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_current: Option<u64>,
    /// Times the kernel killed a process of it for its memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// CPU time used, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usec: Option<u64>,
    /// Time it was held back by its CPU quota, microseconds, and how many periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_usec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_periods: Option<u64>,
    /// Processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// The limits in force, as systemd reports them (`MemoryMax=…`), for comparison.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_force: Vec<String>,
    /// The game's frames per second and its tickrate, from RCON `stats`: a server that
    /// cannot keep its tickrate is short of CPU.
    /// (In hundredths, so that the type stays `Eq`: 2997 is 29.97 fps.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps_hundredths: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickrate: Option<u16>,
}

impl Usage {
    /// Frames per second, as the game reported them.
    pub fn fps(&self) -> Option<f32> {
        self.fps_hundredths.map(|f| f as f32 / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_unset_ones_lifted() {
        assert_eq!(Limits::default().check(), Ok(()));
        let gib = 1 << 30;
        let fine = Limits {
            cpu_weight: Some(1000),
            memory_high: Some(gib + gib / 2),
            memory_max: Some(2 * gib),
            tasks_max: Some(256),
            cpu_quota_percent: Some(150),
            cpu_quota_period_ms: None,
            cores: vec![1],
        };
        assert_eq!(fine.check(), Ok(()));
        assert_eq!(
            fine.properties(&[1, 5]),
            vec![
                "CPUWeight=1000",
                "MemoryHigh=1610612736",
                "MemoryMax=2147483648",
                "TasksMax=256",
                "CPUQuota=150%",
                "CPUQuotaPeriodSec=10ms",
                "AllowedCPUs=1,5"
            ]
        );
        assert_eq!(
            Limits::default().properties(&[]),
            vec![
                "CPUWeight=",
                "MemoryHigh=",
                "MemoryMax=",
                "TasksMax=",
                "CPUQuota=",
                "CPUQuotaPeriodSec=",
                "AllowedCPUs="
            ]
        );
        for (limits, expect) in [
            (
                Limits {
                    memory_high: Some(2 * gib),
                    memory_max: Some(gib),
                    ..Limits::default()
                },
                "must be below memory_max",
            ),
            (
                Limits {
                    memory_max: Some(1 << 20),
                    ..Limits::default()
                },
                "is below 256.0 MiB",
            ),
            (
                Limits {
                    cpu_weight: Some(0),
                    ..Limits::default()
                },
                "outside 1-10000",
            ),
            (
                Limits {
                    cpu_quota_period_ms: Some(10),
                    ..Limits::default()
                },
                "needs a cpu_quota_percent",
            ),
            (
                Limits {
                    cores: vec![2, 2],
                    ..Limits::default()
                },
                "listed twice",
            ),
        ] {
            let err = limits.check().unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
    }
}
