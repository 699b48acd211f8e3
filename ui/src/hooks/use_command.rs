//! Runs a backend command when a component mounts (and again when its arguments or a
//! revision change) and tracks its answer.

use crate::ipc::{self, NoArgs};
use left4me_protocol::IpcError;
use serde::de::DeserializeOwned;
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

/// Calls the argument-less command `cmd` on mount.
#[hook]
pub fn use_command<T>(cmd: &'static str) -> Loadable<T>
where
    T: DeserializeOwned + Clone + PartialEq + 'static,
{
    let state = use_state(|| Loadable::Loading);
    {
        let state = state.clone();
        use_effect_with(cmd, move |cmd| {
            let cmd = *cmd;
            spawn_local(async move {
                state.set(match ipc::invoke::<_, T>(cmd, &NoArgs {}).await {
                    Ok(value) => Loadable::Ready(value),
                    Err(err) => Loadable::Failed(err),
                });
            });
        });
    }
    (*state).clone()
}

/// Calls `cmd` with `args` on mount and again whenever `args` or `revision` change (pass
/// the jobs' revision to reload when a job ends). While it reloads, the last answer stays.
#[hook]
pub fn use_query<T>(cmd: &'static str, args: serde_json::Value, revision: u64) -> Loadable<T>
where
    T: DeserializeOwned + Clone + PartialEq + 'static,
{
    let state = use_state(|| Loadable::Loading);
    {
        let state = state.clone();
        use_effect_with((args, revision), move |(args, _)| {
            let args = args.clone();
            spawn_local(async move {
                state.set(match ipc::invoke::<_, T>(cmd, &args).await {
                    Ok(value) => Loadable::Ready(value),
                    Err(err) => Loadable::Failed(err),
                });
            });
        });
    }
    (*state).clone()
}
