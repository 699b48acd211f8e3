//! Integration tests of app-core against real files.

/// The SQLite store: a real file in a temporary folder.
mod store;
