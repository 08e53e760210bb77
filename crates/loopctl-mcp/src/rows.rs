//! Compact list rows: an agent pays for every field of every row in context tokens, so lists
//! answer a few fields per row by default, more on request (`fields`), in pages.

use serde_json::{Map, Value, json};

/// The fields of a story row unless `fields` asks for more.
pub(crate) const STORY_ROW: &[&str] = &["id", "number", "title", "agent_status", "verified_status"];

/// What a transition's answer keeps of its story: where it stands, the claim to fence later
/// writes with, and how many criteria it has. The criteria texts (often most of a story's
/// size) are in `get_story`; repeating them at every step would cost the agent context.
pub(crate) const TRANSITION_STORY: &[&str] = &[
    "id",
    "number",
    "title",
    "agent_status",
    "verified_status",
    "claim_epoch",
    "lease_expires_at",
    "ac_count",
    "escalated",
];

/// The ids of a story's acceptance criteria, named as the server names them: a criterion's
/// own `id`, else `AC-<position>` (`criteria_of` in loopctl-app).
pub(crate) fn ac_ids(story: &Value) -> Vec<String> {
    let criteria = story["acceptance_criteria"].as_array().map(Vec::as_slice).unwrap_or_default();
    criteria
        .iter()
        .enumerate()
        .map(|(index, criterion)| criterion["id"].as_str().map_or_else(|| format!("AC-{}", index + 1), str::to_string))
        .collect()
}

pub(crate) const DEFAULT_LIMIT: u32 = 20;
pub(crate) const MAX_LIMIT: u32 = 100;
/// The largest page the API answers.
const API_MAX_PAGE: u32 = 500;

/// A page: `limit` (default 20, at most 100) rows from `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Page {
    pub fn new(limit: Option<u32>, offset: Option<u32>) -> Page {
        Page { limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT), offset: offset.unwrap_or(0) }
    }

    /// The API's `page`/`page_size` window that holds this page, and how many rows of it to
    /// skip. The API pages by whole pages (at most 500 rows): an offset between pages reads
    /// from the start when that fits, else the page holding the offset (fewer rows, and
    /// `next_offset` says where to go on).
    pub fn window(self) -> (u32, u32, usize) {
        if self.offset.is_multiple_of(self.limit) {
            (self.offset / self.limit + 1, self.limit, 0)
        } else if self.offset + self.limit <= API_MAX_PAGE {
            (1, self.offset + self.limit, self.offset as usize)
        } else {
            (self.offset / self.limit + 1, self.limit, (self.offset % self.limit) as usize)
        }
    }

    /// `{total, limit, offset, next_offset?}` for an answer of `returned` rows.
    pub fn meta(self, total: u64, returned: usize) -> Value {
        let mut meta = json!({"total": total, "limit": self.limit, "offset": self.offset});
        let next = u64::from(self.offset) + returned as u64;
        if next < total {
            meta["next_offset"] = json!(next);
        }
        meta
    }
}

/// The row with only `base` fields plus those named in `fields` (`["*"]` keeps every field).
pub(crate) fn pick(row: &Value, base: &[&str], fields: Option<&[String]>) -> Value {
    let Some(object) = row.as_object() else {
        return row.clone();
    };
    if fields.is_some_and(|f| f.iter().any(|name| name == "*")) {
        return row.clone();
    }
    let mut out = Map::new();
    let extra = fields.unwrap_or_default().iter().map(String::as_str);
    for name in base.iter().copied().chain(extra) {
        if let Some(value) = object.get(name) {
            out.insert(name.to_string(), value.clone());
        }
    }
    Value::Object(out)
}

pub(crate) fn pick_all(rows: &[Value], base: &[&str], fields: Option<&[String]>) -> Vec<Value> {
    rows.iter().map(|row| pick(row, base, fields)).collect()
}

/// `1.1, 1.2, 2.1` — the story numbers of rows, for a summary line.
pub(crate) fn numbers(rows: &[Value]) -> String {
    let numbers: Vec<&str> = rows.iter().filter_map(|row| row["number"].as_str()).collect();
    if numbers.is_empty() { "none".to_string() } else { numbers.join(", ") }
}

/// One line about a story: `story 1.1 "Sign-up endpoint": contracted, unverified`.
pub(crate) fn story_line(story: &Value) -> String {
    format!(
        "story {} \"{}\": {}, {}",
        story["number"].as_str().unwrap_or("?"),
        story["title"].as_str().unwrap_or(""),
        story["agent_status"].as_str().unwrap_or("?"),
        story["verified_status"].as_str().unwrap_or("?"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_between_api_pages_read_from_the_start() {
        assert_eq!(Page::new(None, None).window(), (1, 20, 0));
        assert_eq!(Page::new(Some(10), Some(20)).window(), (3, 10, 0));
        assert_eq!(Page::new(Some(10), Some(5)).window(), (1, 15, 5));
        assert_eq!(Page::new(Some(100), Some(950)).window(), (10, 100, 50));
        assert_eq!(Page::new(Some(1000), None).limit, MAX_LIMIT);
        assert_eq!(Page::new(Some(0), None).limit, 1);
    }

    #[test]
    fn rows_keep_base_fields_and_those_asked_for() {
        let row = json!({"id": "a", "number": "1.1", "title": "t", "ac_count": 2, "epic_id": "e"});
        assert_eq!(pick(&row, &["id", "number"], None), json!({"id": "a", "number": "1.1"}));
        let fields = vec!["ac_count".to_string(), "missing".to_string()];
        assert_eq!(pick(&row, &["id"], Some(&fields)), json!({"id": "a", "ac_count": 2}));
        assert_eq!(pick(&row, &["id"], Some(&["*".to_string()])), row);
    }

    #[test]
    fn criteria_ids_are_their_own_or_their_position() {
        let story =
            json!({"acceptance_criteria": [{"id": "AC-1.1.1", "description": "a"}, "plain", {"description": "b"}]});
        assert_eq!(ac_ids(&story), vec!["AC-1.1.1", "AC-2", "AC-3"]);
        assert!(ac_ids(&json!({"acceptance_criteria": "not a list"})).is_empty());
    }

    #[test]
    fn meta_says_where_the_next_page_starts() {
        let page = Page::new(Some(2), Some(0));
        assert_eq!(page.meta(5, 2)["next_offset"], 2);
        assert!(page.meta(2, 2).get("next_offset").is_none());
    }
}
