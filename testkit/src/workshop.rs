//! A local stand-in for the Steam Web API's Workshop calls and Steam's UGC download host:
//! `GetPublishedFileDetails` and `GetCollectionDetails` as form POSTs answered with
//! real-shaped JSON (ids and sizes as strings, `result` 9 entries with nothing else, an
//! empty `file_url` for items that cannot be downloaded directly), and the files at
//! `/ugc/<id>/<hash>/`. Knobs make downloads fail transiently or arrive short.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct FakeItem {
    pub title: String,
    /// As the Workshop has it: a path such as `myl4d2addons/name.vpk`.
    pub filename: String,
    pub content: Vec<u8>,
    pub time_updated: u64,
    /// 1 for a normal item; 9 for removed, private or unknown.
    pub result: i64,
    /// The game it is for (550 for Left 4 Dead 2).
    pub app: u64,
    /// No direct download: `file_url` is empty.
    pub no_url: bool,
}

impl FakeItem {
    /// A normal L4D2 add-on of `size` bytes.
    pub fn vpk(title: &str, filename: &str, size: usize, time_updated: u64) -> Self {
        Self {
            title: title.to_owned(),
            filename: filename.to_owned(),
            content: (0..size).map(|i| (i % 251) as u8).collect(),
            time_updated,
            result: 1,
            app: 550,
            no_url: false,
        }
    }
}

#[derive(Default)]
struct World {
    items: BTreeMap<u64, FakeItem>,
    collections: BTreeMap<u64, Vec<(u64, u8)>>,
    downloads: BTreeMap<u64, usize>,
    fail_next: BTreeMap<u64, u32>,
    short: BTreeMap<u64, bool>,
    api_calls: usize,
}

pub struct FakeWorkshop {
    /// The API's base, as `--api-url` takes it.
    pub url: String,
    world: Arc<Mutex<World>>,
}

impl FakeWorkshop {
    /// Serves on `ip` (loopback, or this machine's address on the test hosts' bridge).
    pub fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind the fake Workshop");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(World::default()));
        let shared = world.clone();
        let base = url.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let world = shared.clone();
                let base = base.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &world, &base);
                });
            }
        });
        Self { url, world }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn item(&self, id: u64, item: FakeItem) {
        self.world().items.insert(id, item);
    }

    /// A collection of items (and, with filetype 2, of other collections).
    pub fn collection(&self, id: u64, children: &[(u64, u8)]) {
        self.world().collections.insert(id, children.to_vec());
    }

    /// The next `times` downloads of the item answer HTTP 503.
    pub fn fail_downloads(&self, id: u64, times: u32) {
        self.world().fail_next.insert(id, times);
    }

    /// Downloads of the item stop at half its size.
    pub fn cut_short(&self, id: u64, short: bool) {
        self.world().short.insert(id, short);
    }

    /// Complete or not, how often the item's file was requested.
    pub fn downloads(&self, id: u64) -> usize {
        self.world().downloads.get(&id).copied().unwrap_or(0)
    }

    pub fn api_calls(&self) -> usize {
        self.world().api_calls
    }
}

fn serve(stream: TcpStream, world: &Mutex<World>, base: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let form = parse_form(&String::from_utf8_lossy(&body));
    let mut world = world.lock().unwrap_or_else(|p| p.into_inner());
    let (status, content_type, payload) = match (method, path) {
        ("POST", "/ISteamRemoteStorage/GetPublishedFileDetails/v1/") => {
            world.api_calls += 1;
            (
                200,
                "application/json",
                details(&world, &form, base).into_bytes(),
            )
        }
        ("POST", "/ISteamRemoteStorage/GetCollectionDetails/v1/") => {
            world.api_calls += 1;
            (
                200,
                "application/json",
                collections(&world, &form).into_bytes(),
            )
        }
        ("GET", p) if p.starts_with("/ugc/") => {
            let id: u64 = p
                .split('/')
                .nth(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            *world.downloads.entry(id).or_default() += 1;
            let fail = world.fail_next.get(&id).copied().unwrap_or(0);
            if fail > 0 {
                world.fail_next.insert(id, fail - 1);
                (
                    503,
                    "text/html",
                    b"<html>Service Unavailable</html>".to_vec(),
                )
            } else if let Some(item) = world.items.get(&id) {
                (200, "application/octet-stream", item.content.clone())
            } else {
                (404, "text/html", b"<html>Not Found</html>".to_vec())
            }
        }
        _ => (404, "text/html", b"<html>Not Found</html>".to_vec()),
    };
    // A short body: the length promises less than the whole file, as a cut transfer ends.
    let id: u64 = path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let payload =
        if status == 200 && path.starts_with("/ugc/") && world.short.get(&id) == Some(&true) {
            payload[..payload.len() / 2].to_vec()
        } else {
            payload
        };
    drop(world);
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut stream = &stream;
    stream.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    )?;
    stream.write_all(&payload)
}

/// `application/x-www-form-urlencoded`, keys and values decoded.
fn parse_form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ids(form: &BTreeMap<String, String>, count_key: &str) -> Vec<u64> {
    let count: usize = form
        .get(count_key)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (0..count)
        .filter_map(|i| form.get(&format!("publishedfileids[{i}]")))
        .filter_map(|id| id.parse().ok())
        .collect()
}

fn details(world: &World, form: &BTreeMap<String, String>, base: &str) -> String {
    let entries: Vec<serde_json::Value> = ids(form, "itemcount")
        .into_iter()
        .map(|id| match world.items.get(&id) {
            Some(item) if item.result == 1 => serde_json::json!({
                "publishedfileid": id.to_string(),
                "result": 1,
                "creator": "76561197960287930",
                "creator_app_id": item.app,
                "consumer_app_id": item.app,
                "filename": item.filename,
                "file_size": item.content.len().to_string(),
                "file_url": if item.no_url { String::new() } else { format!("{base}/ugc/{id}/{:016X}/", item.time_updated) },
                "hcontent_file": format!("{}", id * 31 + item.time_updated),
                "preview_url": format!("{base}/ugc/preview/{id}/"),
                "hcontent_preview": "0",
                "title": item.title,
                "description": "",
                "time_created": 1_600_000_000u64,
                "time_updated": item.time_updated,
                "visibility": 0,
                "banned": 0,
                "ban_reason": "",
                "subscriptions": 1234,
                "favorited": 56,
                "lifetime_subscriptions": 2345,
                "lifetime_favorited": 67,
                "views": 8901,
                "tags": [{ "tag": "Campaigns" }]
            }),
            Some(item) => serde_json::json!({ "publishedfileid": id.to_string(), "result": item.result }),
            None => serde_json::json!({ "publishedfileid": id.to_string(), "result": 9 }),
        })
        .collect();
    serde_json::json!({ "response": { "result": 1, "resultcount": entries.len(), "publishedfiledetails": entries } })
        .to_string()
}

fn collections(world: &World, form: &BTreeMap<String, String>) -> String {
    let entries: Vec<serde_json::Value> = ids(form, "collectioncount")
        .into_iter()
        .map(|id| match world.collections.get(&id) {
            Some(children) => serde_json::json!({
                "publishedfileid": id.to_string(),
                "result": 1,
                "children": children.iter().enumerate().map(|(i, (child, filetype))| serde_json::json!({
                    "publishedfileid": child.to_string(),
                    "sortorder": i + 1,
                    "filetype": filetype,
                })).collect::<Vec<_>>(),
            }),
            None => serde_json::json!({ "publishedfileid": id.to_string(), "result": 9 }),
        })
        .collect();
    serde_json::json!({ "response": { "result": 1, "resultcount": entries.len(), "collectiondetails": entries } })
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_bracketed_keys() {
        let form =
            parse_form("itemcount=2&publishedfileids%5B0%5D=12&publishedfileids[1]=34&x=a+b%21");
        assert_eq!(ids(&form, "itemcount"), [12, 34]);
        assert_eq!(form["x"], "a b!");
    }
}
