//! How WebKitGTK draws the window.
//!
//! WebKitGTK composites the page with OpenGL. Without a GPU, Mesa's software rasterizer
//! does that work: every frame is drawn by the CPU into GL tiles, which the web process
//! keeps in memory. Measured under Xvfb with the dashboard showing 60 of 500 servers (timed
//! in the page through WebDriver): repainting the window took 120 to 250 ms with compositing
//! and 20 to 30 ms without, and the web process held 366 MB against 143 MB. So on a machine
//! without a GPU render node the window draws without compositing, straight to the screen.
//! With a GPU, WebKit keeps its default.
//!
//! The benchmark's floor app (`bench/floor`) includes this file, so both windows are drawn
//! the same way.

use std::path::Path;
use tauri::{Manager, Runtime};

/// Where the kernel lists the GPUs' render nodes (`renderD128`, …).
const DRI: &str = "/dev/dri";

/// Turns compositing off for the app's windows when the machine has no GPU to do it.
pub fn apply<R: Runtime>(app: &tauri::App<R>) {
    if has_render_node(Path::new(DRI)) {
        return;
    }
    for window in app.webview_windows().values() {
        // Runs on the main thread; an error means the window is already closing.
        let _ = window.with_webview(|webview| {
            #[cfg(target_os = "linux")]
            {
                use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
                if let Some(settings) = webview.inner().settings() {
                    settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = webview;
        });
    }
}

/// Whether `dri` holds a render node, the device a GPU is drawn through.
fn has_render_node(dri: &Path) -> bool {
    std::fs::read_dir(dri).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

#[cfg(test)]
mod tests {
    use super::has_render_node;

    #[test]
    fn a_render_node_means_a_gpu() {
        let dri = tempfile::tempdir().unwrap();
        assert!(!has_render_node(dri.path()), "empty /dev/dri");
        assert!(!has_render_node(&dri.path().join("missing")), "no /dev/dri");
        std::fs::write(dri.path().join("card0"), "").unwrap();
        assert!(!has_render_node(dri.path()), "a display node alone");
        std::fs::write(dri.path().join("renderD128"), "").unwrap();
        assert!(has_render_node(dri.path()));
    }
}
