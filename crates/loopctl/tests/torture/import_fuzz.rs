//! Random imports against a real server on a SQLite file: documents of the right shape with
//! random mutations (wrong types, huge numbers, duplicate numbers, unknown and cyclic
//! dependencies, deep nesting). The parser never panics or 5xxs, a refusal is the error
//! shape, and a refused import leaves the project as it was.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use loopctl_test_support::Server;
use loopctl_test_support::fixtures::create_project;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::support::*;

/// A breakdown of the right shape: 1–3 epics of 0–4 stories, 0–2 criteria each, and
/// dependencies between random numbers (which may run in a circle).
fn breakdown() -> impl Strategy<Value = Value> {
    let epics = prop::collection::vec(prop::collection::vec(0..3_usize, 0..5), 1..4);
    (epics, prop::collection::vec((0..12_usize, 0..12_usize), 0..4), prop::collection::vec((1..4_i64, 1..4_i64), 0..3))
        .prop_map(|(epics, story_deps, epic_deps)| {
            let mut numbers = Vec::new();
            let epics: Vec<Value> = epics
                .iter()
                .enumerate()
                .map(|(e, stories)| {
                    let stories: Vec<Value> = stories
                        .iter()
                        .enumerate()
                        .map(|(s, criteria)| {
                            let number = format!("{}.{}", e + 1, s + 1);
                            numbers.push(number.clone());
                            let criteria: Vec<Value> = (0..*criteria)
                                .map(|c| json!({"id": format!("AC-{number}.{c}"), "description": "holds"}))
                                .collect();
                            json!({"number": number, "title": format!("Story {number}"),
                                   "acceptance_criteria": criteria, "estimated_hours": 2})
                        })
                        .collect();
                    json!({"number": e + 1, "title": format!("Epic {}", e + 1), "stories": stories})
                })
                .collect();
            let story_deps: Vec<Value> = story_deps
                .iter()
                .filter(|_| !numbers.is_empty())
                .map(|(a, b)| json!({"story": numbers[a % numbers.len()], "depends_on": numbers[b % numbers.len()]}))
                .collect();
            let epic_deps: Vec<Value> = epic_deps.iter().map(|(a, b)| json!({"epic": a, "depends_on": b})).collect();
            json!({"epics": epics, "story_dependencies": story_deps, "epic_dependencies": epic_deps})
        })
}

/// A value that does not belong where it is put.
fn misfit() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!(-9_007_199_254_740_993_i64)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("9999.99999")),
        Just(json!([])),
        Just(json!({})),
        (1..200_usize).prop_map(nested),
    ]
}

/// `depth` arrays inside each other (past the server's nesting limits from 33 on).
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!("core"), |inner, i| if i % 2 == 0 { json!([inner]) } else { json!({"deeper": inner}) })
}

/// What is done to a well-shaped document.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the n-th node (in document order, modulo their count) with a misfit.
    Replace(usize, Value),
    /// Remove the n-th object member.
    Drop(usize),
    /// Copy a story into its epic again (a duplicate number in one body).
    DuplicateStory(usize),
    /// Copy an epic (a duplicate epic number).
    DuplicateEpic(usize),
    /// Depend on a story that is not there.
    UnknownDependency(usize),
    /// Two stories that depend on each other, or one on itself.
    Cycle(usize, usize),
    /// Deeply nested metadata on a story.
    DeepMetadata(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), misfit()).prop_map(|(n, v)| Mutation::Replace(n, v)),
        1 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::DuplicateStory),
        1 => any::<usize>().prop_map(Mutation::DuplicateEpic),
        1 => any::<usize>().prop_map(Mutation::UnknownDependency),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Cycle(a, b)),
        1 => (any::<usize>(), 20..80_usize).prop_map(|(n, d)| Mutation::DeepMetadata(n, d)),
    ]
}

fn stories_of(doc: &mut Value) -> Vec<&mut Value> {
    match doc.get_mut("epics").and_then(Value::as_array_mut) {
        Some(epics) => {
            epics.iter_mut().filter_map(|e| e.get_mut("stories").and_then(Value::as_array_mut)).flatten().collect()
        }
        None => Vec::new(),
    }
}

/// The document's `story_dependencies` array, when it is one.
fn story_deps(doc: &mut Value) -> Option<&mut Vec<Value>> {
    doc.get_mut("story_dependencies").and_then(Value::as_array_mut)
}

fn apply(doc: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::Replace(n, with) => {
            let count = count_nodes(doc);
            replace_nth(doc, n % count, with, &mut 0);
        }
        Mutation::Drop(n) => {
            let count = count_nodes(doc);
            drop_member(doc, n % count, &mut 0);
        }
        Mutation::DuplicateStory(n) => {
            if let Some(epics) = doc.get_mut("epics").and_then(Value::as_array_mut) {
                let epic = n % epics.len().max(1);
                if let Some(stories) =
                    epics.get_mut(epic).and_then(|e| e.get_mut("stories")).and_then(Value::as_array_mut)
                    && let Some(first) = stories.first().cloned()
                {
                    stories.push(first);
                }
            }
        }
        Mutation::DuplicateEpic(n) => {
            if let Some(epics) = doc.get_mut("epics").and_then(Value::as_array_mut)
                && !epics.is_empty()
            {
                let copy = epics[n % epics.len()].clone();
                epics.push(copy);
            }
        }
        Mutation::UnknownDependency(n) => {
            let target = format!("{}.{}", 90 + n % 9, 1 + n % 7);
            let from = stories_of(doc).first().map(|st| st["number"].clone()).unwrap_or(json!("1.1"));
            if let Some(deps) = story_deps(doc) {
                deps.push(json!({"story": from, "depends_on": target}));
            }
        }
        Mutation::Cycle(a, b) => {
            let numbers: Vec<Value> = stories_of(doc).iter().map(|st| st["number"].clone()).collect();
            if !numbers.is_empty()
                && let Some(deps) = story_deps(doc)
            {
                let (x, y) = (&numbers[a % numbers.len()], &numbers[b % numbers.len()]);
                deps.push(json!({"story": x, "depends_on": y}));
                deps.push(json!({"story": y, "depends_on": x}));
            }
        }
        Mutation::DeepMetadata(n, depth) => {
            let mut stories = stories_of(doc);
            let len = stories.len();
            if len > 0
                && let Some(story) = stories[n % len].as_object_mut()
            {
                story.insert("metadata".into(), nested(*depth));
            }
        }
    }
}

fn count_nodes(doc: &Value) -> usize {
    1 + match doc {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `target`-th node in document order; answers whether it did.
fn replace_nth(node: &mut Value, target: usize, with: &Value, seen: &mut usize) -> bool {
    if *seen == target {
        *node = with.clone();
        return true;
    }
    *seen += 1;
    match node {
        Value::Array(items) => items.iter_mut().any(|child| replace_nth(child, target, with, seen)),
        Value::Object(map) => map.values_mut().any(|child| replace_nth(child, target, with, seen)),
        _ => false,
    }
}

/// Removes a member of the first object at or after the `target`-th node.
fn drop_member(node: &mut Value, target: usize, seen: &mut usize) -> bool {
    *seen += 1;
    if *seen > target
        && let Value::Object(map) = node
        && let Some(key) = map.keys().next().cloned()
    {
        map.remove(&key);
        return true;
    }
    match node {
        Value::Array(items) => items.iter_mut().any(|child| drop_member(child, target, seen)),
        Value::Object(map) => map.values_mut().any(|child| drop_member(child, target, seen)),
        _ => false,
    }
}

/// What an import may change: the export without its metadata (which has the time).
async fn contents(api: &Api, key: &str, project: &str) -> Value {
    let mut export = api.get(key, &format!("/api/v1/projects/{project}/export")).await.ok(200).clone();
    export.as_object_mut().expect("an export object").remove("export_metadata");
    export
}

fn story_count(export: &Value) -> usize {
    export["epics"]
        .as_array()
        .map_or(0, |epics| epics.iter().map(|e| e["stories"].as_array().map_or(0, Vec::len)).sum())
}

/// A random document is POSTed to `/projects/:id/import` (of a new empty project, or with
/// `merge` to one that holds a breakdown): never a 5xx or a dropped connection; a refusal
/// is the JSON error shape and leaves the project's export (so its story count) as it was;
/// an accepted import adds stories only when the project was empty.
#[test]
fn the_import_parser_never_panics_and_refuses_cleanly() {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (server, t, seeded) = runtime.block_on(async {
        let server = Server::sqlite().await;
        let t = server.tenant("Importers").await;
        unleash(&server, &t.user).await;
        let seeded = seed_with(&server, &t.orch, "Merge target", &flat_doc(3)).await;
        (server, t, seeded)
    });
    let api: Api = (*server).clone();
    let config = Config { cases: 256, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = (breakdown(), prop::collection::vec(mutation(), 0..4), any::<bool>());
    let case = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let refused: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let outcome = runner.run(&strategy, |(mut doc, mutations, merge)| {
        for mutation in &mutations {
            apply(&mut doc, mutation);
        }
        let n = case.fetch_add(1, Ordering::SeqCst) + 1;
        let verdict = runtime.block_on(one_import(&api, &t.orch, &seeded.project, n, &doc, merge));
        match verdict {
            Ok(None) => {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Some(code)) => {
                *refused.lock().expect("tally").entry(code).or_default() += 1;
            }
            Err(message) => return Err(TestCaseError::fail(format!("{message}\nmutations: {mutations:?}"))),
        }
        Ok(())
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
    eprintln!(
        "{} random imports: {} accepted, refused cleanly by code {:?}, in {:?}",
        case.into_inner(),
        accepted.into_inner(),
        refused.into_inner().expect("tally"),
        started.elapsed()
    );
    drop(server);
}

/// One import; answers `None` when it was accepted, the refusal's code when it was refused
/// cleanly, or what was wrong.
async fn one_import(
    api: &Api,
    key: &str,
    merge_target: &str,
    case: usize,
    doc: &Value,
    merge: bool,
) -> Result<Option<String>, String> {
    let project =
        if merge { merge_target.to_string() } else { create_project(api, key, &format!("Fuzz {case}")).await };
    let before = contents(api, key, &project).await;
    let path = format!("/api/v1/projects/{project}/import{}", if merge { "?merge=true" } else { "" });
    let call = try_call(api, reqwest::Method::POST, key, &path, doc).await;
    let resp = call.answer.map_err(|err| format!("{err} (a panic drops the connection)\ndoc: {doc}"))?;
    if resp.status >= 500 {
        return Err(format!("import answered {} {}\ndoc: {doc}", resp.status, resp.body));
    }
    let after = contents(api, key, &project).await;
    if (200..300).contains(&resp.status) {
        if !merge && story_count(&after) != story_count(doc) {
            return Err(format!(
                "accepted, but {} stories of {} are there\ndoc: {doc}",
                story_count(&after),
                story_count(doc)
            ));
        }
        return Ok(None);
    }
    if let Some(problem) = resp.shape_problem() {
        return Err(format!("{problem}\ndoc: {doc}"));
    }
    if resp.body.get("error").is_none() {
        return Err(format!("a {} refusal without the error shape: {}\ndoc: {doc}", resp.status, resp.body));
    }
    if after != before {
        return Err(format!(
            "refused with {} {}, but the project changed ({} → {} stories)\ndoc: {doc}",
            resp.status,
            resp.body,
            story_count(&before),
            story_count(&after)
        ));
    }
    Ok(resp.code().map(str::to_string))
}
