//! The left4me UI: a Yew app rendered into the Tauri window's `<body>`.

mod app;
mod components;
mod hooks;
mod ipc;
mod pages;
mod session;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
