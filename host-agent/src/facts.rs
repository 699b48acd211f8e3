//! `l4d2-agent facts`: what this host is, for the app's host page and for people at a shell.
//! Every fact is read best-effort: a host that hides one still reports the others.

use crate::layout::Layout;
use crate::output::Report;
use left4me_protocol::AgentMessage;
use left4me_protocol::agent::HostFacts;

pub fn read(layout: &Layout) -> HostFacts {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (disk_free_bytes, disk_total_bytes) =
        crate::fsutil::disk_space(layout.root()).unwrap_or((0, 0));
    let installed_build = crate::install::installed_build(layout);
    let cores = crate::limits::cores();
    let pinning_refused =
        crate::limits::pinning_refused(&crate::limits::Cgroups::detect(), cores.len());
    HostFacts {
        os: os_release_value(&os_release, "PRETTY_NAME").unwrap_or_else(|| "Linux".to_owned()),
        kernel: crate::readiness::kernel(),
        arch: crate::readiness::machine(),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024),
        disk_free_bytes,
        disk_total_bytes,
        installed_build: installed_build.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        readiness: Some(crate::readiness::assess(
            layout.etc(),
            disk_free_bytes,
            installed_build.is_some(),
        )),
        cores,
        pinning_refused,
    }
}

/// A value of os-release(5): `KEY=value`, `KEY="value"` or `KEY='value'`.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        Some(value.to_owned())
    })
}

impl Report for HostFacts {
    fn to_message(&self) -> AgentMessage {
        AgentMessage::Facts(self.clone())
    }

    fn to_human(&self) -> String {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let mut text = format!(
            "os          {}\nkernel      {}\ncpu         {} × {} ({})\nmemory      {:.1} GiB\n\
             disk        {:.1} GiB free of {:.1} GiB\ngame build  {}\nagent       {}\n",
            self.os,
            self.kernel,
            self.cpus,
            if self.cpu.is_empty() {
                "unknown"
            } else {
                &self.cpu
            },
            self.arch,
            gib(self.memory_bytes),
            gib(self.disk_free_bytes),
            gib(self.disk_total_bytes),
            self.installed_build.as_deref().unwrap_or("not installed"),
            self.agent_version,
        );
        text.push_str(&format!(
            "cores       {} physical; {}\n",
            self.cores.len(),
            match &self.pinning_refused {
                None => "servers can be pinned to them".to_owned(),
                Some(why) => format!("no pinning: {why}"),
            }
        ));
        match &self.readiness {
            Some(r) if r.can_run_game() => text.push_str("can run     yes\n"),
            Some(r) => {
                text.push_str("can run     no\n");
                for problem in &r.problems {
                    text.push_str(&format!("            - {problem}\n"));
                }
            }
            None => {}
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_with_and_without_quotes() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME='bookworm'\n";
        assert_eq!(
            os_release_value(text, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_value(text, "ID").as_deref(), Some("debian"));
        assert_eq!(
            os_release_value(text, "VERSION_CODENAME").as_deref(),
            Some("bookworm")
        );
        assert_eq!(
            os_release_value(text, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(os_release_value(text, "MISSING"), None);
    }

    #[test]
    fn facts_of_this_machine_are_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let facts = read(&Layout::new(&dir.path().join("not/yet/there")));
        assert!(facts.cpus >= 1);
        assert!(facts.memory_bytes > 0);
        assert!(facts.disk_total_bytes >= facts.disk_free_bytes && facts.disk_total_bytes > 0);
        assert!(!facts.kernel.is_empty());
        assert_eq!(facts.installed_build, None);
        assert!(!facts.cores.is_empty());
        let mut cpus: Vec<u32> = facts.cores.concat();
        let all = cpus.len();
        cpus.sort_unstable();
        cpus.dedup();
        assert_eq!(cpus.len(), all, "a CPU in two cores: {:?}", facts.cores);
    }
}
