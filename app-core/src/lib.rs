//! The left4me app's logic, with no window and no tauri dependency, so every part of it can
//! be tested headless. `src-tauri` exposes it to the UI through thin commands.

pub mod accounts;
pub mod agent;
pub mod app;
pub mod applog;
pub mod blueprints;
pub mod connections;
pub mod error;
pub mod host_events;
pub mod hosts;
pub mod instance;
pub mod jobs;
pub mod notices;
pub mod notify_targets;
pub mod overlays;
pub mod pack;
pub mod paths;
pub mod remote;
pub mod secrets;
pub mod servers;
pub mod ssh;
pub mod store;
pub mod vault;

pub use accounts::{Session, User};
pub use error::{Error, Result};
pub use store::{Clock, Store, StoreError};
