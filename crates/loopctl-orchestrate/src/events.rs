//! What the orchestrator tells the person running it: one line per event, in words or as one
//! JSON object per line (`--format json`).

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    BudgetReached,
    Done,
}

/// The live table under the event lines on a terminal: one row per story in flight.
#[derive(Default)]
struct Board {
    rows: BTreeMap<String, Row>,
    /// Lines the table took when it was last drawn (erased before the next line).
    drawn: usize,
}

struct Row {
    role: String,
    attempt: String,
    phase: String,
    since: Instant,
    last: String,
}

#[derive(Clone)]
pub struct Events {
    format: Format,
    /// Present when human output goes to a terminal.
    board: Option<Arc<Mutex<Board>>>,
}

impl Events {
    pub fn new(format: Format) -> Events {
        let live = format == Format::Human && std::io::stdout().is_terminal();
        Events { format, board: live.then(Arc::default) }
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
                let label = name(kind);
                let line = match story {
                    Some(story) => format!("{story:<6} {label:<10} {text}"),
                    None => format!("{label:<17} {text}"),
                };
                let Some(board) = &self.board else {
                    println!("{line}");
                    return;
                };
                let Ok(mut board) = board.lock() else { return };
                if let Some(story) = story {
                    board.track(story, kind, text, &details);
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}{line}", erase(board.drawn));
                board.drawn = draw(&mut out, &board.rows);
                let _ = out.flush();
            }
        }
    }

    /// Redraws the live table (its elapsed times); nothing when output is not a terminal.
    pub fn tick(&self) {
        let Some(board) = &self.board else { return };
        let Ok(mut board) = board.lock() else { return };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", erase(board.drawn));
        board.drawn = draw(&mut out, &board.rows);
        let _ = out.flush();
    }
}

impl Board {
    fn track(&mut self, story: &str, kind: Kind, text: &str, details: &Value) {
        let last: String = text.chars().take(60).collect();
        match kind {
            Kind::Dispatched => {
                let row = Row {
                    role: details["role"].as_str().unwrap_or_default().to_string(),
                    attempt: details["attempt"].to_string(),
                    phase: "running".into(),
                    since: Instant::now(),
                    last: "started".into(),
                };
                self.rows.insert(story.to_string(), row);
            }
            Kind::Verified | Kind::Rejected | Kind::Failed | Kind::Escalated | Kind::Recovered => {
                self.rows.remove(story);
            }
            _ => {
                if let Some(row) = self.rows.get_mut(story) {
                    row.phase = name(kind);
                    row.last = last;
                }
            }
        }
    }
}

fn name(kind: Kind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Moves the cursor up over the table last drawn and clears from there down.
fn erase(lines: usize) -> String {
    if lines == 0 { String::new() } else { format!("\x1b[{lines}A\x1b[J") }
}

/// The table of stories in flight; answers how many lines it took.
fn draw(out: &mut impl Write, rows: &BTreeMap<String, Row>) -> usize {
    if rows.is_empty() {
        return 0;
    }
    let _ =
        writeln!(out, "  {:<6} {:<11} {:<7} {:<9} {:>8}  last event", "STORY", "ROLE", "ATTEMPT", "PHASE", "ELAPSED");
    for (story, row) in rows {
        let _ = writeln!(
            out,
            "  {story:<6} {:<11} {:<7} {:<9} {:>7}s  {}",
            row.role,
            row.attempt,
            row.phase,
            row.since.elapsed().as_secs(),
            row.last
        );
    }
    rows.len() + 1
}
