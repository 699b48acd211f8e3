//! One module per screen. A page loads its own data through hooks and lays out components.

pub mod about;
