//! The command lines the app runs on hosts over SSH, built in one place from validated
//! arguments. SSH hands the remote side a single string that a shell parses, so every
//! argument is shell-quoted here, whatever it contains; nothing else builds remote commands.

use left4me_protocol::{OverlayName, ServerName};

/// Where `l4d2-agent setup` installs the agent on a host.
pub const AGENT: &str = "/opt/left4me/l4d2-agent";

/// Quotes `word` for a POSIX shell: single quotes around it, each `'` inside written as
/// `'\''`. Words of only safe characters stay as they are, for readable logs.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b));
    if safe {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A whole command line from its words, each quoted.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks a host its CPU architecture, before the agent is there.
pub const ARCH: &str = "uname -m";

/// Receives the agent's binary on stdin into a new private file under `/tmp` and prints
/// `sha256sum`'s line for it: the checksum, two spaces, the path.
pub const RECEIVE_AGENT: &str = "umask 077 && t=$(mktemp /tmp/l4d2-agent.XXXXXXXX) && cat > \"$t\" && chmod 700 \"$t\" && sha256sum \"$t\"";

/// Where [`RECEIVE_AGENT`] makes its files.
pub const RECEIVED_PREFIX: &str = "/tmp/l4d2-agent.";

/// Removes one file.
pub fn remove_file(path: &str) -> String {
    command_line(&["rm", "-f", path])
}

/// Runs the received agent's set-up as root through sudo, then removes the received copy
/// whatever happened (the agent installed itself to [`AGENT`]) and exits with the set-up's
/// status. Sudo reads a password from stdin without a prompt, or must need none.
pub fn sudo_setup(binary: &str, authorize_key: &str, password_on_stdin: bool) -> String {
    let sudo: &[&str] = match password_on_stdin {
        true => &["sudo", "-S", "-p", ""],
        false => &["sudo", "-n"],
    };
    let mut words: Vec<String> = sudo.iter().map(|w| (*w).to_owned()).collect();
    words.extend(AgentCall::setup_from(binary, authorize_key));
    format!(
        "{}; rc=$?; rm -f {}; exit $rc",
        command_line(&words),
        shell_quote(binary)
    )
}

/// An agent invocation: always `--json`, so the app reads protocol envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCall {
    args: Vec<String>,
}

impl AgentCall {
    fn new(args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    pub fn version() -> Self {
        Self::new(["version"])
    }

    pub fn facts() -> Self {
        Self::new(["facts"])
    }

    /// Stdin carries the RCON password's line, then the spec.
    pub fn initialize(name: &ServerName) -> Self {
        Self::new([
            "initialize",
            name.as_str(),
            "-f",
            "-",
            "--rcon-password-stdin",
        ])
    }

    pub fn start(name: &ServerName) -> Self {
        Self::new(["start", name.as_str()])
    }

    pub fn stop(name: &ServerName) -> Self {
        Self::new(["stop", name.as_str()])
    }

    pub fn restart(name: &ServerName) -> Self {
        Self::new(["restart", name.as_str()])
    }

    pub fn delete(name: &ServerName) -> Self {
        Self::new(["delete", name.as_str()])
    }

    pub fn list() -> Self {
        Self::new(["list"])
    }

    /// One process that answers `list` requests, a line each, until its stdin ends.
    pub fn serve() -> Self {
        Self::new(["serve"])
    }

    pub fn status(name: &ServerName) -> Self {
        Self::new(["status", name.as_str()])
    }

    /// Replaces the host's notification targets with those on stdin.
    pub fn notify_set() -> Self {
        Self::new(["notify", "set"])
    }

    /// Sends a test message to one of the host's notification targets.
    pub fn notify_test(name: &str) -> Self {
        Self::new(["notify", "test", name])
    }

    /// Backs a server up on its host.
    pub fn backup_create(name: &ServerName) -> Self {
        Self::new(["backup", "create", name.as_str()])
    }

    pub fn backup_list(name: &ServerName) -> Self {
        Self::new(["backup", "list", name.as_str()])
    }

    /// Puts backup `id` in place of the server's files.
    pub fn backup_restore(name: &ServerName, id: &str) -> Self {
        Self::new(["backup", "restore", name.as_str(), id])
    }

    /// Puts backup `id` of server `from` (on the same host) in place of `name`'s files.
    pub fn backup_restore_from(name: &ServerName, id: &str, from: &ServerName) -> Self {
        Self::new([
            "backup",
            "restore",
            name.as_str(),
            id,
            "--from",
            from.as_str(),
        ])
    }

    /// Keeps the archive on stdin as one of `name`'s backups, once checked whole.
    pub fn backup_put(name: &ServerName) -> Self {
        Self::new(["backup", "put", name.as_str()])
    }

    /// The archive of backup `id` on stdout, as it is on the host.
    pub fn backup_get(name: &ServerName, id: &str) -> Self {
        Self::new(["backup", "get", name.as_str(), id])
    }

    pub fn schedule_list() -> Self {
        Self::new(["schedule", "list"])
    }

    /// Replaces the host's schedules with the list on stdin.
    pub fn schedule_set() -> Self {
        Self::new(["schedule", "set"])
    }

    /// The next runs of a calendar as the host reads it.
    pub fn schedule_preview(calendar: &str, time_zone: Option<&str>, restart: bool) -> Self {
        let mut call = Self::new(["schedule", "preview", "--count", "5"]);
        if let Some(zone) = time_zone {
            call.args.push("--time-zone".to_owned());
            call.args.push(zone.to_owned());
        }
        if restart {
            call.args.push("--restart".to_owned());
        }
        call.args.push("--".to_owned());
        call.args.push(calendar.to_owned());
        call
    }

    /// The host's builds and rollout.
    pub fn rollout_status() -> Self {
        Self::new(["rollout", "status"])
    }

    /// `changes`: the rolling restart that applies the changes waiting for each server's
    /// next start, rather than the current build.
    pub fn rollout_start(
        changes: bool,
        canary: Option<&ServerName>,
        drain_minutes: Option<u32>,
        check_seconds: Option<u32>,
    ) -> Self {
        let mut call = Self::new(["rollout", "start"]);
        if changes {
            call.args.push("--changes".to_owned());
        }
        if let Some(canary) = canary {
            call.args
                .extend(["--canary".to_owned(), canary.to_string()]);
        }
        if let Some(minutes) = drain_minutes {
            call.args
                .extend(["--drain-minutes".to_owned(), minutes.to_string()]);
        }
        if let Some(seconds) = check_seconds {
            call.args
                .extend(["--check-seconds".to_owned(), seconds.to_string()]);
        }
        call
    }

    pub fn rollout_pause() -> Self {
        Self::new(["rollout", "pause"])
    }

    pub fn rollout_back() -> Self {
        Self::new(["rollout", "back"])
    }

    pub fn rollout_stop() -> Self {
        Self::new(["rollout", "stop"])
    }

    /// The host's outbox after the event `after`.
    pub fn events(after: u64) -> Self {
        Self::new(["events".to_owned(), "--after".to_owned(), after.to_string()])
    }

    pub fn logs(name: &ServerName, lines: u32, follow: bool) -> Self {
        let mut call = Self::new(["logs", name.as_str(), "--lines"]);
        call.args.push(lines.to_string());
        call.args
            .push(if follow { "--follow" } else { "--no-follow" }.to_owned());
        call
    }

    /// A console command for the server; it may contain anything, quoting makes it one word
    /// per argument for the agent.
    pub fn rcon(name: &ServerName, command: &str) -> Self {
        Self::new(["rcon", name.as_str(), "--", command])
    }

    pub fn overlay_list() -> Self {
        Self::new(["overlay", "list"])
    }

    pub fn overlay_create(name: &OverlayName) -> Self {
        Self::new(["overlay", "create", name.as_str()])
    }

    /// Fills an overlay from the Steam Workshop; `api_url` replaces Valve's Web API (tests).
    pub fn overlay_workshop(
        name: &OverlayName,
        items: &[u64],
        collections: &[u64],
        api_url: Option<&str>,
    ) -> Self {
        let mut call = Self::new(["overlay", "workshop", name.as_str()]);
        for item in items {
            call.args.push("--item".to_owned());
            call.args.push(item.to_string());
        }
        for collection in collections {
            call.args.push("--collection".to_owned());
            call.args.push(collection.to_string());
        }
        if let Some(url) = api_url {
            call.args.push("--api-url".to_owned());
            call.args.push(url.to_owned());
        }
        call
    }

    /// The script goes on stdin.
    pub fn overlay_script(name: &OverlayName) -> Self {
        Self::new(["overlay", "script", name.as_str()])
    }

    /// The archive goes on stdin.
    pub fn overlay_import(name: &OverlayName) -> Self {
        Self::new(["overlay", "import", name.as_str()])
    }

    /// `steamcmd_url`: where to fetch steamcmd if the host has none (Valve's by default);
    /// `steam_login`: the account's name and password come on stdin.
    pub fn install(validate: bool, steamcmd_url: Option<&str>, steam_login: bool) -> Self {
        let mut call = Self::new(["install"]);
        if validate {
            call.args.push("--validate".to_owned());
        }
        if let Some(url) = steamcmd_url {
            call.args.push("--steamcmd-url".to_owned());
            call.args.push(url.to_owned());
        }
        if steam_login {
            call.args.push("--steam-login-stdin".to_owned());
        }
        call
    }

    /// Asks Steam for the public build without installing (anonymously: app info needs no
    /// account, and so no Steam Guard code).
    pub fn install_check(steamcmd_url: Option<&str>) -> Self {
        let mut call = Self::new(["install", "--check"]);
        if let Some(url) = steamcmd_url {
            call.args.push("--steamcmd-url".to_owned());
            call.args.push(url.to_owned());
        }
        call
    }

    /// Forgets the Steam login steamcmd cached on the host.
    pub fn forget_steam_login() -> Self {
        Self::new(["forget-steam-login"])
    }

    /// Run from the uploaded copy as root: installs the agent and sets the host up.
    fn setup_from(binary: &str, authorize_key: &str) -> Vec<String> {
        vec![
            binary.to_owned(),
            "--json".to_owned(),
            "setup".to_owned(),
            "--authorize-key".to_owned(),
            authorize_key.to_owned(),
        ]
    }

    /// The command line to hand to SSH.
    pub fn command_line(&self) -> String {
        let mut words = vec![AGENT.to_owned(), "--json".to_owned()];
        words.extend(self.args.iter().cloned());
        command_line(&words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(word: &str, expect: &str) {
        assert_eq!(shell_quote(word), expect, "word {word:?}");
    }

    #[test]
    fn words_are_quoted_for_a_posix_shell() {
        check("coop-1", "coop-1");
        check("/opt/left4me/l4d2-agent", "/opt/left4me/l4d2-agent");
        check("", "''");
        check("two words", "'two words'");
        check("it's", r"'it'\''s'");
        check("$(rm -rf /)", "'$(rm -rf /)'");
        check("`id`", "'`id`'");
        check("a;b&&c|d", "'a;b&&c|d'");
        check("line\nbreak", "'line\nbreak'");
        check("*", "'*'");
        check("~root", "'~root'");
        check("--json", "--json");
        check("say \"hi\"", "'say \"hi\"'");
        check("héllo", "'héllo'");
        check("'", r"''\'''");
    }

    #[test]
    fn hostile_words_reach_the_remote_program_unchanged() {
        // What a real shell makes of the quoted line: each word exactly as given.
        let words = [
            "printf",
            "%s|",
            "it's",
            "$(touch /tmp/left4me-pwned)",
            "a b",
            "x\ny",
            "'",
            "",
        ];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(command_line(&words))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "it's|$(touch /tmp/left4me-pwned)|a b|x\ny|'||"
        );
    }

    #[test]
    fn agent_calls_are_exact() {
        let name = ServerName::new("coop-1").unwrap();
        assert_eq!(
            AgentCall::start(&name).command_line(),
            "/opt/left4me/l4d2-agent --json start coop-1"
        );
        assert_eq!(
            AgentCall::initialize(&name).command_line(),
            "/opt/left4me/l4d2-agent --json initialize coop-1 -f - --rcon-password-stdin"
        );
        assert_eq!(
            AgentCall::logs(&name, 200, true).command_line(),
            "/opt/left4me/l4d2-agent --json logs coop-1 --lines 200 --follow"
        );
        assert_eq!(
            AgentCall::rcon(&name, "say it's $(reboot) time; quit").command_line(),
            r"/opt/left4me/l4d2-agent --json rcon coop-1 -- 'say it'\''s $(reboot) time; quit'"
        );
        assert_eq!(
            AgentCall::overlay_workshop(
                &OverlayName::new("maps").unwrap(),
                &[1, 22],
                &[333],
                Some("http://10.0.0.1:8080")
            )
            .command_line(),
            "/opt/left4me/l4d2-agent --json overlay workshop maps --item 1 --item 22 --collection 333 --api-url http://10.0.0.1:8080"
        );
        assert_eq!(
            AgentCall::install(true, None, false).command_line(),
            "/opt/left4me/l4d2-agent --json install --validate"
        );
        assert_eq!(
            AgentCall::install(false, Some("http://10.0.0.1/steam cmd.tgz"), true).command_line(),
            "/opt/left4me/l4d2-agent --json install --steamcmd-url 'http://10.0.0.1/steam cmd.tgz' --steam-login-stdin"
        );
        assert_eq!(
            AgentCall::install_check(None).command_line(),
            "/opt/left4me/l4d2-agent --json install --check"
        );
        assert_eq!(
            AgentCall::forget_steam_login().command_line(),
            "/opt/left4me/l4d2-agent --json forget-steam-login"
        );
        assert_eq!(
            AgentCall::overlay_import(&OverlayName::new("u3-maps").unwrap()).command_line(),
            "/opt/left4me/l4d2-agent --json overlay import u3-maps"
        );
    }

    #[test]
    fn every_other_agent_call_is_exact() {
        let name = ServerName::new("coop-1").unwrap();
        let overlay = OverlayName::new("u3-maps").unwrap();
        let table = [
            (AgentCall::version(), "version"),
            (AgentCall::facts(), "facts"),
            (AgentCall::stop(&name), "stop coop-1"),
            (AgentCall::restart(&name), "restart coop-1"),
            (AgentCall::delete(&name), "delete coop-1"),
            (AgentCall::list(), "list"),
            (AgentCall::serve(), "serve"),
            (
                AgentCall::logs(&name, 0, false),
                "logs coop-1 --lines 0 --no-follow",
            ),
            (AgentCall::overlay_list(), "overlay list"),
            (
                AgentCall::overlay_create(&overlay),
                "overlay create u3-maps",
            ),
            (
                AgentCall::overlay_script(&overlay),
                "overlay script u3-maps",
            ),
            (
                AgentCall::overlay_workshop(&overlay, &[], &[], None),
                "overlay workshop u3-maps",
            ),
            (
                AgentCall::install_check(Some("http://10.0.0.1/s.tgz")),
                "install --check --steamcmd-url http://10.0.0.1/s.tgz",
            ),
            (AgentCall::install(false, None, false), "install"),
        ];
        for (call, args) in table {
            assert_eq!(
                call.command_line(),
                format!("/opt/left4me/l4d2-agent --json {args}")
            );
        }
    }

    #[test]
    fn set_up_lines_are_exact() {
        assert_eq!(ARCH, "uname -m");
        assert_eq!(
            RECEIVE_AGENT,
            r#"umask 077 && t=$(mktemp /tmp/l4d2-agent.XXXXXXXX) && cat > "$t" && chmod 700 "$t" && sha256sum "$t""#
        );
        assert_eq!(
            remove_file("/tmp/l4d2-agent.Ab12"),
            "rm -f /tmp/l4d2-agent.Ab12"
        );
        assert_eq!(
            sudo_setup(
                "/tmp/l4d2-agent.Ab12",
                "ssh-ed25519 AAAAC3Nza left4me-1",
                true
            ),
            "sudo -S -p '' /tmp/l4d2-agent.Ab12 --json setup --authorize-key 'ssh-ed25519 AAAAC3Nza left4me-1'; rc=$?; rm -f /tmp/l4d2-agent.Ab12; exit $rc"
        );
        assert_eq!(
            sudo_setup(
                "/tmp/l4d2-agent.Ab12",
                "ssh-ed25519 AAAAC3Nza left4me-1",
                false
            ),
            "sudo -n /tmp/l4d2-agent.Ab12 --json setup --authorize-key 'ssh-ed25519 AAAAC3Nza left4me-1'; rc=$?; rm -f /tmp/l4d2-agent.Ab12; exit $rc"
        );
    }
}
