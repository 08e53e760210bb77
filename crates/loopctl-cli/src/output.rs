//! Output for people and for programs: aligned tables (colour on a TTY), JSON, CSV; one-line
//! errors on stderr; exit codes by error class.

use std::fmt::Write as _;

use loopctl_api::ExitClass;
use loopctl_client::ClientError;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
}

/// A refusal the CLI decides itself (bad arguments, nothing configured, a key it will not send).
#[derive(Debug)]
pub struct CliError {
    /// How the process exits (`ExitClass::exit_code`), as for the server's refusals.
    pub exit: ExitClass,
    /// The code `--format json` prints (`usage`, `key_server_mismatch`).
    pub code: &'static str,
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
    anyhow::Error::new(CliError { exit: ExitClass::Usage, code: "usage", message: message.into() })
}

/// The evidence checks' "no repository or branch there" is the caller's mistake: exit code 2.
pub fn setup_is_usage(err: anyhow::Error) -> anyhow::Error {
    match err.downcast::<loopctl_evidence::SetupError>() {
        Ok(setup) => usage(setup.0),
        Err(err) => err,
    }
}

/// A refusal of the caller's key for this command: exit code 3.
pub fn permission(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError { exit: ExitClass::Auth, code: "forbidden", message: message.into() })
}

/// The facts do not hold (the audit chain does not match): exit code 5, like a conflict.
pub fn facts_do_not_hold(code: &'static str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError { exit: ExitClass::Conflict, code, message: message.into() })
}

/// Prints an error as one line (or the error body with `--format json`) and gives the exit code
/// of its class (SPEC: 2 usage, 3 auth, 4 not found, 5 conflict, 6 unreachable); a request the
/// server refuses as malformed is a usage error like a bad flag.
pub fn report_error(err: &anyhow::Error, format: Format) -> u8 {
    if let Some(cli) = err.downcast_ref::<CliError>() {
        print_error(cli.code, &cli.message, format, None);
        return cli.exit.exit_code();
    }
    if let Some(client) = err.downcast_ref::<ClientError>() {
        let body = match client {
            ClientError::Api { body, .. } => Some(body.clone()),
            _ => None,
        };
        print_error(client.code(), &client.to_string(), format, body);
        return client.exit_class().exit_code();
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
        let mut out = csv_line(self.headers.as_slice());
        for row in &self.rows {
            out.push_str(&csv_line(row.as_slice()));
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

/// One CSV record (RFC 4180) ending in LF: a field holding a comma, quote, CR or LF is quoted,
/// its quotes doubled. Every line loopctl writes ends in LF, so the file is consistent.
fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells.iter().map(|cell| csv_field(cell.as_ref())).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

fn csv_field(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\"")).into()
    } else {
        cell.into()
    }
}

/// One object as CSV: a header row of its field names and a row of their values (text bare,
/// null empty, nested values as compact JSON).
fn record_csv(record: &Value) -> String {
    let Value::Object(fields) = record else {
        return format!("value\n{}", csv_line(&[csv_value(record)]));
    };
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let values: Vec<String> = fields.values().map(csv_value).collect();
    format!("{}{}", csv_line(&names), csv_line(&values))
}

fn csv_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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

/// Prints the server's object as JSON, or `human` for people; for CSV too, so `human` renders
/// its rows with `Table::render(format, …)` (commands that print rows).
pub fn emit(format: Format, value: &impl Serialize, human: impl FnOnce() -> String) {
    match format {
        Format::Json => print_json(value),
        Format::Human | Format::Csv => print_text(&human()),
    }
}

/// Prints the server's object as JSON, `human` for people, and `record` (one object: a story,
/// the caller, the configuration) as a CSV header row and value row.
pub fn emit_record(format: Format, value: &impl Serialize, record: &impl Serialize, human: impl FnOnce() -> String) {
    match format {
        Format::Json => print_json(value),
        Format::Csv => crate::out!("{}", record_csv(&serde_json::to_value(record).unwrap_or_default())),
        Format::Human => print_text(&human()),
    }
}

/// The answer as the server sent it: a decoded answer re-encodes to the same JSON (the server
/// encodes the same types), and through `Value` its objects print with their keys sorted, as
/// they always have.
pub fn print_json(value: &impl Serialize) {
    let value = serde_json::to_value(value).unwrap_or_default();
    crate::outln!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
}

fn print_text(text: &str) {
    if text.is_empty() || text.ends_with('\n') {
        crate::out!("{text}");
    } else {
        crate::outln!("{text}");
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

/// A UUID shortened for people: its last 8 hex digits. Every id loopctl makes is a UUIDv7,
/// whose first digits are a timestamp shared by everything made the same month; the end is
/// random, so two short ids differ when their ids do.
pub fn short_id(id: &Value) -> String {
    id.as_str().map_or_else(|| "-".into(), last_hex_digits)
}

/// [`short_id`] of a typed id; `-` for none.
pub fn short_uuid(id: Option<Uuid>) -> String {
    id.map_or_else(|| "-".into(), |id| last_hex_digits(&id.to_string()))
}

fn last_hex_digits(id: &str) -> String {
    let hex: Vec<char> = id.chars().filter(char::is_ascii_hexdigit).collect();
    hex[hex.len().saturating_sub(8)..].iter().collect()
}

/// A number as the JSON showed it (`50.0`, not `50`).
pub fn json_number(number: f64) -> String {
    serde_json::Number::from_f64(number).map_or_else(|| "-".into(), |number| number.to_string())
}

/// An optional field as display text: the value, or `-` for none (as [`text`] shows null).
pub fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

/// Every hyphenated UUID in a text, in order of appearance, each once.
pub fn uuids_in(text: &str) -> Vec<String> {
    const LEN: usize = 36;
    let bytes = text.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut start = 0;
    while start + LEN <= bytes.len() {
        let window = &bytes[start..start + LEN];
        let hyphenated = [8, 13, 18, 23].iter().all(|&i| window[i] == b'-');
        let bounded = |i: Option<&u8>| i.is_none_or(|b| !b.is_ascii_hexdigit() && *b != b'-');
        if hyphenated
            && bounded(start.checked_sub(1).and_then(|i| bytes.get(i)))
            && bounded(bytes.get(start + LEN))
            && let Ok(id) = uuid::Uuid::try_parse_ascii(window)
        {
            let id = id.hyphenated().to_string();
            if !found.contains(&id) {
                found.push(id);
            }
            start += LEN;
        } else {
            start += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use loopctl_api::ErrorCode;

    use super::*;

    #[test]
    fn exit_codes_follow_the_class() {
        let code = |code: ErrorCode| code.exit_class().exit_code();
        assert_eq!(code(ErrorCode::Forbidden), 3);
        assert_eq!(code(ErrorCode::NotFound), 4);
        assert_eq!(code(ErrorCode::SelfVerifyBlocked), 5);
        let unreachable = ClientError::Unreachable { server: "http://127.0.0.1:9".into(), reason: "refused".into() };
        assert_eq!(unreachable.exit_class().exit_code(), 6);
        assert_eq!(code(ErrorCode::ValidationFailed), 2);
        assert_eq!(code(ErrorCode::InvalidJson), 2);
        assert_eq!(code(ErrorCode::PayloadTooLarge), 1);
    }

    #[test]
    fn tables_align_and_quote() {
        let mut table = Table::new(&["number", "title"]);
        table.row(vec!["1.1".into(), "Sign-up, fast".into()]);
        assert_eq!(table.render(Format::Human, false), "NUMBER  TITLE\n1.1     Sign-up, fast\n");
        assert_eq!(table.render(Format::Csv, false), "number,title\n1.1,\"Sign-up, fast\"\n");
    }

    #[test]
    fn csv_fields_with_separators_quotes_or_line_breaks_are_quoted() {
        assert_eq!(
            csv_line(&["plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", ""]),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\",\n"
        );
    }

    #[test]
    fn a_record_is_a_header_row_and_a_value_row() {
        let record = serde_json::json!({"number": "1.1", "title": "a, b", "lease": null, "acs": [1, 2]});
        assert_eq!(record_csv(&record), "acs,lease,number,title\n\"[1,2]\",,1.1,\"a, b\"\n");
        assert_eq!(record_csv(&serde_json::json!("x")), "value\nx\n");
    }

    #[test]
    fn short_ids_are_the_random_end_of_a_uuid() {
        let id = serde_json::json!("01a2332d-7c4e-7f00-8a1b-0123456789ab");
        assert_eq!(short_id(&id), "456789ab");
        assert_eq!(short_id(&Value::Null), "-");
        assert_eq!(short_id(&serde_json::json!("abc")), "abc");
    }

    #[test]
    fn uuids_are_found_in_a_message_once_each() {
        let a = "01a2332d-7c4e-7f00-8a1b-0123456789ab";
        let b = "01a2332d-7c4e-7f00-8a1b-ba9876543210";
        let message = format!("story {a} only; not {b} (nor {a}), not x{a}0 nor 01a2332d-7c4e");
        assert_eq!(uuids_in(&message), [a, b]);
        assert!(uuids_in("no ids here, ünïcödé included").is_empty());
    }
}
