//! The app's frame: the header and the page below it.

use crate::pages::about::About;
use yew::prelude::*;

#[function_component(App)]
pub fn app() -> Html {
    html! {
        <div class="frame">
            <header class="topbar">
                <span class="brand" aria-label="left4me">{ "left4me" }</span>
            </header>
            <main class="page">
                <About />
            </main>
        </div>
    }
}
