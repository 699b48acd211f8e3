//! Screens. Each loads what it shows and reports errors where the user acted.

pub mod about;
pub mod account;
pub mod users;
