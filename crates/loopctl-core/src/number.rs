//! Story numbers: `2.1`, `US-2.1`, `7`. Compared numerically so that `2.9` sorts before `2.10`.

use std::fmt;

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
    /// A message naming the accepted shapes when the text is not a story number.
    pub fn parse(text: &str) -> Result<StoryNumber, String> {
        let trimmed = text.trim();
        let bare = trimmed.strip_prefix("US-").or_else(|| trimmed.strip_prefix("us-")).unwrap_or(trimmed);
        let bad = || format!("`{text}` is not a story number; write it like 2.1 or US-2.1");
        let mut parts = bare.split('.');
        let major = parse_part(parts.next()).ok_or_else(bad)?;
        let minor = match parts.next() {
            None => None,
            Some(part) => Some(parse_part(Some(part)).ok_or_else(bad)?),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(StoryNumber { major, minor })
    }

    pub fn major(self) -> u32 {
        self.major
    }

    /// The reference's `sort_key`: `major*10000 + minor*10`.
    pub fn sort_key(self) -> i64 {
        i64::from(self.major) * 10_000 + i64::from(self.minor.unwrap_or(0)) * 10
    }
}

fn parse_part(part: Option<&str>) -> Option<u32> {
    let part = part?;
    if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
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
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in ["", "2.", ".1", "2.1.3", "a.b", "-1", "10000.1", "2 .1", "US-"] {
            assert!(StoryNumber::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn sorts_numerically() {
        let n = |s| StoryNumber::parse(s).expect("valid");
        assert!(n("2.9") < n("2.10"));
        assert!(n("2.9").sort_key() < n("2.10").sort_key());
        assert!(n("1.99") < n("2"));
        assert_eq!(n("3.2").sort_key(), 30_020);
    }
}
