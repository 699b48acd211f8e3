//! The one binding to Tauri: commands are called as their `left4me_protocol::command` types
//! (`call`), events listened to as their `left4me_protocol` constants (`listen`). Every call
//! returns `Result<Answer, IpcError>`: a rejected promise, a missing backend and an answer of
//! the wrong shape all become an `IpcError` the page can show, never a panic.

use left4me_protocol::{Command, ErrorCode, Event, IpcError};
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // window.__TAURI__.core.invoke(cmd, args) -> Promise; present with app.withGlobalTauri.
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    // window.__TAURI__.event.listen(event, handler) -> Promise<unlisten function>.
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], js_name = listen, catch)]
    async fn tauri_listen(
        event: &str,
        handler: &Closure<dyn FnMut(JsValue)>,
    ) -> Result<JsValue, JsValue>;
}

/// Whether the page runs inside the desktop app (and not in a plain browser).
fn has_backend() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("__TAURI__"))
        .is_ok_and(|v| !v.is_undefined())
}

/// Sends `command` to the backend and reads its answer.
pub async fn call<C: Command>(command: &C) -> Result<C::Answer, IpcError> {
    invoke(C::NAME, command).await
}

/// Calls the backend command `cmd` with `args` (an object whose fields are the command's
/// parameters, in camelCase as Tauri expects).
async fn invoke<A: Serialize, T: DeserializeOwned>(cmd: &str, args: &A) -> Result<T, IpcError> {
    if !has_backend() {
        return Err(IpcError::new(
            ErrorCode::NoBackend,
            "this page runs outside the left4me app, so it cannot reach the backend",
        ));
    }
    // Plain objects and numbers, as JSON would have them.
    let args = args
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| {
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

/// A subscription to a backend event; dropping it unsubscribes.
pub struct Listener {
    unlisten: Rc<RefCell<Unlisten>>,
    // Kept alive for as long as the backend may call it.
    _handler: Rc<Closure<dyn FnMut(JsValue)>>,
}

#[derive(Default)]
struct Unlisten {
    function: Option<js_sys::Function>,
    dropped: bool,
}

/// Calls `on` with each `event`'s payload. A payload of another shape is skipped (and
/// logged to the console): the window goes on with the next one.
pub fn listen<T: DeserializeOwned + 'static>(
    event: Event<T>,
    on: impl Fn(T) + 'static,
) -> Listener {
    let event = event.name;
    let handler = Rc::new(Closure::<dyn FnMut(JsValue)>::new(
        move |message: JsValue| {
            let payload = js_sys::Reflect::get(&message, &JsValue::from_str("payload"))
                .unwrap_or(JsValue::UNDEFINED);
            match serde_wasm_bindgen::from_value::<T>(payload) {
                Ok(value) => on(value),
                Err(e) => {
                    web_sys::console::warn_1(&format!("{event}: unexpected payload: {e}").into())
                }
            }
        },
    ));
    let unlisten = Rc::new(RefCell::new(Unlisten::default()));
    if has_backend() {
        let (handler, unlisten) = (handler.clone(), unlisten.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(function) = tauri_listen(event, &handler).await {
                let function: js_sys::Function = function.unchecked_into();
                let mut state = unlisten.borrow_mut();
                if state.dropped {
                    let _ = function.call0(&JsValue::NULL);
                } else {
                    state.function = Some(function);
                }
            }
        });
    }
    Listener {
        unlisten,
        _handler: handler,
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut state = self.unlisten.borrow_mut();
        state.dropped = true;
        if let Some(function) = state.function.take() {
            // Tauri removes the handler at once; the backend hears of it later.
            let _ = function.call0(&JsValue::NULL);
        }
    }
}
