//! The dashboard: every server of the user across all hosts as a card, kept current by the
//! status feed, with a small chart of its recent player counts.

use crate::activity::ActivityContext;
use crate::app::{Navigator, Screen};
use crate::components::ErrorNotice;
use crate::hooks::{Loadable, use_query};
use crate::live::{Card, HISTORY, LiveContext, chart_lines};
use crate::pages::host_events::AwayPanel;
use left4me_protocol::command;
use std::collections::VecDeque;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub navigate: Navigator,
}

#[function_component(Dashboard)]
pub fn dashboard(props: &Props) -> Html {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let live = use_context::<LiveContext>().expect("live context");
    let servers = use_query(command::Servers {}, activity.revision);
    // Cards are rendered a page at a time: the next page when the end of the list scrolls
    // into view, so a fleet of hundreds shows its first screen at once.
    let shown = use_state(|| PAGE);
    let end = use_node_ref();
    let total = servers.ready().map_or(0, Vec::len);
    {
        let (shown, end) = (shown.clone(), end.clone());
        use_effect_with((*shown, total), move |&(count, total)| {
            let watch = (count < total).then(|| watch_end(&end, move || shown.set(count + PAGE)));
            move || drop(watch)
        });
    }
    let body = match &servers {
        Loadable::Loading => html! { <p class="muted" aria-busy="true">{ "Loading…" }</p> },
        Loadable::Failed(error) => html! { <ErrorNotice error={error.clone()} /> },
        Loadable::Ready(list) if list.is_empty() => html! {
            <p class="muted" id="no-servers">{ "No servers yet. Create one on the Servers screen from a blueprint." }</p>
        },
        Loadable::Ready(list) => {
            let running = list
                .iter()
                .filter(|s| {
                    live.statuses
                        .get(&s.id)
                        .is_some_and(|l| l.state == left4me_protocol::LiveState::Running)
                })
                .count();
            let players: u32 = list
                .iter()
                .filter_map(|s| live.statuses.get(&s.id)?.status.as_ref()?.live.as_ref())
                .map(|l| u32::from(l.players))
                .sum();
            html! {
                <>
                    <p class="muted" id="dashboard-summary">
                        { format!("{} servers, {running} running, {players} players", list.len()) }
                        if !live.loaded { { " · asking the hosts…" } }
                    </p>
                    <div class="cards" id="server-cards">
                        { for list.iter().take(*shown).map(|server| {
                            let card = Card::new(server, live.statuses.get(&server.id));
                            let history = live.history.get(&server.id).cloned().unwrap_or_default();
                            html! { <ServerCard key={server.id} {card} {history} navigate={props.navigate.clone()} /> }
                        }) }
                    </div>
                    if *shown < list.len() {
                        <div ref={end.clone()} class="cards-end">
                            <button class="plain" onclick={{ let shown = shown.clone(); Callback::from(move |_| shown.set(*shown + PAGE)) }}>
                                { format!("Show more ({} of {} shown)", (*shown).min(list.len()), list.len()) }
                            </button>
                        </div>
                    }
                </>
            }
        }
    };
    html! {
        <section aria-labelledby="dashboard-title">
            <h1 id="dashboard-title" class="page-title">{ "Dashboard" }</h1>
            if let Some(error) = live.error.clone() {
                <ErrorNotice {error} />
            }
            <AwayPanel />
            { body }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct CardProps {
    card: Card,
    history: VecDeque<Option<u8>>,
    navigate: Navigator,
}

#[function_component(ServerCard)]
fn server_card(props: &CardProps) -> Html {
    let card = &props.card;
    let open = {
        let (navigate, id) = (props.navigate.clone(), card.id);
        Callback::from(move |_| navigate.emit(Screen::Server(id)))
    };
    let max = card.players.map_or(8, |(_, max)| max);
    let lines = chart_lines(&props.history, max, 120.0, 28.0);
    html! {
        <article class={classes!("server-card", card.state.replace(' ', "-"))} id={format!("card-{}", card.name)}
            aria-label={format!("Server {}", card.name)}>
            <header>
                <button class="link card-name" onclick={open} aria-label={format!("Open {}", card.name)}>{ &card.name }</button>
                <span class="state">{ card.state }</span>
            </header>
            <dl class="card-facts">
                <dt>{ "Map" }</dt><dd class="map">{ card.map.clone().unwrap_or_else(|| "–".into()) }</dd>
                <dt>{ "Players" }</dt>
                <dd class="players">{ card.players.map_or_else(|| "–".into(), |(n, max)| format!("{n}/{max}")) }</dd>
                <dt>{ "Host" }</dt><dd>{ format!("{}:{}", card.host, card.port) }</dd>
                <dt>{ "Blueprint" }</dt><dd>{ &card.blueprint }
                    if card.pending_changes { <span class="pending" title="the blueprint changed; a restart applies it">{ " · changed" }</span> }
                </dd>
            </dl>
            if let Some(detail) = &card.detail {
                <p class="detail">{ detail }</p>
            }
            if lines.is_empty() {
                <p class="chart empty">{ "No player counts yet" }</p>
            } else {
                <svg class="chart" viewBox="0 0 120 28" preserveAspectRatio="none" role="img"
                    aria-label={format!("players over the last {} samples", props.history.len().min(HISTORY))}>
                    { for lines.into_iter().map(|points| html! { <polyline {points} /> }) }
                </svg>
            }
        </article>
    }
}

/// Cards rendered at once, and added each time the end of the list comes into view.
const PAGE: usize = 60;

/// Calls `on_visible` once the element comes into view; stops watching when dropped.
struct EndWatch {
    observer: web_sys::IntersectionObserver,
    _callback: Closure<dyn FnMut(js_sys::Array)>,
}

fn watch_end(end: &NodeRef, on_visible: impl Fn() + 'static) -> Option<EndWatch> {
    let element = end.cast::<web_sys::Element>()?;
    let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
        let visible = entries.iter().any(|entry| {
            entry
                .dyn_into::<web_sys::IntersectionObserverEntry>()
                .is_ok_and(|e| e.is_intersecting())
        });
        if visible {
            on_visible();
        }
    });
    let observer = web_sys::IntersectionObserver::new(callback.as_ref().unchecked_ref()).ok()?;
    observer.observe(&element);
    Some(EndWatch {
        observer,
        _callback: callback,
    })
}

impl Drop for EndWatch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}
