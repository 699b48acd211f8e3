//! Tauri commands, one module per area. Each takes state, calls app-core and returns a DTO
//! from `left4me_protocol::ipc` or an `IpcError`.

pub mod app;
