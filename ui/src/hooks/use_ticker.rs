//! A count that goes up every so often while something is under way (a rollout the host
//! runs, which sends no events): a query given it as its revision asks again each time.

use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use yew::prelude::*;

/// Counts up every `every_ms` while `active`; stays put otherwise.
#[hook]
pub fn use_ticker(active: bool, every_ms: i32) -> u64 {
    let ticks = use_state(|| 0u64);
    {
        let ticks = ticks.clone();
        use_effect_with((active, *ticks), move |(active, now)| {
            let cancelled = Rc::new(Cell::new(false));
            if *active {
                let (cancelled, next) = (Rc::clone(&cancelled), now + 1);
                spawn_local(async move {
                    sleep(every_ms).await;
                    if !cancelled.get() {
                        ticks.set(next);
                    }
                });
            }
            move || cancelled.set(true)
        });
    }
    *ticks
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}
