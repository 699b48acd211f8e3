//! Reading steamcmd: what each line of its output means, and how a run ended.
//!
//! steamcmd's output is meant for people, and it changed over the years: login outcomes are
//! a suffix of the login line (`…to Steam Public...FAILED (Rate Limit Exceeded)`, older
//! `Login Failure: Account Logon Denied`, `FAILED with result code 85`), noise splits lines
//! (`Loading Steam API...IPC function call … took too long` then `OK`), prompts have no line
//! break (`Steam Guard code:`), colour resets and the `Steam>` prompt are glued to what
//! follows, and a script's commands are echoed, a login's password with them. The
//! transcripts in `tests/steamcmd/`, each modelled on real output people posted, pin how
//! every one of these is read.

use left4me_protocol::AgentErrorCode;
use std::collections::VecDeque;

/// How an account proves to Steam that a new machine is its owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A code Steam e-mails to the owner.
    Email,
    /// A code from the Steam app's authenticator.
    TwoFactor,
}

impl Guard {
    fn code_is(self) -> &'static str {
        match self {
            Guard::Email => "the code it e-mailed to the account's owner",
            Guard::TwoFactor => "the code the Steam app's authenticator shows now",
        }
    }
}

/// One line of steamcmd's output, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// ` Update state (0x61) downloading, progress: 45.23 (4032156416 / 8915324133)`
    Progress {
        code: u32,
        state: String,
        percent: f64,
        done: u64,
        total: u64,
    },
    /// `Success! App '222860' fully installed.` / `… already up to date.`
    Success,
    /// The login went through.
    LoggedOn,
    /// `Waiting for confirmation...`: the owner must approve the login in the Steam app.
    WaitingForConfirmation,
    /// `That Steam Guard code was invalid.`
    GuardCodeInvalid,
    /// A prompt for a Steam Guard code, waiting on input.
    GuardPrompt(Guard),
    /// `password:`, waiting on input.
    PasswordPrompt,
    /// `AppID : 222860, change number : …`: app info follows.
    AppInfo,
    /// `"buildid"\t\t"16075386"` inside app info.
    BuildId(String),
    /// `"public"` inside app info's branches.
    Branch(String),
    Failure(Failure),
    /// An echoed command that carries secrets (`login NAME PASSWORD CODE`).
    Secret,
    Other,
}

/// Why steamcmd did not finish. Each kind maps to a stable error code the app branches on.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Steam refused the login: wrong password, no such account, a disabled account…
    LoginRefused(String),
    /// A Steam Guard code is needed to log in from this host.
    GuardCodeNeeded(Guard),
    /// The Steam Guard code given was wrong or expired.
    GuardCodeRejected(Guard),
    /// The owner did not approve the login in the Steam app in time.
    GuardNotConfirmed,
    /// Too many logins: Steam refuses more from this address for a while.
    RateLimited,
    /// The account does not own the game.
    NoSubscription,
    /// Anonymous Linux installs of 222860 are refused (since November 2024).
    InvalidPlatform,
    /// The install's disk is too small (`state is 0x202`).
    DiskFull { state: u32 },
    /// Steam could not be reached or answered too slowly; it often clears on a retry.
    Network(String),
    /// steamcmd printed nothing for too long and was stopped.
    Silent { seconds: u64 },
    /// steamcmd itself could not run (no 32-bit runtime, a missing file).
    CannotRun(String),
    /// Any other failure, as steamcmd worded it.
    Other(String),
}

impl Failure {
    pub fn code(&self) -> AgentErrorCode {
        match self {
            Failure::LoginRefused(_) => AgentErrorCode::SteamLoginRefused,
            Failure::GuardCodeNeeded(_) => AgentErrorCode::SteamGuardCodeNeeded,
            Failure::GuardCodeRejected(_) => AgentErrorCode::SteamGuardCodeRejected,
            Failure::GuardNotConfirmed => AgentErrorCode::SteamGuardNotConfirmed,
            Failure::RateLimited => AgentErrorCode::SteamRateLimited,
            Failure::NoSubscription => AgentErrorCode::SteamNoSubscription,
            Failure::InvalidPlatform => AgentErrorCode::SteamInvalidPlatform,
            Failure::DiskFull { .. } => AgentErrorCode::DiskFull,
            Failure::Network(_) => AgentErrorCode::SteamUnreachable,
            Failure::Silent { .. } => AgentErrorCode::SteamcmdSilent,
            Failure::CannotRun(_) => AgentErrorCode::SteamcmdCannotRun,
            Failure::Other(_) => AgentErrorCode::SteamcmdFailed,
        }
    }

    /// Whether running steamcmd again soon may well succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Network(_))
    }

    /// What happened and what to do, in a sentence or two.
    pub fn explain(&self) -> String {
        match self {
            Failure::LoginRefused(reason) => {
                format!("Steam refused the login ({reason}): check the account name and password")
            }
            Failure::GuardCodeNeeded(guard) => format!(
                "Steam Guard: this host is new to the account, so Steam wants {} to continue",
                guard.code_is()
            ),
            Failure::GuardCodeRejected(guard) => format!(
                "Steam Guard refused the code: give {} (codes expire quickly)",
                guard.code_is()
            ),
            Failure::GuardNotConfirmed => "Steam Guard: the login was not approved in the Steam \
                 app in time; install again and approve it on the phone"
                .to_owned(),
            Failure::RateLimited => "Steam refuses logins from this host for now, after too many \
                 attempts (Rate Limit Exceeded); wait about 30 minutes before trying again"
                .to_owned(),
            Failure::NoSubscription => "the Steam account does not own Left 4 Dead 2 (No \
                 subscription); log in with an account that owns the game"
                .to_owned(),
            Failure::InvalidPlatform => "Steam refuses anonymous Linux installs of the L4D2 \
                 server (Invalid platform); log in with a Steam account that owns L4D2"
                .to_owned(),
            Failure::DiskFull { state } => {
                format!("not enough disk space for the game (steamcmd ended in state 0x{state:x})")
            }
            Failure::Network(what) => format!("could not reach Steam ({what})"),
            Failure::Silent { seconds } => format!(
                "steamcmd printed nothing for {seconds} s and was stopped (a network stall, or a \
                 prompt nobody could answer)"
            ),
            Failure::CannotRun(why) => format!("steamcmd cannot run on this host: {why}"),
            Failure::Other(text) => text.clone(),
        }
    }
}

/// steamcmd's words with colour codes taken out (`\x1b[0mOK`).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Reads one complete line.
pub fn read_line(line: &str) -> Said {
    let line = plain(line);
    // Output after steamcmd's prompt is glued to it (`Steam>AppID : 222860, …`).
    let text = line.trim();
    let text = text.strip_prefix("Steam>").unwrap_or(text).trim();
    // Commands steamcmd echoes from a script or its prompt.
    if text.starts_with("login ") || text.starts_with("set_steam_guard_code ") {
        return Said::Secret;
    }
    if let Some(at) = text.find("Update state (0x")
        && let Some(progress) = progress(&text[at + "Update state (0x".len()..])
    {
        return progress;
    }
    if text.contains("Success! App '") {
        return Said::Success;
    }
    if let Some(failure) = failure(text) {
        return Said::Failure(failure);
    }
    if text.contains("That Steam Guard code was invalid.") {
        return Said::GuardCodeInvalid;
    }
    if text.ends_with("Waiting for confirmation...") {
        return Said::WaitingForConfirmation;
    }
    if let Some(prompt) = prompt(text) {
        return prompt;
    }
    if text.contains("to Steam Public...")
        && (text.ends_with("...OK")
            || text.ends_with("Logged in OK")
            || text.ends_with("...Success."))
        || text.starts_with("Waiting for confirmation...OK")
    {
        return Said::LoggedOn;
    }
    if text.starts_with("AppID : ") && text.contains(", change number : ") {
        return Said::AppInfo;
    }
    let words: Vec<&str> = text.split('"').filter(|w| !w.trim().is_empty()).collect();
    match words.as_slice() {
        ["buildid", value] => Said::BuildId((*value).to_owned()),
        [name] if text.starts_with('"') && text.ends_with('"') => Said::Branch((*name).to_owned()),
        _ => Said::Other,
    }
}

/// Reads the start of a line that has no line break yet: a prompt waiting for input, or a
/// wait announced. `None` when it means nothing yet.
pub fn read_partial(text: &str) -> Option<Said> {
    let text = plain(text);
    let text = text.trim();
    if text.ends_with("Waiting for confirmation...") {
        return Some(Said::WaitingForConfirmation);
    }
    prompt(text)
}

fn prompt(text: &str) -> Option<Said> {
    if text.ends_with("Steam Guard code:") {
        Some(Said::GuardPrompt(Guard::Email))
    } else if text.ends_with("Two-factor code:") {
        Some(Said::GuardPrompt(Guard::TwoFactor))
    } else if text.ends_with("password:") {
        Some(Said::PasswordPrompt)
    } else {
        None
    }
}

fn progress(rest: &str) -> Option<Said> {
    let (code, rest) = rest.split_once(") ")?;
    let code = u32::from_str_radix(code, 16).ok()?;
    let (state, rest) = rest.split_once(", progress: ")?;
    let (percent, rest) = rest.split_once(" (")?;
    let (done, total) = rest.split_once(')')?.0.split_once(" / ")?;
    Some(Said::Progress {
        code,
        state: state.to_owned(),
        // Some locales print a decimal comma (LinuxGSM#356).
        percent: percent.replace(',', ".").parse().ok()?,
        done: done.parse().ok()?,
        total: total.parse().ok()?,
    })
}

/// The reason in `… (reason)` after `marker`.
fn reason_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let at = text.find(marker)? + marker.len();
    let rest = &text[at..];
    let end = rest.rfind(')')?;
    Some(rest[..end].trim())
}

fn failure(text: &str) -> Option<Failure> {
    if let Some(reason) = reason_after(text, "Failed to install app '")
        .and_then(|r| r.split_once("' (").map(|(_, reason)| reason))
    {
        return Some(install_failure(reason, text));
    }
    if let Some(at) = text.find(" state is 0x")
        && text.contains("after update job")
    {
        let hex: String = text[at + " state is 0x".len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        let state = u32::from_str_radix(&hex, 16).ok()?;
        return Some(app_state(state, text));
    }
    if text.contains("Timed out waiting for AppInfo update")
        || text.contains("Failed to request AppInfo update")
        || text.contains("AppInfo request for AppId")
    {
        return Some(Failure::Network(text.to_owned()));
    }
    if text.starts_with("ERROR! Not logged on") {
        return Some(Failure::Other(
            "steamcmd is not logged on to Steam".to_owned(),
        ));
    }
    // Login outcomes: `…FAILED (reason)`, `…ERROR (reason)`, `Login Failure: reason`,
    // `FAILED login with result code reason`, `FAILED with result code N`.
    let reason = reason_after(text, "FAILED (")
        .or_else(|| reason_after(text, "ERROR ("))
        .map(str::to_owned)
        .or_else(|| {
            text.split_once("Login Failure: ")
                .map(|(_, r)| strip_result_number(r.trim()).to_owned())
        })
        .or_else(|| {
            text.split_once("FAILED login with result code ")
                .map(|(_, r)| r.trim().to_owned())
        })
        .or_else(|| {
            text.split_once("FAILED with result code ")
                .and_then(|(_, n)| n.trim().parse::<u32>().ok())
                .map(|n| result_name(n).to_owned())
        })?;
    Some(login_failure(&reason, text))
}

/// `Two-factor code mismatch (88)` → `Two-factor code mismatch`.
fn strip_result_number(reason: &str) -> &str {
    match reason.rsplit_once(" (") {
        Some((text, n)) if n.trim_end_matches(')').parse::<u32>().is_ok() => text,
        _ => reason,
    }
}

/// Steam's EResult numbers that old steamcmd printed bare.
fn result_name(n: u32) -> &'static str {
    match n {
        3 => "No Connection",
        5 => "Invalid Password",
        63 => "Account Logon Denied",
        65 => "Invalid Login Auth Code",
        84 => "Rate Limit Exceeded",
        85 => "Account logon denied, need two-factor code",
        88 => "Two-factor code mismatch",
        _ => "unknown result",
    }
}

fn login_failure(reason: &str, text: &str) -> Failure {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("rate limit") {
        Failure::RateLimited
    } else if lower.contains("need two-factor") {
        Failure::GuardCodeNeeded(Guard::TwoFactor)
    } else if lower.contains("two-factor code mismatch") {
        Failure::GuardCodeRejected(Guard::TwoFactor)
    } else if lower.contains("login auth code") {
        Failure::GuardCodeRejected(Guard::Email)
    } else if lower.contains("account logon denied") {
        // Steam Guard by e-mail; whether a code was given decides needed or rejected.
        Failure::GuardCodeNeeded(Guard::Email)
    } else if lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("no connection")
        || lower.contains("service unavailable")
        || lower.contains("try another cm")
    {
        Failure::Network(text.to_owned())
    } else {
        Failure::LoginRefused(reason.to_owned())
    }
}

fn install_failure(reason: &str, text: &str) -> Failure {
    let lower = reason.to_ascii_lowercase();
    if lower.starts_with("invalid platform") {
        Failure::InvalidPlatform
    } else if lower.starts_with("no subscription") {
        Failure::NoSubscription
    } else if lower.contains("rate limit") {
        Failure::RateLimited
    } else if lower.contains("no connection")
        || lower.contains("timeout")
        || lower.contains("timed out")
        // Seen once on the run that updated steamcmd itself, gone on the next.
        || lower.starts_with("missing configuration")
    {
        Failure::Network(text.to_owned())
    } else {
        Failure::Other(text.to_owned())
    }
}

/// The app's state after a failed update job (LinuxGSM's `core_dl.sh` reads the same).
fn app_state(state: u32, text: &str) -> Failure {
    match state {
        0x202 | 0x212 => Failure::DiskFull { state },
        0x402 | 0x602 | 0x2 | 0x6 => Failure::Network(text.to_owned()),
        _ => Failure::Other(text.to_owned()),
    }
}

/// A whole run of steamcmd, read as it goes: what it did and said.
#[derive(Debug, Default)]
pub struct Run {
    pub succeeded: bool,
    pub logged_on: bool,
    /// The first failure steamcmd reported (later ones follow from it).
    pub failure: Option<Failure>,
    /// A Steam Guard prompt steamcmd is waiting at.
    pub guard_prompt: Option<Guard>,
    pub guard_code_invalid: bool,
    pub waiting_for_confirmation: bool,
    /// The public build `app_info_print` named.
    pub public_build: Option<String>,
    branch: Option<String>,
    in_app_info: bool,
    /// What steamcmd said last (secrets left out), for a failure it gives no reason for.
    pub last: VecDeque<String>,
}

/// How many of steamcmd's last lines a failure quotes.
const LAST_LINES: usize = 6;

impl Run {
    /// Takes one complete line; returns what it said.
    pub fn line(&mut self, line: &str) -> Said {
        let said = read_line(line);
        let shown = match &said {
            Said::Secret => None,
            _ => Some(plain(line).trim().to_owned()).filter(|l| !l.is_empty()),
        };
        if let Some(shown) = shown {
            if self.last.len() == LAST_LINES {
                self.last.pop_front();
            }
            self.last.push_back(shown);
        }
        match &said {
            Said::Success => self.succeeded = true,
            Said::LoggedOn => {
                self.logged_on = true;
                self.waiting_for_confirmation = false;
            }
            Said::WaitingForConfirmation => self.waiting_for_confirmation = true,
            Said::GuardCodeInvalid => self.guard_code_invalid = true,
            Said::GuardPrompt(guard) => self.guard_prompt = Some(*guard),
            Said::Failure(failure) => {
                // A prompt that was answered with a refusal on the same line.
                if let Some(guard) = prompt_before_failure(line) {
                    self.guard_prompt = Some(guard);
                }
                if self.failure.is_none() {
                    self.failure = Some(failure.clone());
                }
            }
            Said::AppInfo => self.in_app_info = true,
            Said::Branch(name) if self.in_app_info => self.branch = Some(name.clone()),
            Said::BuildId(build)
                if self.in_app_info
                    && self.branch.as_deref() == Some("public")
                    && self.public_build.is_none() =>
            {
                self.public_build = Some(build.clone());
            }
            _ => {}
        }
        said
    }

    /// Takes the start of a line with no line break yet.
    pub fn partial(&mut self, text: &str) -> Option<Said> {
        let said = read_partial(text)?;
        match &said {
            Said::WaitingForConfirmation => self.waiting_for_confirmation = true,
            Said::GuardPrompt(guard) => self.guard_prompt = Some(*guard),
            _ => {}
        }
        Some(said)
    }

    /// The failure to report, once steamcmd is done, knowing whether a Steam Guard code was
    /// given: a refusal after a code was given means the code was wrong.
    pub fn verdict(&self, code_given: bool) -> Option<Failure> {
        let failure = self.failure.clone();
        match failure {
            Some(Failure::GuardCodeNeeded(guard)) if code_given || self.guard_code_invalid => {
                Some(Failure::GuardCodeRejected(guard))
            }
            Some(Failure::LoginRefused(_)) | None if self.guard_prompt.is_some() => {
                let guard = self.guard_prompt.unwrap_or(Guard::Email);
                Some(if code_given || self.guard_code_invalid {
                    Failure::GuardCodeRejected(guard)
                } else {
                    Failure::GuardCodeNeeded(guard)
                })
            }
            other => other,
        }
    }

    /// How the run ended, once steamcmd has exited with `exit_code` (`None` when a signal
    /// ended it): `None` when it succeeded. Its words decide, then its exit status: steamcmd
    /// can report success and crash on its way out, or fail and exit 0.
    pub fn finish(&self, code_given: bool, exit_code: Option<i32>) -> Option<Failure> {
        if let Some(failure) = self.verdict(code_given) {
            return Some(failure);
        }
        if self.succeeded {
            return None;
        }
        Some(match exit_code {
            // The shell could not execute steamcmd's i386 program.
            Some(126 | 127) => Failure::CannotRun(
                "its launcher could not start it (is the 32-bit runtime installed? \
                 `l4d2-agent setup` installs it)"
                    .to_owned(),
            ),
            Some(code) => Failure::Other(format!(
                "steamcmd exited with status {code} without reporting success"
            )),
            None => Failure::Other(
                "steamcmd was killed by a signal without reporting success".to_owned(),
            ),
        })
    }

    pub fn last_lines(&self) -> String {
        self.last.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

fn prompt_before_failure(line: &str) -> Option<Guard> {
    let line = plain(line);
    if line.contains("Steam Guard code:FAILED") || line.contains("Steam Guard code:ERROR") {
        Some(Guard::Email)
    } else if line.contains("Two-factor code:FAILED") || line.contains("Two-factor code:ERROR") {
        Some(Guard::TwoFactor)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_read_wherever_they_start() {
        let expected = Said::Progress {
            code: 0x61,
            state: "downloading".into(),
            percent: 45.23,
            done: 4_032_156_416,
            total: 8_915_324_133,
        };
        assert_eq!(
            read_line(
                " Update state (0x61) downloading, progress: 45.23 (4032156416 / 8915324133)"
            ),
            expected
        );
        assert_eq!(
            read_line(
                "Steam> Update state (0x61) downloading, progress: 45,23 (4032156416 / 8915324133)"
            ),
            expected
        );
        assert_eq!(read_line(" Update state (0x61) downloading"), Said::Other);
    }

    #[test]
    fn login_outcomes_are_read_from_any_wording() {
        let read = |l: &str| match read_line(l) {
            Said::Failure(f) => Some(f),
            _ => None,
        };
        assert_eq!(
            read("Logging in user 'a' [U:1:0] to Steam Public...FAILED (Rate Limit Exceeded)"),
            Some(Failure::RateLimited)
        );
        assert_eq!(
            read("Logging in user a to Steam Public...ERROR (Rate Limit Exceeded)"),
            Some(Failure::RateLimited)
        );
        assert_eq!(
            read("password: FAILED (Invalid Password)"),
            Some(Failure::LoginRefused("Invalid Password".into()))
        );
        assert_eq!(
            read("5: Login Failure: Two-factor code mismatch (88)"),
            Some(Failure::GuardCodeRejected(Guard::TwoFactor))
        );
        assert_eq!(
            read("Two-factor code:FAILED with result code 85"),
            Some(Failure::GuardCodeNeeded(Guard::TwoFactor))
        );
        assert!(matches!(
            read("Waiting for user info...FAILED (Timed out)"),
            Some(Failure::Network(_))
        ));
        assert_eq!(
            read_line("Logging in user 'a' [U:1:5] to Steam Public...OK"),
            Said::LoggedOn
        );
        assert_eq!(read_line("login alice hunter2 4H7KQ"), Said::Secret);
        assert_eq!(read_line("Steam>login alice hunter2"), Said::Secret);
    }

    #[test]
    fn colour_codes_do_not_hide_words() {
        assert_eq!(
            read_line(
                "info...\x1b[0mOK \x1b[0mERROR! Failed to install app '222860' (Invalid platform)"
            ),
            Said::Failure(Failure::InvalidPlatform)
        );
    }
}
