//! Hooks that reach the backend: queries, user actions and events.

mod use_action;
mod use_event;
mod use_query;
mod use_revision;

pub use use_action::use_action;
pub use use_event::use_event;
pub use use_query::{Loadable, use_query};
pub use use_revision::use_revision;
