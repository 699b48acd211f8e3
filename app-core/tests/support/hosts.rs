//! Bringing the test hosts up through the app, shared by the integration tests and the
//! fan-out benchmark (which includes this file as a module).

use app_core::app::{App, AppConfig, SetupLogin};
use app_core::hosts::{HostState, NewHost};
use app_core::secrets::Secrets;
use app_core::{Error, Session, Store};
use left4me_protocol::{Job, JobEventData, JobState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{SYSOP_PASSWORD, SYSOP_USER, TestHost};
use zeroize::Zeroizing;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub app: Arc<App>,
    pub admin: Session,
    pub hosts: Vec<TestHost>,
    pub host_ids: Vec<i64>,
    pub _steamcmd: testkit::FileServer,
    /// The Steam Web API and download host the hosts' agents use for Workshop overlays.
    pub workshop: testkit::workshop::FakeWorkshop,
    /// Every command line seen on this machine and on the hosts since the harness began.
    pub argv: ArgvWatch,
}

/// Samples the command lines of every process, here and on the hosts, every few
/// milliseconds, so a test can show that no secret ever appeared in one.
pub struct ArgvWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    local: Option<std::thread::JoinHandle<std::collections::BTreeSet<String>>>,
    hosts: Vec<TestHost>,
}

impl ArgvWatch {
    pub fn start(hosts: &[TestHost]) -> Self {
        for host in hosts {
            // A script file, so that the sampler's own command line is short and plain.
            host.run_with_input(
                "root",
                "cat > /root/argv-sampler.sh && chmod 700 /root/argv-sampler.sh",
                "#!/bin/sh\nwhile :; do ps -eww -o args=; sleep 0.005; done >> /root/argv.log\n",
            );
            host.run(
                "root",
                "rm -f /root/argv.log; setsid /root/argv-sampler.sh >/dev/null 2>&1 < /dev/null &",
            );
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let local = std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(dir) = std::fs::read_dir("/proc") {
                    for entry in dir.flatten() {
                        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
                            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
                            seen.insert(line);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        Self {
            stop,
            local: Some(local),
            hosts: hosts.to_vec(),
        }
    }

    /// Stops sampling; returns every command line seen.
    pub fn finish(&mut self) -> String {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut all: Vec<String> = self
            .local
            .take()
            .map(|t| t.join().unwrap().into_iter().collect())
            .unwrap_or_default();
        for host in &self.hosts {
            host.run("root", "pkill -f '[a]rgv-sampler.sh' || true");
            all.push(host.run(
                "root",
                "sort -u /root/argv.log; rm -f /root/argv.log /root/argv-sampler.sh",
            ));
        }
        all.join("\n")
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Whether apps opened from now on keep the app's own timers: benchmarks measure the app as
/// users run it, not the tests' hurried copies (a backup pass every 2 s, which on a fleet
/// of 1,000 servers is a `backup list` per server every 2 s).
static PRODUCTION_TIMERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Apps opened after this keep the app's own timers (for the benchmarks, not the tests).
#[allow(dead_code)]
pub fn production_timers() {
    PRODUCTION_TIMERS.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub fn open_app(dir: &std::path::Path, steamcmd_url: &str, workshop_api: &str) -> Arc<App> {
    let store = Store::open(&dir.join("left4me.db")).unwrap();
    let secrets = Secrets::os(&store.install_id().unwrap())
        .expect("a Secret Service on the session bus (cargo xtask test starts one)");
    let config = AppConfig {
        agent_binaries: HashMap::from([(
            "x86_64".to_owned(),
            testkit::static_binary("l4d2-agent"),
        )]),
        steamcmd_url: Some(steamcmd_url.to_owned()),
        workshop_api: Some(workshop_api.to_owned()),
        backup_pull_every: (!PRODUCTION_TIMERS.load(std::sync::atomic::Ordering::SeqCst))
            .then_some(Duration::from_secs(2)),
    };
    App::start(store, secrets, config).unwrap()
}

pub async fn wait_job(app: &App, session: &Session, job: &Job, timeout: Duration) -> Job {
    let deadline = Instant::now() + timeout;
    loop {
        let now = app.jobs().job(session, job.id).unwrap();
        if now.state.is_finished() {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "job {} ({:?}) still {:?}",
            job.id,
            job.kind,
            now.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every server of `session` runs and answers A2S, asked as the window asks.
#[allow(dead_code)]
pub async fn all_answer(app: &Arc<App>, session: &Session, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let all = app.statuses(session).await.unwrap();
        let live = all
            .iter()
            .filter(|l| {
                l.state == left4me_protocol::LiveState::Running
                    && l.status.as_ref().is_some_and(|s| s.live.is_some())
            })
            .count();
        if live == all.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {live} of {} servers answer A2S",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for every job in turn; each must succeed.
pub async fn all_succeed(app: &App, session: &Session, jobs: &[Job], timeout: Duration) {
    for job in jobs {
        let job = wait_job(app, session, job, timeout).await;
        assert_succeeded(app, session, &job);
    }
}

#[track_caller]
pub fn assert_succeeded(app: &App, session: &Session, job: &Job) {
    if job.state != JobState::Succeeded {
        let lines: Vec<String> = app
            .jobs()
            .events(session, job.id)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.data {
                JobEventData::Line { stream, text } => Some(format!("[{stream}] {text}")),
                _ => None,
            })
            .collect();
        panic!(
            "job {} {:?} ended {:?}: {:?}\n{}",
            job.id,
            job.kind,
            job.state,
            job.error,
            lines.join("\n")
        );
    }
}

/// Adds, confirms, sets up and installs every test host through the app.
pub async fn bring_up_hosts(rt_dir: tempfile::TempDir) -> Harness {
    let steamcmd = testkit::FileServer::start(
        "10.213.77.1",
        "/steamcmd_linux.tar.gz",
        Some(testkit::steamcmd_tarball()),
    );
    let workshop = testkit::workshop::FakeWorkshop::start("10.213.77.1");
    let app = open_app(rt_dir.path(), &steamcmd.url, &workshop.url);
    let admin = app
        .store()
        .create_first_admin("admin", "admin password")
        .unwrap();
    let hosts = testkit::hosts();
    // As fresh as a new machine for left4me: no agent, no steamcmd, no game, no servers
    // (earlier suites on these hosts leave theirs behind).
    for host in &hosts {
        host.run(
            "root",
            "systemctl stop 'left4me-server@*' 'left4me-mount@*' 2>/dev/null; \
             rm -rf /var/lib/left4me /opt/left4me /etc/left4me",
        );
    }
    let argv = ArgvWatch::start(&hosts);
    let mut host_ids = Vec::new();
    let mut setups = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        // Host 1 is given as a password account whose sudo asks for it; the others as a
        // key account with passwordless sudo.
        let account = if i == 0 { SYSOP_USER } else { "admin" };
        let added = app
            .store()
            .add_host(
                &admin,
                NewHost {
                    name: host.name.clone(),
                    address: host.address.clone(),
                    port: 22,
                    admin_user: account.into(),
                    bind_address: None,
                },
            )
            .unwrap();
        assert_eq!(added.state, HostState::New);
        let login = || match i {
            0 => SetupLogin::Password(Zeroizing::new(SYSOP_PASSWORD.to_owned())),
            _ => SetupLogin::KeyFile {
                path: host.key.clone(),
                passphrase: None,
            },
        };
        // No set-up before the key is confirmed.
        let err = app
            .set_up_host(&admin, added.id, login(), None, false)
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let offer = app.fetch_host_key(&admin, added.id).await.unwrap();
        let on_host = host.run("root", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
        assert_eq!(
            offer.fingerprint,
            on_host.split_whitespace().nth(1).unwrap()
        );
        app.store()
            .confirm_host_key(&admin, added.id, &offer.key)
            .unwrap();
        setups.push(
            app.set_up_host(&admin, added.id, login(), None, i == 0)
                .unwrap(),
        );
        host_ids.push(added.id);
    }
    for (i, job) in setups.iter().enumerate() {
        let mut job = wait_job(&app, &admin, job, Duration::from_secs(120)).await;
        // A set-up whose connection dropped is tried again, as a user would ("the next
        // action reconnects"), and said on stderr. It was a login that hung in PAM while
        // the user's manager stopped (see `UserStopDelaySec` in xtask's hosts); kept until
        // more runs show it gone.
        if job.state == JobState::Interrupted
            && job
                .error
                .as_deref()
                .is_some_and(|e| e.contains("was lost during the job"))
        {
            eprintln!(
                "set-up of {} interrupted ({:?}); trying again",
                hosts[i].name, job.error
            );
            let login = match i {
                0 => SetupLogin::Password(Zeroizing::new(SYSOP_PASSWORD.to_owned())),
                _ => SetupLogin::KeyFile {
                    path: hosts[i].key.clone(),
                    passphrase: None,
                },
            };
            let again = app
                .set_up_host(&admin, host_ids[i], login, None, i == 0)
                .unwrap();
            job = wait_job(&app, &admin, &again, Duration::from_secs(120)).await;
        }
        assert_succeeded(&app, &admin, &job);
    }
    let installs: Vec<Job> = host_ids
        .iter()
        .map(|id| app.install_game(&admin, *id, false, None).unwrap())
        .collect();
    for job in &installs {
        let job = wait_job(&app, &admin, job, Duration::from_secs(300)).await;
        assert_succeeded(&app, &admin, &job);
    }
    Harness {
        dir: rt_dir,
        app,
        admin,
        hosts,
        host_ids,
        _steamcmd: steamcmd,
        workshop,
        argv,
    }
}

/// The lines a job printed, in order.
pub fn job_lines(app: &App, session: &Session, job: i64) -> Vec<String> {
    app.jobs()
        .events(session, job)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.data {
            JobEventData::Line { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

/// The Workshop items a job reported, in order.
pub fn job_items(
    app: &App,
    session: &Session,
    job: i64,
) -> Vec<left4me_protocol::agent::WorkshopItem> {
    app.jobs()
        .events(session, job)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.data {
            JobEventData::WorkshopItem(item) => Some(item),
            _ => None,
        })
        .collect()
}

/// CPU time (user and system, ms) of every process now running: its program name and time,
/// by process id (a kernel worker changes its name with its work).
#[allow(dead_code)]
pub fn cpu_by_program() -> std::collections::HashMap<u32, (String, f64)> {
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    let tick = 1000.0
        / String::from_utf8_lossy(&hz.stdout)
            .trim()
            .parse::<f64>()
            .unwrap();
    let mut by = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so split at its last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let Ok(pid) = stat[..open].trim().parse::<u32>() else {
            continue;
        };
        let ticks = user.parse::<f64>().unwrap_or(0.0) + system.parse::<f64>().unwrap_or(0.0);
        by.insert(pid, (stat[open + 1..close].to_owned(), ticks * tick));
    }
    by
}
