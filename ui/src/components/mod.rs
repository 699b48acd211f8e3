//! Props-only building blocks shared by the pages.

mod dialog;
mod error_notice;
mod progress_bar;
mod select_field;
mod text_area;
mod text_field;

pub use dialog::Dialog;
pub use error_notice::ErrorNotice;
pub use progress_bar::ProgressBar;
pub use select_field::SelectField;
pub use text_area::TextArea;
pub use text_field::TextField;
