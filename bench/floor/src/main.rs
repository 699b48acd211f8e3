//! The floor: one window, one page, one command.

#[tauri::command]
fn greet(name: &str) -> String {
    format!("Hello, {name}!")
}

fn main() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![greet])
        .run(tauri::generate_context!())
        .unwrap_or_else(|err| {
            eprintln!("left4me-floor: {err}");
            std::process::exit(1);
        });
}
