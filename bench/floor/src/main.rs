//! The floor: one window, one page, one command.

// Drawn as left4me draws its window.
#[path = "../../../src-tauri/src/rendering.rs"]
mod rendering;

#[tauri::command]
fn greet(name: &str) -> String {
    format!("Hello, {name}!")
}

fn main() {
    tauri::Builder::default()
        .setup(|app| {
            rendering::apply(app);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![greet])
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("left4me-floor: {err}");
            std::process::exit(1);
        });
}
