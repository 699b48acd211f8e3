//! Runs a backend command when a component mounts (and again when its arguments or a
//! revision change) and tracks its answer.

use crate::ipc;
use left4me_protocol::{Command, IpcError};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// A value that is being fetched from the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Loadable<T> {
    Loading,
    Ready(T),
    Failed(IpcError),
}

impl<T> Loadable<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Loadable::Ready(value) => Some(value),
            _ => None,
        }
    }
}

/// Calls `command` on mount and again whenever it or `revision` change (pass the jobs'
/// revision to reload when a job ends). While it reloads, the last answer stays.
#[hook]
pub fn use_query<C>(command: C, revision: u64) -> Loadable<C::Answer>
where
    C: Command + Clone + PartialEq + 'static,
    C::Answer: Clone + PartialEq + 'static,
{
    let state = use_state(|| Loadable::Loading);
    {
        let state = state.clone();
        use_effect_with((command, revision), move |(command, _)| {
            let command = command.clone();
            spawn_local(async move {
                state.set(match ipc::call(&command).await {
                    Ok(value) => Loadable::Ready(value),
                    Err(err) => Loadable::Failed(err),
                });
            });
        });
    }
    (*state).clone()
}
