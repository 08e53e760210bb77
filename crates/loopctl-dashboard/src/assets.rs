//! The dashboard's stylesheet and script, compiled into the binary: no CDN, works offline.

/// The stylesheet: light and dark by `prefers-color-scheme`.
pub const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");

/// The live-update script (a few KB of plain JavaScript over `EventSource`).
pub const LIVE_JS: &str = include_str!("../assets/live.js");

/// An asset by its file name, with its content type.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.css" => Some(("text/css; charset=utf-8", DASHBOARD_CSS)),
        "live.js" => Some(("text/javascript; charset=utf-8", LIVE_JS)),
        _ => None,
    }
}
