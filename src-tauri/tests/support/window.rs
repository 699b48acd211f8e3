//! The real window for tests and benchmarks: a private Xvfb and tauri-driver, the app opened
//! through WebDriver in a fresh data folder, and helpers that wait for what the UI shows.
//! Needs `Xvfb`, `WebKitWebDriver` and `tauri-driver` (path in `$TAURI_DRIVER`, else on
//! PATH), and the UI bundle built into the app: `cargo xtask test` provides all of them.
//! Included by path (`#[path]`) from the test binary and the `bench_ui` example.

#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb server on a free display, stopped on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        let (reader, writer) = std::io::pipe().expect("pipe");
        // -displayfd picks a free display and writes its number to the given fd (stdout).
        let child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(writer)
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install xvfb, or run `cargo xtask test`)");
        let mut line = String::new();
        BufReader::new(reader)
            .read_line(&mut line)
            .expect("read Xvfb's display number");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb exited without a display");
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tauri-driver in front of WebKitWebDriver, stopped on drop with SIGTERM: it stops
/// WebKitWebDriver (and so the app) only on SIGTERM or SIGINT, never on SIGKILL.
pub struct Driver {
    child: Child,
    port: u16,
    _watchdog: Watchdog,
}

impl Driver {
    /// `env` is given to the app (through tauri-driver and WebKitWebDriver, which pass their
    /// environment on).
    pub fn start(display: &str, data_dir: &Path, env: &[(&str, String)]) -> Driver {
        Driver::start_with(display, data_dir, env, None)
    }

    /// [`Driver::start`] with another WebKitWebDriver than the one on PATH.
    pub fn start_with(
        display: &str,
        data_dir: &Path,
        env: &[(&str, String)],
        native_driver: Option<&Path>,
    ) -> Driver {
        let program = std::env::var_os("TAURI_DRIVER").unwrap_or_else(|| "tauri-driver".into());
        let port = free_port();
        let native = loop {
            let native = free_port();
            if native != port {
                break native;
            }
        };
        let mut command = Command::new(&program);
        if let Some(native_driver) = native_driver {
            command.arg("--native-driver").arg(native_driver);
        }
        let child = command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native.to_string()])
            .env("DISPLAY", display)
            .env("LEFT4ME_DATA_DIR", data_dir)
            // With it, WebDriver's Take Screenshot never returns.
            .env_remove("WEBKIT_DISABLE_COMPOSITING_MODE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .unwrap_or_else(|e| panic!("start {program:?} (run `cargo xtask test`): {e}"));
        let driver = Driver {
            child,
            port,
            _watchdog: Watchdog::arm(HUNG),
        };
        // tauri-driver listens at once and starts WebKitWebDriver behind it; a session asked
        // for before both listen fails.
        let deadline = Instant::now() + Duration::from_secs(20);
        for (what, port) in [("tauri-driver", port), ("WebKitWebDriver", native)] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "{what} did not listen on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        driver
    }

    pub async fn session(&self, app: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{}", self.port);
        answer("New Session (the app's start)", builder.connect(&url))
            .await
            .expect("WebDriver session with the app")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        // It exits at once on SIGTERM; one that does not is killed, not waited for ever.
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long one WebDriver command may take. WebKitWebDriver has commands that never answer
/// once the window stops painting, and fantoccini waits for ever: a window test must fail
/// with the command named, never hang the run.
pub const COMMAND: Duration = Duration::from_secs(60);

/// How long a window may stay open: longer than the longest test (the whole flow against a
/// test host), far shorter than CI's limit.
const HUNG: Duration = Duration::from_secs(25 * 60);

/// The WebDriver command each test thread sent last, for the watchdog's report.
static LAST_COMMAND: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("main").to_owned()
}

/// Runs the WebDriver `command`, or panics naming `what` when WebDriver does not answer within
/// [`COMMAND`].
pub async fn answer<T>(what: &str, command: impl std::future::Future<Output = T>) -> T {
    {
        let mut last = LAST_COMMAND.lock().unwrap_or_else(|e| e.into_inner());
        let me = thread_name();
        last.retain(|(thread, _)| *thread != me);
        last.push((me, what.to_owned()));
    }
    tokio::time::timeout(COMMAND, command)
        .await
        .unwrap_or_else(|_| panic!("WebDriver did not answer {what} within {COMMAND:?}"))
}

/// Ends the whole test binary, with its processes, when the window it guards is still open
/// after its time: a test blocked outside WebDriver's commands (a process that never exits,
/// a lock) fails the run with a report instead of running into CI's limit.
struct Watchdog {
    done: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Watchdog {
    fn arm(limit: Duration) -> Watchdog {
        let done = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let test = thread_name();
        let watched = done.clone();
        std::thread::spawn(move || {
            let (lock, signal) = &*watched;
            let finished = signal
                .wait_timeout_while(lock.lock().unwrap(), limit, |done| !*done)
                .unwrap()
                .0;
            if *finished {
                return;
            }
            let last = LAST_COMMAND
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(thread, _)| *thread == test)
                .map_or("none".to_owned(), |(_, what)| what.clone());
            // Straight to stderr: the harness captures what eprintln! prints for a test, and
            // would never show it, as the binary ends here.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "{test}: its window is still open after {} min, so the test is taken as hung \
                 and the test binary ends; the last WebDriver command it sent: {last}",
                limit.as_secs() / 60
            );
            kill_descendants();
            std::process::exit(101);
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, signal) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        signal.notify_all();
    }
}

/// SIGKILLs every process this one started, and theirs (Xvfb, tauri-driver, WebKitWebDriver,
/// the app): a test binary that ends must not leave them holding CI's output open.
fn kill_descendants() {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The command may hold spaces and parentheses: the fields follow the last ')'.
            let ppid = stat[stat.rfind(')')? + 2..]
                .split(' ')
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut family = vec![std::process::id() as i32];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    if family.len() > 1 {
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(family[1..].iter().map(i32::to_string))
            .status();
    }
}

/// A free local port never handed out before in this run: once a probe is closed the kernel
/// may give its port to the next probe, and tauri-driver and WebKitWebDriver must not share one.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free local port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Ends the WebDriver session, which closes the app.
pub async fn close(client: Client) {
    answer("Delete Session (close the app)", client.close())
        .await
        .expect("close the WebDriver session");
}

/// `target/screenshots/` in the workspace, where people look for them.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir.join(name)
}

pub async fn text_of(client: &Client, css: &str) -> String {
    let element = element(client, css).await;
    answer(&format!("Get Element Text of {css}"), element.text())
        .await
        .expect("element text")
}

/// `app` in a fresh data folder with `env`, in a window on its own Xvfb, driven through
/// WebDriver.
pub async fn open_app(
    app: &Path,
    env: &[(&str, String)],
) -> (tempfile::TempDir, Xvfb, Driver, Client) {
    open_app_in(app, tempfile::tempdir().unwrap(), env).await
}

/// `open_app` on a data folder made beforehand (`seeded`).
pub async fn open_app_in(
    app: &Path,
    data: tempfile::TempDir,
    env: &[(&str, String)],
) -> (tempfile::TempDir, Xvfb, Driver, Client) {
    let xvfb = Xvfb::start();
    let driver = Driver::start(&xvfb.display, data.path(), env);
    let client = driver.session(app).await;
    (data, xvfb, driver, client)
}

/// Waits until the element's text contains `expect`.
pub async fn wait_for_text(client: &Client, css: &str, expect: &str) -> String {
    wait_for_text_within(client, css, expect, Duration::from_secs(30)).await
}

pub async fn wait_for_text_within(
    client: &Client,
    css: &str,
    expect: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(element) = answer(
            &format!("Find Element {css}"),
            client.find(Locator::Css(css)),
        )
        .await
            && let Ok(text) = answer(&format!("Get Element Text of {css}"), element.text()).await
            && text.contains(expect)
        {
            return text;
        }
        if Instant::now() >= deadline {
            screenshot(client, "failed.png").await;
            panic!("{css} never said {expect:?} (see target/screenshots/failed.png)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    let field = element(client, css).await;
    answer(&format!("Element Clear of {css}"), field.clear())
        .await
        .expect("clear the field");
    answer(
        &format!("Element Send Keys to {css}"),
        field.send_keys(text),
    )
    .await
    .expect("type into the field");
}

/// Clicks the element, waiting for it to appear first.
pub async fn click(client: &Client, css: &str) {
    let element = element(client, css).await;
    answer(&format!("Element Click on {css}"), element.click())
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

/// Chooses the option labelled `label` in the `<select>`.
pub async fn select(client: &Client, css: &str, label: &str) {
    let element = element(client, css).await;
    answer(
        &format!("choose {label:?} in {css}"),
        element.select_by_label(label),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot choose {label:?} in {css}: {e}"));
}

/// The element, once the page has it (within 30 s).
pub async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    let found = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css));
    answer(&format!("Find Element {css}"), found)
        .await
        .unwrap_or_else(|e| panic!("the UI never showed {css}: {e}"))
}

/// Saves what the window shows as `target/screenshots/<name>`.
///
/// WebKitWebDriver takes its screenshot after the window's next paint. A window drawn without
/// compositing (as on these GPU-less machines, see `src/rendering.rs`) paints only when
/// something changes, so on a still page the screenshot would never come: the page toggles
/// an invisible outline each frame until it is taken.
pub async fn screenshot(client: &Client, name: &str) {
    let repaint = client.execute(
        "window.__repaint = true; let odd = false;
             const frame = () => {
                 if (!window.__repaint) { document.body.style.outline = ''; return; }
                 odd = !odd;
                 document.body.style.outline = (odd ? 1 : 0) + 'px solid transparent';
                 requestAnimationFrame(frame);
             };
             requestAnimationFrame(frame);",
        vec![],
    );
    answer("Execute Script (repaint the window)", repaint)
        .await
        .expect("repaint the window");
    let png = answer(&format!("Take Screenshot {name}"), client.screenshot())
        .await
        .expect("WebDriver screenshot");
    answer(
        "Execute Script (stop repainting)",
        client.execute("window.__repaint = false;", vec![]),
    )
    .await
    .expect("stop repainting");
    std::fs::write(screenshot_path(name), png).unwrap();
}

/// A data folder with an admin and `servers` servers (50 a host) on hosts that were never
/// set up, so every status says at once that the host cannot be asked.
pub fn seeded(servers: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = app_core::Store::open(&dir.path().join("left4me.db")).unwrap();
    let admin = store.create_first_admin("admin", "admin password").unwrap();
    if servers == 0 {
        return dir;
    }
    let blueprint = store
        .create_blueprint(
            &admin,
            left4me_protocol::model::BlueprintDraft::coop("Coop"),
        )
        .unwrap();
    let per_host = 50;
    let hosts: Vec<i64> = (0..servers.div_ceil(per_host))
        .map(|i| {
            store
                .add_host(
                    &admin,
                    left4me_protocol::model::NewHost {
                        name: format!("bench-{i}"),
                        address: "127.0.0.1".into(),
                        port: 9 + i as u16,
                        admin_user: "admin".into(),
                        bind_address: None,
                    },
                )
                .unwrap()
                .id
        })
        .collect();
    for n in 0..servers {
        store
            .create_server(
                &admin,
                left4me_protocol::model::NewServer {
                    name: format!("coop-{n}"),
                    host_id: hosts[n / per_host],
                    blueprint_id: blueprint.id,
                    port: 27015 + (n % per_host) as u16,
                },
            )
            .unwrap();
    }
    dir
}

/// A data folder with an admin, a Workshop overlay `maps` that a refresh left waiting for a
/// restart on the host `bench-0` (never set up), and three servers there: `coop-0` and
/// `coop-1` on a blueprint that uses it, `coop-2` on one that does not.
pub fn seeded_waiting_for_restart() -> tempfile::TempDir {
    use left4me_protocol::model::{BlueprintDraft, NewOverlay, NewServer, OverlaySource};
    let dir = seeded(0);
    let path = dir.path().join("left4me.db");
    let store = app_core::Store::open(&path).unwrap();
    let admin = store.login("admin", "admin password").unwrap();
    let host = store
        .add_host(
            &admin,
            left4me_protocol::model::NewHost {
                name: "bench-0".into(),
                address: "127.0.0.1".into(),
                port: 9,
                admin_user: "admin".into(),
                bind_address: None,
            },
        )
        .unwrap();
    let overlay = store
        .create_overlay(
            &admin,
            NewOverlay {
                name: "maps".into(),
                global: false,
                source: OverlaySource::Workshop {
                    items: vec![123],
                    collections: Vec::new(),
                },
                description: String::new(),
            },
        )
        .unwrap();
    let with_maps = store
        .create_blueprint(
            &admin,
            BlueprintDraft {
                overlays: vec!["maps".into()],
                ..BlueprintDraft::coop("With maps")
            },
        )
        .unwrap();
    let plain = store
        .create_blueprint(&admin, BlueprintDraft::coop("Plain"))
        .unwrap();
    for (n, blueprint) in [with_maps.id, with_maps.id, plain.id]
        .into_iter()
        .enumerate()
    {
        store
            .create_server(
                &admin,
                NewServer {
                    name: format!("coop-{n}"),
                    host_id: host.id,
                    blueprint_id: blueprint,
                    port: 27015 + n as u16,
                },
            )
            .unwrap();
    }
    drop(store);
    // What a refresh records when the host staged the new version beside running servers
    // (app-core keeps `record_fill` to itself: only a fill on a host calls it).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            r#"INSERT INTO overlay_hosts (overlay_id, host_id, filled_ms, pending, behind)
               VALUES (?1, ?2, 0, 1, '["coop-0", "coop-1"]')"#,
            [overlay.id, host.id],
        )
        .unwrap();
    dir
}

/// Asks the top-level window titled `title` on `display` to close, as a window manager
/// does when its close button is clicked: a `WM_DELETE_WINDOW` message. Panics when no such
/// window is there.
pub fn ask_window_to_close(display: &str, title: &str) {
    use std::ffi::{CStr, CString};
    use x11_dl::xlib;
    let x = xlib::Xlib::open().expect("libX11");
    let name = CString::new(display).unwrap();
    // SAFETY: plain Xlib calls on a display this function opens and closes; every pointer
    // Xlib returns is used while the display is open and freed with XFree.
    unsafe {
        let dpy = (x.XOpenDisplay)(name.as_ptr());
        assert!(!dpy.is_null(), "cannot open display {display}");
        let root = (x.XDefaultRootWindow)(dpy);
        let mut pending = vec![root];
        let mut found = None;
        while let Some(window) = pending.pop() {
            let mut window_name = std::ptr::null_mut();
            if (x.XFetchName)(dpy, window, &mut window_name) != 0 && !window_name.is_null() {
                let matches = CStr::from_ptr(window_name).to_bytes() == title.as_bytes();
                (x.XFree)(window_name.cast());
                if matches {
                    found = Some(window);
                    break;
                }
            }
            let (mut root_return, mut parent, mut children, mut count) =
                (0, 0, std::ptr::null_mut(), 0);
            if (x.XQueryTree)(
                dpy,
                window,
                &mut root_return,
                &mut parent,
                &mut children,
                &mut count,
            ) != 0
                && !children.is_null()
            {
                pending.extend_from_slice(std::slice::from_raw_parts(children, count as usize));
                (x.XFree)(children.cast());
            }
        }
        let window = found.unwrap_or_else(|| panic!("no window titled {title:?} on {display}"));
        let atom = |name: &str| {
            let name = CString::new(name).unwrap();
            (x.XInternAtom)(dpy, name.as_ptr(), xlib::False)
        };
        let mut data = xlib::ClientMessageData::new();
        data.set_long(0, atom("WM_DELETE_WINDOW") as std::os::raw::c_long);
        data.set_long(1, xlib::CurrentTime as std::os::raw::c_long);
        let mut event = xlib::XEvent {
            client_message: xlib::XClientMessageEvent {
                type_: xlib::ClientMessage,
                serial: 0,
                send_event: xlib::True,
                display: dpy,
                window,
                message_type: atom("WM_PROTOCOLS"),
                format: 32,
                data,
            },
        };
        (x.XSendEvent)(dpy, window, xlib::False, xlib::NoEventMask, &mut event);
        (x.XFlush)(dpy);
        (x.XCloseDisplay)(dpy);
    }
}
