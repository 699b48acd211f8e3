//! The floor's page: a heading, a form-sized paragraph and a button whose click calls the
//! `greet` command.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], catch)]
    async fn invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

#[derive(Serialize)]
struct GreetArgs<'a> {
    name: &'a str,
}

#[function_component(Floor)]
fn floor() -> Html {
    let reply = use_state(String::new);
    let onclick = {
        let reply = reply.clone();
        Callback::from(move |_| {
            let reply = reply.clone();
            spawn_local(async move {
                let args = serde_wasm_bindgen::to_value(&GreetArgs { name: "floor" })
                    .unwrap_or(JsValue::UNDEFINED);
                let text = match invoke("greet", args).await {
                    Ok(value) => value.as_string().unwrap_or_default(),
                    Err(error) => format!("{error:?}"),
                };
                reply.set(text);
            });
        })
    };
    html! {
        <main id="floor">
            <h1>{ "Hello from Yew" }</h1>
            <button id="greet" {onclick}>{ "Greet" }</button>
            <p id="reply">{ (*reply).clone() }</p>
        </main>
    }
}

fn main() {
    yew::Renderer::<Floor>::new().render();
}
