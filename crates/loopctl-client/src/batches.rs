//! A large import sent as several requests, each small enough for the server to parse and
//! write as one batch: the server's memory stays bounded by the batch, not the file.
//!
//! The file's epics are cut into batches of at most `batch_size` stories (an epic larger
//! than a batch is split: its later stories travel with the epic's fields again, which a
//! merge leaves as they are); the dependencies travel with the last batch, when every
//! story they name exists. Each batch lands whole or not at all; batches after the first
//! merge, so a run that stopped midway is finished by running it again with `--merge`.

use serde_json::{Map, Value};

/// Stories per request when the caller does not say.
pub const DEFAULT_IMPORT_BATCH: usize = 5_000;

/// The documents to send, in order: the file itself when it holds at most `batch_size`
/// stories (or is not shaped like an import, so that the server judges it), else batches.
pub fn import_batches(doc: &Value, batch_size: usize) -> Vec<Value> {
    let batch_size = batch_size.max(1);
    let Some(epics) = doc.get("epics").and_then(Value::as_array) else {
        return vec![doc.clone()];
    };
    let stories_of = |epic: &Value| epic.get("stories").and_then(Value::as_array).map_or(0, Vec::len);
    if epics.iter().map(stories_of).sum::<usize>() <= batch_size || !epics.iter().all(Value::is_object) {
        return vec![doc.clone()];
    }
    let shell = |epics: Vec<Value>| {
        let mut batch: Map<String, Value> = doc
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k == "project")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        batch.insert("epics".into(), Value::Array(epics));
        batch
    };
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut room = batch_size;
    for epic in epics {
        let stories = epic.get("stories").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut rest = stories.as_slice();
        loop {
            let take = rest.len().min(room);
            let mut part = epic.clone();
            if let Some(fields) = part.as_object_mut() {
                fields.insert("stories".into(), Value::Array(rest[..take].to_vec()));
            }
            current.push(part);
            rest = &rest[take..];
            room -= take;
            if room == 0 {
                batches.push(shell(std::mem::take(&mut current)));
                room = batch_size;
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    if !current.is_empty() || batches.is_empty() {
        batches.push(shell(current));
    }
    if let Some(last) = batches.last_mut() {
        for key in ["story_dependencies", "epic_dependencies"] {
            if let Some(edges) = doc.get(key) {
                last.insert(key.into(), edges.clone());
            }
        }
    }
    batches.into_iter().map(Value::Object).collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "test code: a failed expectation is the report")]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(epic_sizes: &[usize]) -> Value {
        let epics: Vec<Value> = epic_sizes
            .iter()
            .enumerate()
            .map(|(e, n)| {
                let stories: Vec<Value> =
                    (1..=*n).map(|s| json!({"number": format!("{}.{s}", e + 1), "title": "t"})).collect();
                json!({"number": e + 1, "title": format!("E{}", e + 1), "stories": stories})
            })
            .collect();
        json!({"project": {"name": "p"}, "epics": epics, "story_dependencies": [{"story": "1.2", "depends_on": "1.1"}]})
    }

    fn numbers(batch: &Value) -> Vec<String> {
        batch["epics"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["stories"].as_array().unwrap().iter().map(|s| s["number"].as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn a_small_file_is_sent_as_it_is() {
        let d = doc(&[3, 2]);
        assert_eq!(import_batches(&d, 5), vec![d.clone()]);
        let odd = json!({"epics": "not a list"});
        assert_eq!(import_batches(&odd, 1), vec![odd.clone()]);
    }

    #[test]
    fn a_large_file_is_cut_into_batches_that_keep_every_story_once_and_edges_last() {
        let d = doc(&[7, 0, 3, 6]);
        let batches = import_batches(&d, 4);
        let sizes: Vec<usize> = batches.iter().map(|b| numbers(b).len()).collect();
        assert_eq!(sizes, vec![4, 4, 4, 4]);
        let all: Vec<String> = batches.iter().flat_map(numbers).collect();
        assert_eq!(all, numbers(&d), "every story once, in the file's order");
        assert!(batches[..3].iter().all(|b| b.get("story_dependencies").is_none()));
        assert_eq!(batches[3]["story_dependencies"], d["story_dependencies"]);
        assert!(batches.iter().all(|b| b["project"] == d["project"]));
        // Epic 1 was split: its fields travel with both parts.
        assert_eq!(batches[1]["epics"][0]["title"], "E1");
    }
}
