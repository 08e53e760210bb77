//! Output for people and for programs: aligned tables (colour on a TTY), JSON, CSV; one-line
//! errors on stderr; exit codes by error class.

use std::fmt::Write as _;

use loopctl_client::ClientError;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
}

/// A refusal the CLI decides itself (bad arguments, nothing configured).
#[derive(Debug)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// A usage error: exit code 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError { exit: 2, message: message.into() })
}

/// Exit code of a server error code (SPEC: 3 auth, 4 not found, 5 conflict, 6 unreachable).
pub fn exit_code_for(code: &str) -> u8 {
    match code {
        "unauthorized" | "forbidden" | "scope_violation" | "token_expired" | "token_revoked" | "rate_limited" => 3,
        "not_found" | "nothing_ready" => 4,
        "invalid_transition"
        | "must_contract_first"
        | "must_claim_first"
        | "contract_mismatch"
        | "dependencies_not_met"
        | "concurrency_limit"
        | "escalation_locked"
        | "stale_claim"
        | "self_report_blocked"
        | "self_review_blocked"
        | "self_verify_blocked"
        | "review_not_conducted"
        | "acceptance_incomplete"
        | "cycle_detected"
        | "duplicate_number"
        | "version_conflict"
        | "conflict" => 5,
        "unreachable" => 6,
        _ => 1,
    }
}

/// Prints an error as one line (or the error body with `--format json`) and gives the exit code.
pub fn report_error(err: &anyhow::Error, format: Format) -> u8 {
    if let Some(cli) = err.downcast_ref::<CliError>() {
        print_error("usage", &cli.message, format, None);
        return cli.exit;
    }
    if let Some(client) = err.downcast_ref::<ClientError>() {
        let body = match client {
            ClientError::Api { body, .. } => Some(body.clone()),
            _ => None,
        };
        print_error(client.code(), &client.to_string(), format, body);
        return exit_code_for(client.code());
    }
    print_error("error", &format!("{err:#}"), format, None);
    1
}

fn print_error(code: &str, message: &str, format: Format, body: Option<Value>) {
    if format == Format::Json {
        let body = body.unwrap_or_else(|| serde_json::json!({"error": {"code": code, "message": message}}));
        eprintln!("{body}");
    } else {
        eprintln!("error: {message}");
    }
}

/// Rows with headers: aligned for people, CSV for spreadsheets.
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, format: Format, color: bool) -> String {
        match format {
            Format::Csv => self.csv(),
            _ => self.aligned(color),
        }
    }

    fn csv(&self) -> String {
        let mut out = String::new();
        let line = |cells: Vec<String>| cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(",");
        out.push_str(&line(self.headers.iter().map(|h| (*h).to_string()).collect()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row.clone()));
            out.push('\n');
        }
        out
    }

    fn aligned(&self, color: bool) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (idx, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(idx) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_uppercase()).collect();
        push_row(&mut out, &header, &widths, |s| if color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_string() });
        for row in &self.rows {
            push_row(&mut out, row, &widths, |s| if color { paint(s) } else { s.to_string() });
        }
        out
    }
}

fn push_row(out: &mut String, cells: &[String], widths: &[usize], style: impl Fn(&str) -> String) {
    let last = cells.len().saturating_sub(1);
    for (idx, cell) in cells.iter().enumerate() {
        let pad = widths.get(idx).copied().unwrap_or(0).saturating_sub(cell.chars().count());
        let _ = write!(out, "{}", style(cell));
        if idx < last {
            out.push_str(&" ".repeat(pad + 2));
        }
    }
    out.push('\n');
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell.to_string() }
}

/// Colours the status words people scan for.
fn paint(cell: &str) -> String {
    let code = match cell {
        "verified" | "yes" => "32",
        "rejected" | "escalated" | "LOCKED" => "31",
        "implementing" | "assigned" | "reported_done" => "33",
        "contracted" => "36",
        _ => return cell.to_string(),
    };
    format!("\x1b[{code}m{cell}\x1b[0m")
}

/// Writes to stdout; a reader that went away (`loopctl … | head -1`) ends the program quietly
/// instead of a panic.
pub fn write_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && err.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` that survives a closed stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_out("\n") };
    ($($arg:tt)*) => { $crate::output::write_out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(&format!($($arg)*)) };
}

/// Prints the server's object as JSON, or `human` for people.
pub fn emit(format: Format, value: &Value, human: impl FnOnce() -> String) {
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Human | Format::Csv => {
            let text = human();
            if text.is_empty() || text.ends_with('\n') {
                crate::out!("{text}");
            } else {
                crate::outln!("{text}");
            }
        }
    }
}

/// A field as display text: strings bare, null as `-`.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_class() {
        assert_eq!(exit_code_for("forbidden"), 3);
        assert_eq!(exit_code_for("not_found"), 4);
        assert_eq!(exit_code_for("self_verify_blocked"), 5);
        assert_eq!(exit_code_for("unreachable"), 6);
        assert_eq!(exit_code_for("validation_failed"), 1);
    }

    #[test]
    fn tables_align_and_quote() {
        let mut table = Table::new(&["number", "title"]);
        table.row(vec!["1.1".into(), "Sign-up, fast".into()]);
        assert_eq!(table.render(Format::Human, false), "NUMBER  TITLE\n1.1     Sign-up, fast\n");
        assert_eq!(table.render(Format::Csv, false), "number,title\n1.1,\"Sign-up, fast\"\n");
    }
}
