//! Hooks that reach the backend (queries, user actions and events), and how a form's field
//! edits its state.

mod use_action;
mod use_event;
mod use_query;
mod use_revision;
mod use_ticker;

pub use use_action::use_action;
pub use use_event::use_event;
pub use use_query::{Loadable, use_query};
pub use use_revision::use_revision;
pub use use_ticker::use_ticker;

use yew::{Callback, UseStateHandle};

/// A field's `on_change` for a form kept in `form`: `apply` writes the typed text into a
/// copy of the form, which becomes the state.
pub fn field<F: Clone + 'static>(
    form: &UseStateHandle<F>,
    apply: fn(&mut F, String),
) -> Callback<String> {
    let form = form.clone();
    Callback::from(move |value: String| {
        let mut next = (*form).clone();
        apply(&mut next, value);
        form.set(next);
    })
}
