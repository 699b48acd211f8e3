//! The window comes back where the admin left it: its size and position are kept in
//! `window.json` in the data folder when it closes, and applied at the next start, unless
//! the screen it was on is gone.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;
use tauri::{PhysicalPosition, PhysicalSize, WebviewWindow, Window, WindowEvent};

const FILE: &str = "window.json";

/// The window's inner size and outer position, in physical pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub x: i32,
    pub y: i32,
}

/// A monitor's area, in physical pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    fn contains(&self, x: i32, y: i32) -> bool {
        let (right, bottom) = (
            self.x.saturating_add(self.width as i32),
            self.y.saturating_add(self.height as i32),
        );
        (self.x..right).contains(&x) && (self.y..bottom).contains(&y)
    }
}

/// What of `saved` to apply: the size, never below `min`, and the position only when the
/// window's top-left corner would be on one of `monitors`.
pub fn restore(
    saved: Geometry,
    monitors: &[Area],
    min: (u32, u32),
) -> (PhysicalSize<u32>, Option<PhysicalPosition<i32>>) {
    let size = PhysicalSize::new(saved.width.max(min.0), saved.height.max(min.1));
    let on_screen = monitors.iter().any(|m| m.contains(saved.x, saved.y));
    (
        size,
        on_screen.then(|| PhysicalPosition::new(saved.x, saved.y)),
    )
}

/// The window's last geometry, kept as it changes and written when it closes.
#[derive(Default)]
pub struct WindowState {
    last: Mutex<Option<Geometry>>,
}

fn path() -> Option<PathBuf> {
    app_core::paths::data_dir().ok().map(|dir| dir.join(FILE))
}

impl WindowState {
    /// Puts `window` where it was; a missing or unreadable file leaves it as configured.
    pub fn apply(window: &WebviewWindow, min: (u32, u32)) {
        let Some(saved) = path()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<Geometry>(&bytes).ok())
        else {
            return;
        };
        let monitors: Vec<Area> = window
            .available_monitors()
            .unwrap_or_default()
            .iter()
            .map(|m| Area {
                x: m.position().x,
                y: m.position().y,
                width: m.size().width,
                height: m.size().height,
            })
            .collect();
        let (size, position) = restore(saved, &monitors, min);
        let _ = window.set_size(size);
        if let Some(position) = position {
            let _ = window.set_position(position);
        }
    }

    /// Follows the window's moves and resizes; saves them when it is destroyed.
    pub fn on_event(&self, window: &Window, event: &WindowEvent) {
        match event {
            WindowEvent::Resized(_) | WindowEvent::Moved(_) => {
                if let (Ok(size), Ok(position)) = (window.inner_size(), window.outer_position())
                    && size.width > 0
                    && size.height > 0
                {
                    *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Geometry {
                        width: size.width,
                        height: size.height,
                        x: position.x,
                        y: position.y,
                    });
                }
            }
            WindowEvent::Destroyed => self.save(),
            _ => {}
        }
    }

    fn save(&self) {
        let Some(geometry) = *self.last.lock().unwrap_or_else(|p| p.into_inner()) else {
            return;
        };
        let Some(path) = path() else { return };
        let partial = path.with_extension("partial");
        let written = serde_json::to_vec(&geometry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(e) = written {
            log::warn!("cannot keep the window's place in {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Area = Area {
        x: 0,
        y: 0,
        width: 1920,
        height: 1080,
    };

    #[test]
    fn the_place_is_kept_when_its_screen_is_there() {
        let saved = Geometry {
            width: 1300,
            height: 900,
            x: 100,
            y: 50,
        };
        assert_eq!(
            restore(saved, &[SCREEN], (1024, 700)),
            (
                PhysicalSize::new(1300, 900),
                Some(PhysicalPosition::new(100, 50))
            )
        );
    }

    #[test]
    fn a_place_on_a_screen_that_is_gone_is_dropped_and_the_size_kept() {
        let saved = Geometry {
            width: 1300,
            height: 900,
            x: 2500,
            y: 50,
        };
        assert_eq!(
            restore(saved, &[SCREEN], (1024, 700)),
            (PhysicalSize::new(1300, 900), None)
        );
    }

    #[test]
    fn the_size_never_goes_below_the_minimum() {
        let saved = Geometry {
            width: 200,
            height: 100,
            x: 0,
            y: 0,
        };
        assert_eq!(
            restore(saved, &[SCREEN], (1024, 700)).0,
            PhysicalSize::new(1024, 700)
        );
    }
}
