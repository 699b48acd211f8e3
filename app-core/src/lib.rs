//! The left4me app's logic, with no window and no tauri dependency, so every part of it can
//! be tested headless. `src-tauri` exposes it to the UI through thin commands.

pub mod paths;
pub mod remote;
pub mod store;

pub use store::{Store, StoreError};
