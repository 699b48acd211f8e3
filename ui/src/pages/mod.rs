//! Screens. Each loads what it shows and reports errors where the user acted.

pub mod about;
pub mod account;
pub mod blueprints;
pub mod builds;
pub mod dashboard;
pub mod host_events;
pub mod hosts;
pub mod jobs;
pub mod notifications;
pub mod overlays;
pub mod own_account;
pub mod schedules;
pub mod server;
pub mod servers;
pub mod users;
pub mod vault;
