//! An action the user triggers (a button, a form): it runs one command at a time, says it is
//! running, and keeps its error to show where it was triggered.

use crate::ipc;
use left4me_protocol::{Command, IpcError};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

#[derive(Clone, PartialEq)]
pub struct ActionHandle {
    busy: UseStateHandle<bool>,
    error: UseStateHandle<Option<IpcError>>,
}

impl ActionHandle {
    pub fn busy(&self) -> bool {
        *self.busy
    }

    pub fn error(&self) -> Option<IpcError> {
        (*self.error).clone()
    }

    /// Shows an error that arose before anything was sent.
    pub fn fail(&self, error: IpcError) {
        self.error.set(Some(error));
    }

    /// Runs `command` unless this action is already running; `then` gets its answer.
    pub fn run<C: Command + 'static>(&self, command: C, then: impl FnOnce(C::Answer) + 'static) {
        if *self.busy {
            return;
        }
        let (busy, error) = (self.busy.clone(), self.error.clone());
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = ipc::call(&command).await;
            busy.set(false);
            match result {
                Ok(value) => then(value),
                Err(err) => error.set(Some(err)),
            }
        });
    }

    /// A click that runs `command` and lets its answer go (a job the activity shows).
    pub fn on_click<C: Command + Clone + 'static>(&self, command: C) -> Callback<MouseEvent> {
        let action = self.clone();
        Callback::from(move |_: MouseEvent| action.run(command.clone(), drop))
    }
}

#[hook]
pub fn use_action() -> ActionHandle {
    ActionHandle {
        busy: use_state(|| false),
        error: use_state(|| None),
    }
}
