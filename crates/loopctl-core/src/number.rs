//! Story numbers: `2.1`, `US-2.1`, `7`. Compared numerically so that `2.9` sorts before `2.10`.

use std::fmt;

/// The largest value of either part of a story number.
pub const MAX_NUMBER_PART: u32 = 9_999;

/// How far apart the sort keys of consecutive majors are: room for every minor of one major
/// (`10 * minor + 1` is at most 99_991) and for the bare major itself (0).
const MAJOR_STRIDE: i64 = 100_000;

/// A parsed story number. `major.minor`, or `major` alone; each part 0..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoryNumber {
    major: u32,
    minor: Option<u32>,
}

impl StoryNumber {
    /// Parses `2.1`, `US-2.1` or `us-2.1` (the `US-` prefix is how people write them).
    ///
    /// # Errors
    /// A message naming the accepted shapes when the text is not a story number, and the
    /// limit when a part is larger than 9999.
    pub fn parse(text: &str) -> Result<StoryNumber, String> {
        let trimmed = text.trim();
        let bare = trimmed.strip_prefix("US-").or_else(|| trimmed.strip_prefix("us-")).unwrap_or(trimmed);
        let mut parts = bare.split('.');
        let major = parse_part(text, parts.next())?;
        let minor = match parts.next() {
            None => None,
            Some(part) => Some(parse_part(text, Some(part))?),
        };
        if parts.next().is_some() {
            return Err(not_a_number(text));
        }
        Ok(StoryNumber { major, minor })
    }

    pub fn major(self) -> u32 {
        self.major
    }

    pub fn minor(self) -> Option<u32> {
        self.minor
    }

    /// The order of stories as one integer: `major * 100000`, plus `10 * minor + 1` when
    /// there is a minor. Unique for every valid number (`7` sorts just before `7.0`), and
    /// ordered as the numbers are (`1.999 < 1.1000 < 1.1001 < 2 < 2.1 < 2.9 < 2.10`).
    ///
    /// The reference's `major*10000 + minor*10` runs out at minor 1000: `1.1000` gets the key
    /// of `2` and `1.1001` that of `2.1`. The stores recompute keys written that way with this
    /// formula from the number text (migration 7).
    pub fn sort_key(self) -> i64 {
        let minor = self.minor.map_or(0, |minor| 10 * i64::from(minor) + 1);
        i64::from(self.major) * MAJOR_STRIDE + minor
    }
}

fn not_a_number(text: &str) -> String {
    format!("`{text}` is not a story number; write it like 2.1 or US-2.1")
}

fn parse_part(text: &str, part: Option<&str>) -> Result<u32, String> {
    let part = part.ok_or_else(|| not_a_number(text))?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number(text));
    }
    match part.parse::<u32>() {
        Ok(value) if part.len() <= 4 && value <= MAX_NUMBER_PART => Ok(value),
        _ => Err(format!(
            "`{text}` is out of range: each part of a story number is at most {MAX_NUMBER_PART} (written with at most 4 digits); renumber the story"
        )),
    }
}

impl fmt::Display for StoryNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{}", self.major, minor),
            None => write!(f, "{}", self.major),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_people_write() {
        assert_eq!(StoryNumber::parse("2.1").map(|n| n.to_string()), Ok("2.1".into()));
        assert_eq!(StoryNumber::parse("US-2.1").map(|n| n.to_string()), Ok("2.1".into()));
        assert_eq!(StoryNumber::parse("us-12.30").map(|n| n.to_string()), Ok("12.30".into()));
        assert_eq!(StoryNumber::parse("7").map(|n| n.to_string()), Ok("7".into()));
        assert_eq!(StoryNumber::parse("9999.9999").map(|n| n.to_string()), Ok("9999.9999".into()));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in ["", "2.", ".1", "2.1.3", "a.b", "-1", "2 .1", "US-", "+1.1", "1.-1"] {
            let err = StoryNumber::parse(bad).expect_err(bad);
            assert!(err.contains("write it like 2.1"), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_parts_above_9999_naming_the_limit() {
        for big in ["10000.1", "1.10000", "99999999999999999999.1", "1.00001"] {
            let err = StoryNumber::parse(big).expect_err(big);
            assert!(err.contains("at most 9999"), "{big}: {err}");
        }
    }

    #[test]
    fn sorts_numerically() {
        let n = |s| StoryNumber::parse(s).expect("valid");
        assert!(n("2.9") < n("2.10"));
        assert!(n("2.9").sort_key() < n("2.10").sort_key());
        assert!(n("1.99") < n("2"));
        assert_eq!(n("3.2").sort_key(), 300_021);
        assert_eq!(n("3").sort_key(), 300_000);
        assert_eq!(n("9999.9999").sort_key(), 999_999_991);
    }

    #[test]
    fn minors_of_a_thousand_and_more_keep_their_place() {
        let n = |s| StoryNumber::parse(s).expect("valid");
        let keys: Vec<i64> =
            ["1.999", "1.1000", "1.1001", "2.1", "2.9", "2.10"].iter().map(|s| n(s).sort_key()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_ne!(n("1.1001").sort_key(), n("2.1").sort_key());
    }
}
