//! The live state of the user's servers as the status feed pushes it (`server-status`),
//! with each server's recent player counts for the dashboard's charts. A `Reducible`
//! shared by context, fed by one listener for the whole window.

use left4me_protocol::model::Server;
use left4me_protocol::{IpcError, LiveState, ServerLive};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use yew::prelude::*;

/// How many samples a server's player chart keeps (a feed every 2 s: two minutes).
pub const HISTORY: usize = 60;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Live {
    pub statuses: HashMap<i64, ServerLive>,
    /// Player counts, oldest first; `None` where the server did not answer (stopped, or its
    /// host unreachable): a gap in the chart, not a zero.
    pub history: HashMap<i64, VecDeque<Option<u8>>>,
    /// Why the last update failed, until one succeeds.
    pub error: Option<IpcError>,
    /// Whether any update arrived yet.
    pub loaded: bool,
}

pub enum LiveAction {
    Update(Result<Vec<ServerLive>, IpcError>),
}

impl Reducible for Live {
    type Action = LiveAction;

    fn reduce(self: Rc<Self>, action: LiveAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            LiveAction::Update(Err(error)) => next.error = Some(error),
            LiveAction::Update(Ok(list)) => {
                next.error = None;
                next.loaded = true;
                next.history
                    .retain(|id, _| list.iter().any(|s| s.server_id == *id));
                for live in &list {
                    let players = live
                        .status
                        .as_ref()
                        .and_then(|s| s.live.as_ref())
                        .map(|l| l.players);
                    let samples = next.history.entry(live.server_id).or_default();
                    if samples.len() == HISTORY {
                        samples.pop_front();
                    }
                    samples.push_back(players);
                }
                next.statuses = list.into_iter().map(|s| (s.server_id, s)).collect();
            }
        }
        Rc::new(next)
    }
}

pub type LiveContext = UseReducerHandle<Live>;

/// What a server's card shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub blueprint: String,
    pub port: u16,
    /// `running`, `stopped`, …: also the card's style class.
    pub state: &'static str,
    pub map: Option<String>,
    /// Players and the maximum, when it answers queries.
    pub players: Option<(u8, u8)>,
    /// Why the host did not answer, or how a crash loop stands.
    pub detail: Option<String>,
    pub pending_changes: bool,
}

impl Card {
    pub fn new(server: &Server, live: Option<&ServerLive>) -> Card {
        let state = match live.map(|l| l.state) {
            None => "unknown",
            Some(state) => state_word(state),
        };
        let info = live.and_then(|l| l.status.as_ref());
        let answer = info.and_then(|s| s.live.as_ref());
        let detail = match live {
            Some(ServerLive {
                state: LiveState::Unreachable,
                error,
                ..
            }) => error.clone(),
            Some(ServerLive {
                state: LiveState::CrashLooping,
                status: Some(status),
                ..
            }) if status.restarts == 0 => Some(format!(
                "crashed; systemd starts it again in a moment (last run ended: {})",
                status.result
            )),
            Some(ServerLive {
                state: LiveState::CrashLooping | LiveState::Failed,
                status: Some(status),
                ..
            }) => Some(format!(
                "restarted {} times; last run ended: {}",
                status.restarts, status.result
            )),
            _ => None,
        };
        Card {
            id: server.id,
            name: server.name.to_string(),
            host: server.host.clone(),
            blueprint: server.blueprint.clone(),
            port: server.port,
            state,
            map: answer
                .map(|a| a.map.clone())
                .or_else(|| info.map(|s| s.map.clone())),
            players: answer.map(|a| (a.players, a.max_players)),
            detail,
            // The app's word (its blueprint changed since the host last heard) or the
            // host's (the spec it runs is not the one declared now).
            pending_changes: server.pending_changes || info.is_some_and(|s| s.restart_applies),
        }
    }
}

pub fn state_word(state: LiveState) -> &'static str {
    match state {
        LiveState::Running => "running",
        LiveState::Starting => "starting",
        LiveState::Stopping => "stopping",
        LiveState::Stopped => "stopped",
        LiveState::CrashLooping => "crash-looping",
        LiveState::Failed => "failed",
        LiveState::NotCreated => "never started",
        LiveState::Unreachable => "host unreachable",
    }
}

/// The SVG polylines drawing `samples` in a `width`×`height` box, the newest at the right
/// edge, `max` at the top: the points of one line for each run of known counts (a sample
/// without a count breaks the line; a lone count is drawn one step wide, so it shows).
/// Empty when no count is known.
pub fn chart_lines(
    samples: &VecDeque<Option<u8>>,
    max: u8,
    width: f64,
    height: f64,
) -> Vec<String> {
    let max = f64::from(max.max(1));
    let step = width / (HISTORY - 1) as f64;
    let start = width - step * (samples.len().saturating_sub(1)) as f64;
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut run = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        match sample {
            Some(n) => {
                let x = start + step * i as f64;
                run.push((x, height - height * (f64::from(*n).min(max) / max)));
            }
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs.into_iter()
        .map(|mut run| {
            if let [(x, y)] = run[..] {
                run.insert(0, (x - step, y));
            }
            run.iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use left4me_protocol::agent::{LiveInfo, ServerStatus};
    use left4me_protocol::names::ServerName;

    fn status(players: u8) -> ServerStatus {
        ServerStatus {
            name: "coop-1".into(),
            port: 27015,
            map: "c1m1_hotel".into(),
            overlays: vec![],
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            main_pid: Some(7),
            since: None,
            restarts: 0,
            mounted: true,
            installed_build: None,
            live: Some(LiveInfo {
                name: "coop".into(),
                map: "c1m2_streets".into(),
                players,
                max_players: 8,
                version: None,
                player_list: Vec::new(),
            }),
            restart_applies: false,
            usage: None,
        }
    }

    fn running(id: i64, players: u8) -> ServerLive {
        ServerLive {
            server_id: id,
            host_id: 1,
            state: LiveState::Running,
            status: Some(status(players)),
            error: None,
        }
    }

    fn server(id: i64) -> Server {
        Server {
            id,
            name: ServerName::new("coop-1").unwrap(),
            host_id: 1,
            host: "box".into(),
            blueprint_id: 2,
            blueprint: "Coop".into(),
            port: 27015,
            client_port: Some(27005),
            tv_port: Some(27020),
            cores: vec![],
            pending_changes: false,
        }
    }

    #[test]
    fn updates_keep_a_bounded_player_history_per_server() {
        let mut live = Rc::new(Live::default());
        for n in 0..(HISTORY as u8 + 5) {
            live = live.reduce(LiveAction::Update(Ok(vec![
                running(1, n % 9),
                running(2, 1),
            ])));
        }
        assert_eq!(live.history[&1].len(), HISTORY);
        assert_eq!(
            live.history[&1].back(),
            Some(&Some((HISTORY as u8 + 4) % 9))
        );
        // A failed update keeps what was known and says why.
        live = live.reduce(LiveAction::Update(Err(IpcError::new(
            left4me_protocol::ErrorCode::Remote,
            "gone",
        ))));
        assert_eq!(live.statuses.len(), 2);
        assert_eq!(live.error.as_ref().unwrap().message, "gone");
        // A server no longer listed loses its history.
        live = live.reduce(LiveAction::Update(Ok(vec![running(1, 3)])));
        assert!(!live.history.contains_key(&2));
        assert_eq!(live.error, None);
        // A server that does not answer adds a gap, not a zero.
        let stopped = ServerLive {
            state: LiveState::Stopped,
            status: None,
            ..running(1, 0)
        };
        live = live.reduce(LiveAction::Update(Ok(vec![stopped])));
        assert_eq!(live.history[&1].back(), Some(&None));
    }

    #[test]
    fn cards_read_the_live_answer_first() {
        let card = Card::new(&server(1), Some(&running(1, 5)));
        assert_eq!(card.state, "running");
        assert_eq!(card.map.as_deref(), Some("c1m2_streets"));
        assert_eq!(card.players, Some((5, 8)));
        assert!(!card.pending_changes);
        // The host says a restart applies what was declared since it started.
        let mut waiting = running(1, 5);
        if let Some(status) = waiting.status.as_mut() {
            status.restart_applies = true;
        }
        assert!(Card::new(&server(1), Some(&waiting)).pending_changes);

        let unreachable = ServerLive {
            server_id: 1,
            host_id: 1,
            state: LiveState::Unreachable,
            status: None,
            error: Some("cannot reach box: connection refused".into()),
        };
        let card = Card::new(&server(1), Some(&unreachable));
        assert_eq!(card.state, "host unreachable");
        assert_eq!(
            card.detail.as_deref(),
            Some("cannot reach box: connection refused")
        );
        assert_eq!((card.map, card.players), (None, None));

        let mut looping = status(0);
        looping.live = None;
        looping.restarts = 4;
        looping.result = "exit-code".into();
        let crash = ServerLive {
            state: LiveState::CrashLooping,
            status: Some(looping),
            ..running(1, 0)
        };
        let card = Card::new(&server(1), Some(&crash));
        assert_eq!(card.state, "crash-looping");
        assert_eq!(card.map.as_deref(), Some("c1m1_hotel"), "the spec's map");
        assert_eq!(
            card.detail.as_deref(),
            Some("restarted 4 times; last run ended: exit-code")
        );
        let mut first = crash.clone();
        if let Some(status) = first.status.as_mut() {
            status.restarts = 0;
        }
        assert_eq!(
            Card::new(&server(1), Some(&first)).detail.as_deref(),
            Some("crashed; systemd starts it again in a moment (last run ended: exit-code)")
        );
        assert_eq!(Card::new(&server(1), None).state, "unknown");
    }

    #[test]
    fn chart_puts_the_newest_sample_at_the_right_edge() {
        let samples: VecDeque<Option<u8>> = [Some(0), Some(4), Some(8)].into_iter().collect();
        let step = 120.0 / (HISTORY - 1) as f64;
        assert_eq!(
            chart_lines(&samples, 8, 120.0, 30.0),
            [format!(
                "{:.1},30.0 {:.1},15.0 120.0,0.0",
                120.0 - 2.0 * step,
                120.0 - step
            )]
        );
        assert!(chart_lines(&VecDeque::new(), 8, 120.0, 30.0).is_empty());
        // More players than the maximum (a reserved slot) stays inside the box.
        let over: VecDeque<Option<u8>> = [Some(9)].into_iter().collect();
        assert_eq!(
            chart_lines(&over, 8, 120.0, 30.0),
            [format!("{:.1},0.0 120.0,0.0", 120.0 - step)]
        );
    }

    #[test]
    fn chart_breaks_where_the_server_did_not_answer() {
        let samples: VecDeque<Option<u8>> = [None, Some(8), None, None, Some(0), Some(8)]
            .into_iter()
            .collect();
        let step = 120.0 / (HISTORY - 1) as f64;
        assert_eq!(
            chart_lines(&samples, 8, 120.0, 30.0),
            [
                format!(
                    "{:.1},0.0 {:.1},0.0",
                    120.0 - 5.0 * step,
                    120.0 - 4.0 * step
                ),
                format!("{:.1},30.0 120.0,0.0", 120.0 - step),
            ]
        );
        let unknown: VecDeque<Option<u8>> = [None, None].into_iter().collect();
        assert!(chart_lines(&unknown, 8, 120.0, 30.0).is_empty());
    }
}
