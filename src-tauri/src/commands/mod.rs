//! Tauri commands, one module per area. Each takes state, calls app-core and returns a DTO
//! from `left4me_protocol` or an `IpcError`. Commands that queue jobs or talk to hosts are
//! async: they run on the tokio runtime that app-core's engine uses.

pub mod app;
pub mod auth;
pub mod content;
pub mod hosts;
pub mod jobs;
pub mod servers;
