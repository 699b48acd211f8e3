//! When a page's lists should load again: whenever a job is queued, starts or ends, and when
//! the page itself changed something (`reload`).

use crate::activity::ActivityContext;
use yew::prelude::*;

/// A number that grows on each of those events (pass it to `use_query`), and the callback
/// that makes it grow.
#[hook]
pub fn use_revision() -> (u64, Callback<()>) {
    let activity = use_context::<ActivityContext>().expect("activity context");
    let reloads = use_state(|| 0u64);
    let reload = {
        let reloads = reloads.clone();
        Callback::from(move |()| reloads.set(*reloads + 1))
    };
    (activity.revision + *reloads, reload)
}
