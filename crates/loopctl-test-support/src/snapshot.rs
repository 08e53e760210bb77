//! Expected output checked in beside the tests. A test compares what it produced with the
//! file and fails on a difference, printing the first differing line and how to accept the
//! new output; with `UPDATE_SNAPSHOTS=1` set it writes the file instead and passes, saying so.

use std::path::Path;

/// Compares `actual` with the file at `path`. `rerun` is the command that runs this test
/// (`cargo test -p … --test … NAME`), for the message that tells how to update the file.
#[track_caller]
pub fn assert_snapshot(path: &Path, actual: &str, rerun: &str) {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|value| value == "1");
    match compare(path, actual, update) {
        Ok(Outcome::Same) => {}
        Ok(Outcome::Wrote) => eprintln!("UPDATE_SNAPSHOTS=1: wrote {}", path.display()),
        Err(difference) => panic!(
            "{difference}\nIf the new output is right, run `UPDATE_SNAPSHOTS=1 {rerun}` to rewrite {}, and commit it.",
            path.display()
        ),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Same,
    Wrote,
}

/// `Err` says how the file differs from `actual` (when not updating).
fn compare(path: &Path, actual: &str, update: bool) -> Result<Outcome, String> {
    let expected = std::fs::read_to_string(path).ok();
    if expected.as_deref() == Some(actual) {
        return Ok(Outcome::Same);
    }
    if update {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        std::fs::write(path, actual).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        return Ok(Outcome::Wrote);
    }
    Err(match expected {
        None => format!("snapshot {} does not exist (or cannot be read)", path.display()),
        Some(expected) => format!("snapshot {} differs: {}", path.display(), first_difference(&expected, actual)),
    })
}

/// The first line where `expected` and `actual` differ, both sides shown.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut want, mut got) = (expected.lines(), actual.lines());
    for number in 1.. {
        match (want.next(), got.next()) {
            (None, None) => break,
            (w, g) if w == g => {}
            (w, g) => {
                let show = |line: Option<&str>| line.map_or_else(|| "(end of file)".to_string(), |l| format!("{l:?}"));
                return format!("first at line {number}\n  snapshot: {}\n  actual:   {}", show(w), show(g));
            }
        }
    }
    "the lines are the same; only the line endings or the final newline differ".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_is_named_with_both_sides() {
        let message = first_difference("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(message, "first at line 2\n  snapshot: \"b\"\n  actual:   \"B\"");
        assert!(first_difference("a\n", "a\nb\n").contains("line 2\n  snapshot: (end of file)\n  actual:   \"b\""));
        assert!(first_difference("a\n", "a").contains("final newline"));
    }

    #[test]
    fn a_difference_fails_and_an_update_writes_the_file_then_passes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("snapshots").join("thing.json");
        let missing = compare(&path, "new\n", false).expect_err("no snapshot yet");
        assert!(missing.contains("does not exist"), "{missing}");
        assert_eq!(compare(&path, "new\n", true), Ok(Outcome::Wrote));
        assert_eq!(std::fs::read_to_string(&path).expect("written"), "new\n");
        assert_eq!(compare(&path, "new\n", false), Ok(Outcome::Same));
        let changed = compare(&path, "newer\n", false).expect_err("the output changed");
        assert!(changed.contains("line 1") && changed.contains("\"newer\""), "{changed}");
        assert_eq!(std::fs::read_to_string(&path).expect("unchanged"), "new\n", "a failed comparison writes nothing");
    }
}
