//! What the orchestrator tells the person running it: one line per event, in words or as one
//! JSON object per line (`--format json`).

use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// The events of the loop (`--format json` prints their `event` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dispatched,
    Failed,
    Reported,
    Reviewed,
    Checked,
    Verified,
    Rejected,
    Escalated,
    Merged,
    Recovered,
    Done,
}

#[derive(Clone)]
pub struct Events {
    format: Format,
}

impl Events {
    pub fn new(format: Format) -> Events {
        Events { format }
    }

    /// Prints one event of `story` (or of the run, when `None`) with its details.
    pub fn emit(&self, kind: Kind, story: Option<&str>, text: &str, details: Value) {
        match self.format {
            Format::Json => {
                let mut line = json!({
                    "event": kind,
                    "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "story": story,
                    "message": text,
                });
                if let (Some(line), Value::Object(details)) = (line.as_object_mut(), details) {
                    line.extend(details);
                }
                println!("{line}");
            }
            Format::Human => {
                let label = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string));
                let label = label.unwrap_or_default();
                match story {
                    Some(story) => println!("{story:<6} {label:<10} {text}"),
                    None => println!("{label:<17} {text}"),
                }
            }
        }
    }
}
