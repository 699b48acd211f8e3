//! Listens to a backend event while the component is mounted.

use crate::ipc;
use left4me_protocol::Event;
use serde::de::DeserializeOwned;
use std::rc::Rc;
use yew::prelude::*;

/// Calls `on` with each payload of `event` while the component is mounted; the newest `on`
/// given is the one called.
#[hook]
pub fn use_event<T>(event: Event<T>, on: Callback<T>)
where
    T: DeserializeOwned + 'static,
{
    let latest = use_mut_ref(|| on.clone());
    *latest.borrow_mut() = on;
    use_effect_with(event, move |event| {
        let latest = Rc::clone(&latest);
        let listener = ipc::listen(*event, move |value| latest.borrow().emit(value));
        move || drop(listener)
    });
}
