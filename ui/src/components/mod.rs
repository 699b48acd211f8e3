//! Small building blocks shared by pages. They take data and callbacks as props and own no
//! backend calls.

mod error_notice;

pub use error_notice::ErrorNotice;
