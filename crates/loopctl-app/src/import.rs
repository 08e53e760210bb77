//! Import and export of a whole work breakdown as one JSON document (reference format).
//!
//! An import is validated completely (shapes, duplicate numbers, unresolved references,
//! cycles across new and existing edges) before anything is written, then written as one
//! batch: it lands whole or not at all. Merge mode updates content, never status.

use loopctl_api::*;
use std::collections::{HashMap, HashSet};

use loopctl_core::graph::find_cycle;
use loopctl_core::{Role, StoryState};
use loopctl_store::{DependencyRecord, EpicRecord, StoryRecord, WriteOp};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::work::{criteria, epic_number, hours, story_number};
use crate::{App, AppError, AppResult, Principal, event, metadata, opt_text, require, text};

const IMPORT_ROLES: &[Role] = &[Role::Orchestrator, Role::User, Role::Superadmin];
pub const MAX_IMPORT_STORIES: usize = 100_000;
/// How many kept-but-not-named stories a merge import lists by name.
pub const ORPHAN_SAMPLE: usize = 20;

struct ParsedEpic {
    number: i64,
    title: String,
    description: Option<String>,
    phase: Option<String>,
    position: i64,
    metadata: Option<Value>,
    stories: Vec<ParsedStory>,
}

struct ParsedStory {
    number: String,
    sort_key: i64,
    title: String,
    description: Option<String>,
    acceptance_criteria: Option<Value>,
    estimated_hours: Option<f64>,
    metadata: Option<Value>,
}

fn at_path(path: &str, err: AppError) -> AppError {
    let message = format!("{path}.{}", err.message);
    AppError { message, ..err }
}

fn parse_epics(doc: &Value) -> AppResult<Vec<ParsedEpic>> {
    let Some(epics) = doc.get("epics").and_then(Value::as_array) else {
        return Err(AppError::field("epics", "is required and must be an array"));
    };
    let mut parsed = Vec::with_capacity(epics.len());
    let mut epic_numbers = HashSet::new();
    let mut story_numbers = HashSet::new();
    let mut n_stories = 0usize;
    for (idx, epic) in epics.iter().enumerate() {
        let path = format!("epics[{idx}]");
        let Some(fields) = epic.as_object() else {
            return Err(AppError::validation(format!("{path}: must be an object")));
        };
        let number =
            epic_number("number", fields.get("number").unwrap_or(&Value::Null)).map_err(|e| at_path(&path, e))?;
        if !epic_numbers.insert(number) {
            return Err(AppError::new(
                ErrorCode::DuplicateNumberInRequest,
                format!("duplicate epic number {number} in the import"),
            ));
        }
        let title = text("title", str_field(fields, "title"), 500).map_err(|e| at_path(&path, e))?;
        let stories_json = fields.get("stories").and_then(Value::as_array).cloned().unwrap_or_default();
        n_stories += stories_json.len();
        if n_stories > MAX_IMPORT_STORIES {
            return Err(AppError::validation(format!(
                "an import holds at most {MAX_IMPORT_STORIES} stories; split it and use merge=true"
            )));
        }
        let mut stories = Vec::with_capacity(stories_json.len());
        for (sidx, story) in stories_json.iter().enumerate() {
            let path = format!("{path}.stories[{sidx}]");
            let Some(sf) = story.as_object() else {
                return Err(AppError::validation(format!("{path}: must be an object")));
            };
            let number =
                story_number("number", sf.get("number").unwrap_or(&Value::Null)).map_err(|e| at_path(&path, e))?;
            if !story_numbers.insert(number.to_string()) {
                return Err(AppError::new(
                    ErrorCode::DuplicateNumberInRequest,
                    format!("duplicate story number {number} in the import"),
                ));
            }
            for seeded in ["initial_agent_status", "initial_verified_status"] {
                if sf.get(seeded).is_some_and(|v| !v.is_null() && v != "pending" && v != "unverified") {
                    return Err(AppError::validation(format!(
                        "{path}.{seeded}: imports cannot seed a status; import the story, then use backfill for work done outside loopctl"
                    )));
                }
            }
            let ac = match sf.get("acceptance_criteria") {
                None => None,
                Some(v) => Some(criteria("acceptance_criteria", Some(v.clone())).map_err(|e| at_path(&path, e))?),
            };
            stories.push(ParsedStory {
                sort_key: number.sort_key(),
                number: number.to_string(),
                title: text("title", str_field(sf, "title"), 500).map_err(|e| at_path(&path, e))?,
                description: opt_text("description", sf.get("description").and_then(Value::as_str), 50_000)
                    .map_err(|e| at_path(&path, e))?,
                acceptance_criteria: ac,
                estimated_hours: hours(sf.get("estimated_hours")).map_err(|e| at_path(&path, e))?,
                metadata: free_metadata(sf.get("metadata")).map_err(|e| at_path(&path, e))?,
            });
        }
        parsed.push(ParsedEpic {
            number,
            title,
            description: opt_text("description", fields.get("description").and_then(Value::as_str), 50_000)
                .map_err(|e| at_path(&path, e))?,
            phase: opt_text("phase", fields.get("phase").and_then(Value::as_str), 255)
                .map_err(|e| at_path(&path, e))?,
            position: fields.get("position").and_then(Value::as_i64).unwrap_or(idx as i64).max(0),
            metadata: free_metadata(fields.get("metadata")).map_err(|e| at_path(&path, e))?,
            stories,
        });
    }
    Ok(parsed)
}

/// Metadata checked where the document holds it, so a refusal names its place
/// (`epics[0].stories[3].metadata: …`); absent or null stays absent.
fn free_metadata(value: Option<&Value>) -> AppResult<Option<Value>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(given) => metadata(Some(given.clone())).map(Some),
    }
}

fn str_field<'a>(fields: &'a Map<String, Value>, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `[{"story": "1.2", "depends_on": "1.1"}]` with the reference's aliases.
fn parse_edges(doc: &Value, key: &str, from_keys: &[&str], to_keys: &[&str]) -> AppResult<Vec<(String, String)>> {
    let Some(items) = doc.get(key) else {
        return Ok(Vec::new());
    };
    let Some(items) = items.as_array() else {
        return Err(AppError::field(key, "must be an array"));
    };
    let pick = |item: &Value, keys: &[&str]| -> Option<String> {
        keys.iter().find_map(|k| match item.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    items
        .iter()
        .enumerate()
        .map(|(idx, item)| match (pick(item, from_keys), pick(item, to_keys)) {
            (Some(from), Some(to)) => Ok((from, to)),
            _ => Err(AppError::validation(format!("{key}[{idx}]: needs `{}` and `{}`", from_keys[0], to_keys[0]))),
        })
        .collect()
}

fn canonical_story(reference: &str) -> String {
    loopctl_core::StoryNumber::parse(reference).map_or_else(|_| reference.to_string(), |n| n.to_string())
}

impl App {
    pub async fn import_project(
        &self,
        who: &Principal,
        project_id: Uuid,
        doc: &Value,
        merge: bool,
    ) -> AppResult<ImportSummary> {
        require(who, IMPORT_ROLES, "import work")?;
        let project = self.project_of(who, project_id).await?;
        let epics = parse_epics(doc)?;
        let story_edges =
            parse_edges(doc, "story_dependencies", &["story", "story_number"], &["depends_on", "depends_on_story"])?;
        let epic_edges =
            parse_edges(doc, "epic_dependencies", &["epic", "epic_number"], &["depends_on", "depends_on_epic"])?;

        let existing_epics = self.store.epics(who.tenant_id, project_id).await?;
        // Only the existing stories this import names or refers to: a batch of a large
        // project reads what it touches, not the project.
        let mut named: Vec<String> = epics.iter().flat_map(|e| e.stories.iter().map(|s| s.number.clone())).collect();
        named.extend(story_edges.iter().flat_map(|(from, to)| [canonical_story(from), canonical_story(to)]));
        named.sort();
        named.dedup();
        let existing_stories = self.store.stories_by_number(who.tenant_id, project_id, &named).await?;
        let existing_deps = self.store.dependencies(who.tenant_id, project_id).await?;
        let epic_by_number: HashMap<i64, &EpicRecord> = existing_epics.iter().map(|e| (e.number, e)).collect();
        let story_by_number: HashMap<&str, &StoryRecord> =
            existing_stories.iter().map(|s| (s.number.as_str(), s)).collect();

        if !merge {
            let dup_epics: Vec<i64> =
                epics.iter().map(|e| e.number).filter(|n| epic_by_number.contains_key(n)).collect();
            let dup_stories: Vec<&str> = epics
                .iter()
                .flat_map(|e| e.stories.iter().map(|s| s.number.as_str()))
                .filter(|n| story_by_number.contains_key(n))
                .collect();
            if !dup_epics.is_empty() || !dup_stories.is_empty() {
                return Err(AppError::new(
                    ErrorCode::DuplicateNumber,
                    "import conflicts with existing data; use merge=true to update",
                )
                .with_details(json!({"duplicate_epic_numbers": dup_epics, "duplicate_story_numbers": dup_stories})));
            }
        }

        let at = self.now();
        let mut summary = ImportSummary::default();
        let mut batch = Vec::new();
        let mut epic_ids: HashMap<i64, Uuid> = existing_epics.iter().map(|e| (e.number, e.id)).collect();
        let mut story_ids: HashMap<String, Uuid> = existing_stories.iter().map(|s| (s.number.clone(), s.id)).collect();
        let mut imported_numbers = HashSet::new();
        for epic in &epics {
            let epic_id = match epic_by_number.get(&epic.number) {
                Some(existing) => {
                    let mut updated = (*existing).clone();
                    updated.title = epic.title.clone();
                    updated.description = epic.description.clone().or(updated.description);
                    updated.phase = epic.phase.clone().or(updated.phase);
                    updated.position = epic.position;
                    if let Some(given) = &epic.metadata {
                        updated.metadata = metadata(Some(given.clone()))?;
                    }
                    updated.updated_at = at;
                    batch.push(WriteOp::UpdateEpic(updated));
                    summary.epics_updated += 1;
                    existing.id
                }
                None => {
                    let record = EpicRecord {
                        id: Uuid::now_v7(),
                        tenant_id: who.tenant_id,
                        project_id,
                        number: epic.number,
                        title: epic.title.clone(),
                        description: epic.description.clone(),
                        phase: epic.phase.clone(),
                        position: epic.position,
                        metadata: metadata(epic.metadata.clone())?,
                        created_at: at,
                        updated_at: at,
                    };
                    let id = record.id;
                    batch.push(WriteOp::InsertEpic(record));
                    summary.epics_created += 1;
                    epic_ids.insert(epic.number, id);
                    id
                }
            };
            for story in &epic.stories {
                imported_numbers.insert(story.number.clone());
                match story_by_number.get(story.number.as_str()) {
                    Some(existing) => {
                        let mut updated = (*existing).clone();
                        updated.epic_id = epic_id;
                        updated.title = story.title.clone();
                        updated.description = story.description.clone().or(updated.description);
                        if let Some(ac) = &story.acceptance_criteria {
                            updated.acceptance_criteria = ac.clone();
                        }
                        updated.estimated_hours = story.estimated_hours.or(updated.estimated_hours);
                        if let Some(given) = &story.metadata {
                            updated.metadata = metadata(Some(given.clone()))?;
                        }
                        updated.updated_at = at;
                        batch.push(WriteOp::UpdateStoryContent(updated));
                        summary.stories_updated += 1;
                    }
                    None => {
                        let record = StoryRecord {
                            id: Uuid::now_v7(),
                            tenant_id: who.tenant_id,
                            project_id,
                            epic_id,
                            number: story.number.clone(),
                            sort_key: story.sort_key,
                            title: story.title.clone(),
                            description: story.description.clone(),
                            acceptance_criteria: story.acceptance_criteria.clone().unwrap_or_else(|| json!([])),
                            estimated_hours: story.estimated_hours,
                            metadata: metadata(story.metadata.clone())?,
                            state: StoryState::default(),
                            lock_version: 0,
                            created_at: at,
                            updated_at: at,
                        };
                        story_ids.insert(story.number.clone(), record.id);
                        batch.push(WriteOp::InsertStory(record));
                        summary.stories_created += 1;
                    }
                }
            }
        }
        if merge {
            // Counts and a bounded sample: an answer must not grow with the project.
            let updated_existing = story_by_number.keys().filter(|n| imported_numbers.contains(**n)).count();
            let total = self.store.project_tally(who.tenant_id, project_id, at).await?.total;
            summary.stories_orphaned_count = usize::try_from(total).unwrap_or(0).saturating_sub(updated_existing);
            summary.stories_orphaned = self.orphan_sample(who, project_id, &imported_numbers).await?;
        }

        // Dependencies: resolve, skip existing pairs, then check the whole graph for cycles.
        let mut all_story_edges: Vec<(Uuid, Uuid)> =
            existing_deps.stories.iter().map(|d| (d.from_id, d.to_id)).collect();
        let mut all_epic_edges: Vec<(Uuid, Uuid)> = existing_deps.epics.iter().map(|d| (d.from_id, d.to_id)).collect();
        let mut known_story_edges: HashSet<(Uuid, Uuid)> = all_story_edges.iter().copied().collect();
        let mut known_epic_edges: HashSet<(Uuid, Uuid)> = all_epic_edges.iter().copied().collect();
        let resolve_story = |reference: &str| {
            story_ids.get(&canonical_story(reference)).copied().ok_or_else(|| {
                AppError::validation(format!(
                    "unresolved dependency reference: story '{reference}' not found in import"
                ))
            })
        };
        for (from, to) in &story_edges {
            let pair = (resolve_story(from)?, resolve_story(to)?);
            if pair.0 == pair.1 {
                return Err(AppError::validation(format!("story {from} cannot depend on itself")));
            }
            if !known_story_edges.insert(pair) {
                summary.dependencies_existing += 1;
                continue;
            }
            all_story_edges.push(pair);
            batch.push(WriteOp::InsertStoryDependency(DependencyRecord {
                id: Uuid::now_v7(),
                tenant_id: who.tenant_id,
                project_id,
                from_id: pair.0,
                to_id: pair.1,
                created_at: at,
            }));
            summary.dependencies_created += 1;
        }
        let resolve_epic = |reference: &str| {
            reference.trim().parse::<i64>().ok().and_then(|n| epic_ids.get(&n).copied()).ok_or_else(|| {
                AppError::validation(format!("unresolved dependency reference: epic '{reference}' not found in import"))
            })
        };
        for (from, to) in &epic_edges {
            let pair = (resolve_epic(from)?, resolve_epic(to)?);
            if pair.0 == pair.1 {
                return Err(AppError::validation(format!("epic {from} cannot depend on itself")));
            }
            if !known_epic_edges.insert(pair) {
                summary.dependencies_existing += 1;
                continue;
            }
            all_epic_edges.push(pair);
            batch.push(WriteOp::InsertEpicDependency(DependencyRecord {
                id: Uuid::now_v7(),
                tenant_id: who.tenant_id,
                project_id,
                from_id: pair.0,
                to_id: pair.1,
                created_at: at,
            }));
            summary.dependencies_created += 1;
        }
        if find_cycle(&all_story_edges).is_some() {
            return Err(AppError::new(
                ErrorCode::CycleDetected,
                "the story dependencies of this import form a cycle; remove an edge of the loop",
            ));
        }
        if find_cycle(&all_epic_edges).is_some() {
            return Err(AppError::new(
                ErrorCode::CycleDetected,
                "the epic dependencies of this import form a cycle; remove an edge of the loop",
            ));
        }
        let action = if merge { "merge_imported" } else { "imported" };
        batch.push(event(
            who,
            Some(project.id),
            ("project", project.id),
            action,
            json!({}),
            json!({
                "epics_created": summary.epics_created, "epics_updated": summary.epics_updated,
                "stories_created": summary.stories_created, "stories_updated": summary.stories_updated,
                "dependencies_created": summary.dependencies_created,
            }),
        ));
        self.commit(batch).await?;
        Ok(summary)
    }

    /// The first `ORPHAN_SAMPLE` stories of the project (work order) this import does not
    /// name, read an epic at a time in keyset pages.
    async fn orphan_sample(
        &self,
        who: &Principal,
        project_id: Uuid,
        imported: &HashSet<String>,
    ) -> AppResult<Vec<OrphanedStory>> {
        const PAGE: i64 = 500;
        let mut epics = self.store.epics(who.tenant_id, project_id).await?;
        epics.sort_by_key(|e| (e.position, e.number));
        let mut sample = Vec::new();
        for epic in epics {
            let mut after = None;
            loop {
                let page = self.store.epic_stories_after(who.tenant_id, epic.id, after, PAGE).await?;
                let full = page.len() as i64 == PAGE;
                after = page.last().map(|s| s.sort_key);
                sample.extend(
                    page.into_iter()
                        .filter(|s| !imported.contains(&s.number))
                        .map(|s| OrphanedStory { number: s.number, title: s.title }),
                );
                if sample.len() >= ORPHAN_SAMPLE {
                    sample.truncate(ORPHAN_SAMPLE);
                    return Ok(sample);
                }
                if !full {
                    break;
                }
            }
        }
        Ok(sample)
    }
}

/// A story as the export writes it: content an import reads back, and its progress.
pub(crate) fn exported_story(s: &StoryRecord) -> ExportedStory {
    let st = &s.state;
    ExportedStory {
        number: s.number.clone(),
        title: s.title.clone(),
        description: s.description.clone(),
        acceptance_criteria: s.acceptance_criteria.clone(),
        estimated_hours: s.estimated_hours.map(crate::work::hours_out),
        agent_status: st.agent_status.as_str().into(),
        verified_status: st.verified_status.as_str().into(),
        assigned_agent_id: st.assigned_agent_id,
        assigned_at: st.assigned_at,
        reported_done_at: st.reported_done_at,
        verified_at: st.verified_at,
        rejected_at: st.rejected_at,
        rejection_reason: st.rejection_reason.clone(),
        metadata: s.metadata.clone(),
    }
}
