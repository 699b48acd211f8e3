//! Props-only building blocks shared by the pages.

mod error_notice;
mod text_field;

pub use error_notice::ErrorNotice;
pub use text_field::TextField;
