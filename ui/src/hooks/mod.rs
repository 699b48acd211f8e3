//! Hooks that load data from the backend.

mod use_command;

pub use use_command::{Loadable, use_command};
