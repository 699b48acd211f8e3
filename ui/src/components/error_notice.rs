//! A backend error, shown where the action was taken.

use left4me_protocol::{ErrorCode, IpcError};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub error: IpcError,
}

#[function_component(ErrorNotice)]
pub fn error_notice(props: &Props) -> Html {
    let title = match props.error.code {
        ErrorCode::NoBackend => "Not running inside the app",
        ErrorCode::BadResponse => "The app answered in an unexpected way",
        ErrorCode::InvalidInput => "That input was not accepted",
        ErrorCode::NotFound => "Not found",
        ErrorCode::Conflict => "Not possible right now",
        ErrorCode::Forbidden => "Not allowed",
        ErrorCode::Unauthenticated => "Not logged in",
        ErrorCode::RateLimited => "Too many attempts",
        ErrorCode::Remote => "The host did not do it",
        ErrorCode::Storage => "The local database failed",
        ErrorCode::VaultLocked => "The vault is locked",
        ErrorCode::Internal => "Something went wrong",
    };
    html! {
        <div class="notice notice-error" role="alert">
            <strong>{ title }</strong>
            <p>{ &props.error.message }</p>
        </div>
    }
}
