//! The one binding to Tauri's `invoke`. Every call returns `Result<T, IpcError>`: a rejected
//! promise, a missing backend and an answer of the wrong shape all become an `IpcError`
//! the page can show, never a panic.

use left4me_protocol::{ErrorCode, IpcError};
use serde::{Serialize, de::DeserializeOwned};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // window.__TAURI__.core.invoke(cmd, args) -> Promise; present with app.withGlobalTauri.
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

/// Whether the page runs inside the desktop app (and not in a plain browser).
fn has_backend() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("__TAURI__"))
        .is_ok_and(|v| !v.is_undefined())
}

/// Calls the backend command `cmd` with `args` (a struct whose fields are the command's
/// parameters, in camelCase as Tauri expects).
pub async fn invoke<A: Serialize, T: DeserializeOwned>(cmd: &str, args: &A) -> Result<T, IpcError> {
    if !has_backend() {
        return Err(IpcError::new(
            ErrorCode::NoBackend,
            "this page runs outside the left4me app, so it cannot reach the backend",
        ));
    }
    let args = serde_wasm_bindgen::to_value(args).map_err(|e| {
        IpcError::new(
            ErrorCode::Internal,
            format!("cannot encode arguments of {cmd}: {e}"),
        )
    })?;
    match tauri_invoke(cmd, args).await {
        Ok(value) => serde_wasm_bindgen::from_value(value).map_err(|e| {
            IpcError::new(
                ErrorCode::BadResponse,
                format!("unexpected answer from {cmd}: {e}"),
            )
        }),
        Err(rejection) => Err(rejection_to_error(cmd, rejection)),
    }
}

/// Commands reject with a serialised `IpcError`; Tauri itself rejects with a plain string
/// (an unknown command, a denied permission).
fn rejection_to_error(cmd: &str, rejection: JsValue) -> IpcError {
    if let Ok(err) = serde_wasm_bindgen::from_value::<IpcError>(rejection.clone()) {
        return err;
    }
    let text = rejection
        .as_string()
        .unwrap_or_else(|| format!("{rejection:?}"));
    IpcError::new(ErrorCode::Internal, format!("{cmd} failed: {text}"))
}

/// No arguments.
#[derive(Serialize)]
pub struct NoArgs {}
