//! Runs a backend command once when a component mounts and tracks its answer.

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
