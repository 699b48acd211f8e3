//! The command line, for people and for the app.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes, also shown in `--help`.
pub const EXIT_HELP: &str = "\
Exit status:
  0  success (also when there was nothing to change)
  1  the command failed (the reason is on stderr, or the last JSON record with --json)
  2  the command line or an input file is invalid; nothing was changed
  3  the named server or overlay does not exist
  4  busy: another l4d2-agent is working on the same server; try again";

#[derive(Debug, Parser)]
#[command(
    name = "l4d2-agent",
    version,
    about = "Installs Left 4 Dead 2, layers overlays and runs game servers on this host",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// Machine output: one JSON document, or JSON Lines for streams
    #[arg(long, global = true)]
    pub json: bool,

    /// The state tree every path derives from
    #[arg(long, global = true, value_name = "DIR", default_value = crate::layout::DEFAULT_ROOT)]
    pub root: PathBuf,

    /// The account that owns installs and overlays
    #[arg(long, global = true, value_name = "NAME", default_value = crate::accounts::OWNER, hide = true)]
    pub owner_account: String,

    /// The account that runs the game
    #[arg(long, global = true, value_name = "NAME", default_value = crate::accounts::GAME, hide = true)]
    pub game_account: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the agent's version and build facts
    Version,
    /// Describe this host: OS, kernel, CPU, memory, disk and the installed game build
    Facts,
    /// Install or update the base game (app 222860) with steamcmd
    Install(crate::install::Args),
    /// Forget the Steam login steamcmd cached on this host
    ///
    /// The next install with the account needs its password again, and Steam may ask for a
    /// Steam Guard code.
    ForgetSteamLogin {
        /// steamcmd to forget for (default: the usual places)
        #[arg(long, value_name = "PATH")]
        steamcmd: Option<PathBuf>,
    },
    /// Create or update a server's runtime tree from an instance spec
    Initialize {
        /// The server's name: lower-case letters, digits and '-'
        name: String,
        /// The spec file (YAML), or '-' to read it from stdin
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Set the server's RCON password from the first line of stdin (with -f -, the spec
        /// follows it); it is kept in a file only left4me can read, never in the spec
        #[arg(long)]
        rcon_password_stdin: bool,
    },
    /// Mount a server's game tree (what left4me-mount@<name>.service runs, as root)
    Mount { name: String },
    /// Unmount a server's game tree (left4me-mount@<name>.service's stop step)
    Umount { name: String },
    /// Start a server's unit (mounting its game tree first)
    Start { name: String },
    /// Stop a server's unit (unmounting its game tree after)
    Stop { name: String },
    /// Restart a server's unit, applying a changed spec
    Restart { name: String },
    /// Show a server's state: systemd, mounts, installed build, live players and map
    Status { name: String },
    /// Run a console command on a running server through RCON and print its answer
    Rcon {
        name: String,
        /// The command and its arguments, e.g. `status` or `changelevel c2m1_highway`
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show a server's console log from journald
    Logs {
        name: String,
        /// How many of the latest lines to show
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: u32,
        /// Keep streaming new lines until interrupted
        #[arg(long, overrides_with = "no_follow")]
        follow: bool,
        /// Print the lines and exit (the default)
        #[arg(long)]
        no_follow: bool,
    },
    /// Unmount a server and remove its runtime tree; a missing server is not an error
    Delete { name: String },
    /// List the servers initialised on this host
    List,
    /// Answer requests on one process until stdin ends: a request a line (`list`), its
    /// answer a line (the app keeps one per host, so a look at the host starts nothing)
    #[command(hide = true)]
    Serve,
    /// Manage overlays: the folders layered over the base install
    Overlay {
        #[command(subcommand)]
        command: OverlayCommand,
    },
    /// Download a URL to a file (written whole or not at all); for overlay scripts
    Fetch {
        url: String,
        file: PathBuf,
        /// Tries after the first for a transient failure
        #[arg(long, value_name = "N", default_value_t = 3)]
        retries: u32,
    },
    /// Prepare this host once, as root: accounts, folders, unit, sudo rule
    Setup {
        /// An OpenSSH public key line to authorise for the left4me account
        #[arg(long, value_name = "KEY")]
        authorize_key: Option<String>,
    },
    /// Run the game on a pseudo-terminal and copy its console to stdout line by line (the
    /// server unit's main process)
    #[command(hide = true)]
    Console {
        /// The program and its arguments
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show what happened on this host while nobody watched
    ///
    /// Crashes (with their cause and last console lines), servers systemd stopped restarting,
    /// hung servers and notifications that could not be sent; kept 30 days, at most 5000.
    Events {
        /// Only the events after this sequence number
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
    },
    /// Look once for hung servers: running, but answering nothing
    ///
    /// Every running server gets an A2S query; one that has run a minute and answered none of
    /// three looks in a row is recorded, notified, and restarted when its spec says
    /// `restart_when_hung: true`. left4me-watch.timer runs this every 15 seconds.
    Watch,
    /// Where this host sends notifications (Discord, a signed webhook, ntfy, Gotify)
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Timed work this host does on its own: restarts that wait for players to leave,
    /// console commands, messages to players, update checks
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
    /// Backups of a server's own files (its upper layer) and spec, kept on this host
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Game updates rolled across the servers: a canary first, drained, restarted on the new
    /// build and checked, then the rest as each empties
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// What systemd runs when a server's game ends (the server unit's hooks)
    #[command(hide = true)]
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
    /// What the host's sudo rule runs for the left4me account (root only)
    Privileged {
        #[arg(value_enum)]
        action: crate::service::PrivilegedAction,
        /// The server (every action but `schedules`)
        name: Option<String>,
        /// `restore` only: the backup, as <server>/<id>
        #[arg(long, value_name = "SERVER/ID")]
        backup: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The game's builds on this host, which servers run which, and the rollout
    Status,
    /// Roll the current build out to the running servers on an older one (or go on with a
    /// paused or held rollout). The host does it, from left4me-rollout.service: the canary
    /// drains, restarts on the new build and is checked (its A2S version, SourceMod's error
    /// log, no crash), then the others follow, each once its players have left
    Start {
        /// Restart the running servers whose next start changes them (their spec, an
        /// overlay's new content) the same way, each on the build it runs
        #[arg(long)]
        changes: bool,
        /// The server to go first (default: one whose blueprint asks, else the emptiest)
        #[arg(long, value_name = "SERVER")]
        canary: Option<String>,
        /// How long each server waits for its players to leave before it restarts anyway
        #[arg(long, value_name = "MINUTES")]
        drain_minutes: Option<u32>,
        /// How long the canary is watched on the new build
        #[arg(long, value_name = "SECONDS")]
        check_seconds: Option<u32>,
    },
    /// Stop before the next server (a server waiting for its players stays as it is)
    Pause,
    /// Put every server the rollout moved back on the build it ran, and remove the new build
    Back,
    /// End a restart with changes before its next server (the others keep their changes
    /// for their next start)
    Stop,
    /// Do the rollout's work (what left4me-rollout.service runs)
    #[command(hide = true)]
    Run,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up a server, running or not: its upper layer (SQLite files through SQLite's own
    /// backup, deleted files kept deleted) and spec, with the game build and overlay versions
    /// it ran on; never the game or the overlays, which can be fetched again
    Create {
        name: String,
        /// Mark it as made by a schedule
        #[arg(long, hide = true)]
        scheduled: bool,
    },
    /// List a server's backups, newest first
    List { name: String },
    /// Read a backup whole and check it against its manifest
    Verify { name: String, id: String },
    /// Put a backup in place of the server's files: checked whole first, the server as it
    /// was backed up (the undo), stopped, restored and started again if it ran
    Restore {
        name: String,
        id: String,
        /// Take the backup from this server's backups (a server moved or copied)
        #[arg(long, value_name = "SERVER")]
        from: Option<String>,
    },
    /// Remove the backups retention does not keep (a backup any rule keeps stays)
    Prune {
        name: String,
        /// Keep the newest N
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_last: u32,
        /// Keep the newest of each of the last N days that have one
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_daily: u32,
        /// Keep the newest of each of the last N weeks that have one
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep_weekly: u32,
    },
    /// Write a backup's archive to stdout (to keep it elsewhere)
    Get { name: String, id: String },
    /// Keep the archive on stdin (from `get`, here or on another host) as one of the
    /// server's backups, once it was checked whole
    Put { name: String },
}

#[derive(Debug, Subcommand)]
pub enum OverlayCommand {
    /// List overlays with their file counts and sizes
    List,
    /// Create an empty overlay
    Create { name: String },
    /// Delete an overlay that no server uses
    Delete { name: String },
    /// Fill an overlay (creating it if needed) with Steam Workshop items: unchanged items are
    /// kept, items that cannot be fetched are reported; refused while a running server has it
    /// mounted
    Workshop(crate::workshop::Args),
    /// Fill an overlay (creating it if needed) by running the shell script on stdin as
    /// left4me in an empty folder; its result replaces the overlay only if it succeeds
    Script {
        name: String,
        /// Stop the script (and keep the overlay as it was) after this many seconds
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
        /// Refuse a result larger than this many bytes
        #[arg(long, value_name = "BYTES", default_value_t = crate::import::DEFAULT_MAX_BYTES)]
        max_bytes: u64,
    },
    /// Fill an overlay (creating it if needed) from a tar archive on stdin, replacing what
    /// it held; refused while a running server has it mounted
    Import {
        name: String,
        /// Refuse archives that unpack to more than this many bytes
        #[arg(long, value_name = "BYTES", default_value_t = crate::import::DEFAULT_MAX_BYTES)]
        max_bytes: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// List the targets (their secrets are not shown)
    List,
    /// Replace the targets with the JSON list on stdin:
    /// {"targets":[{"name":"ops","kind":"discord","url":"https://discord.com/api/webhooks/…"}]}
    /// (kinds: discord, webhook with "secret", ntfy with an optional "secret" token, gotify
    /// with "secret"); it is kept in a file only left4me can read
    Set,
    /// Send a test message from this host to every target, or the one named
    Test { name: Option<String> },
    /// Send the waiting notifications until none is left (left4me-notify.service)
    #[command(hide = true)]
    Run,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the schedules with their next runs and how their last run ended
    List,
    /// Replace the schedules with the JSON list on stdin, e.g.
    /// {"schedules":[{"name":"nightly","calendar":"*-*-* 04:00","time_zone":"Europe/Berlin",
    /// "server":"coop-1","action":"restart","drain_minutes":30}]}
    /// (actions: restart, command with "command", say with "message", backup with
    /// "keep_last", "keep_daily", "keep_weekly"; for the whole host update_check,
    /// game_update, overlay_refresh with "overlay" and "items"; no server: every server). Every calendar is checked by systemd first; each schedule
    /// becomes a timer, left4me-schedule-<name>.timer
    Set,
    /// Show when a calendar expression runs next, as this host reads it
    Preview {
        /// A systemd calendar expression: `*-*-* 04:00`, `Mon..Fri 06:30`, `*:0/30`, `daily`
        calendar: String,
        /// Read the calendar in this time zone (default: the host's)
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// How many runs to show
        #[arg(long, value_name = "N", default_value_t = 5)]
        count: u32,
        /// Judge it as a restart's calendar: warn when it restarts more often than hourly
        #[arg(long)]
        restart: bool,
    },
    /// Run a schedule now, as its timer does; a timer's run acts once for each time it is due
    Run { name: String },
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// The server's game ended (ExecStopPost=): records a crash if it was one
    Stopped { name: String },
    /// systemd stopped restarting the server (OnFailure=)
    GaveUp { name: String },
}
