//! Wire types shared by every part of left4me: the instance spec the app sends to a host,
//! the JSON the agent prints, and the window's contract with the Tauri shell: its commands
//! (`command`) and the events and answers it receives (`ipc`).
//!
//! A type that crosses a process or network boundary is defined here once. The crate is
//! serde only, so it builds for native targets and for wasm32.

pub mod agent;
pub mod backup;
pub mod command;
pub mod events;
pub mod ipc;
pub mod limits;
pub mod model;
pub mod names;
pub mod notify;
pub mod rollout;
pub mod schedule;
pub mod spec;
pub mod time;
pub mod units;

pub use agent::{AgentError, AgentErrorCode, AgentMessage, Envelope, PROTOCOL_VERSION};
pub use command::Command;
pub use ipc::{
    APP_EVENT, AppEvent, AppFacts, CLOSE_EVENT, ErrorCode, Event, IpcError, Job, JobEvent,
    JobEventData, JobKind, JobState, JobsToCut, LiveState, STATUS_EVENT, SecretStore, ServerLive,
};
pub use names::{InvalidName, MapName, OverlayName, ScheduleName, ServerName};
pub use spec::{InstanceSpec, LaunchFlag, LaunchParams, SPEC_VERSION, SpecError};
