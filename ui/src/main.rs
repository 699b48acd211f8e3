//! The left4me UI: a Yew app rendered into the Tauri window's `<body>`.

mod activity;
mod app;
mod components;
mod forms;
mod hooks;
mod ipc;
mod live;
mod logview;
mod pages;
mod session;
mod text;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
