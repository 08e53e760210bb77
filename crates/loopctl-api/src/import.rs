//! Imports of a project's breakdown.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub epics_created: usize,
    pub epics_updated: usize,
    pub stories_created: usize,
    pub stories_updated: usize,
    /// Existing stories a merge import did not name (they are kept): the first
    /// `ORPHAN_SAMPLE` of them; `stories_orphaned_count` says how many there are.
    pub stories_orphaned: Vec<OrphanedStory>,
    pub stories_orphaned_count: usize,
    pub dependencies_created: usize,
    pub dependencies_existing: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct OrphanedStory {
    pub number: String,
    pub title: String,
}

/// `GET /projects/:id/export`: the whole breakdown in the format `import` reads back, with
/// statuses and progress that an import ignores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectExport {
    pub export_metadata: ExportMetadata,
    pub project: ExportedProject,
    /// In epic-number order, each with its stories in story order.
    pub epics: Vec<ExportedEpic>,
    pub story_dependencies: Vec<ExportedStoryDependency>,
    pub epic_dependencies: Vec<ExportedEpicDependency>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportMetadata {
    pub exported_at: DateTime<Utc>,
    pub loopctl_version: String,
    pub project_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedProject {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    pub tech_stack: Option<String>,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedEpic {
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: i64,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub stories: Vec<ExportedStory>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedStory {
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub acceptance_criteria: Value,
    pub estimated_hours: Option<f64>,
    pub agent_status: String,
    pub verified_status: String,
    pub assigned_agent_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub reported_done_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// `story` depends on `depends_on` (story numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedStoryDependency {
    pub story: String,
    pub depends_on: String,
}

/// `epic` depends on `depends_on` (epic numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedEpicDependency {
    pub epic: i64,
    pub depends_on: i64,
}

/// A piece of an export, in the order a streamed export sends them: `Head`, then each epic
/// (its `stories` left empty) followed by its stories in pages, then the dependency pages.
#[derive(Debug, Clone)]
pub enum ExportPart {
    Head { export_metadata: ExportMetadata, project: ExportedProject },
    Epic(ExportedEpic),
    Stories(Vec<ExportedStory>),
    StoryDependencies(Vec<ExportedStoryDependency>),
    EpicDependencies(Vec<ExportedEpicDependency>),
}

/// Where a streamed export stands, so each part knows what to close and open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Start,
    Epics,
    StoryDependencies,
    EpicDependencies,
}

/// Writes a `ProjectExport` document a part at a time: the bytes of all parts and then
/// `finish` are exactly one JSON document of the shape `ProjectExport` has, so a client
/// decodes a streamed export as it decodes a whole one, and the server never holds more
/// than one page of it.
#[derive(Debug)]
pub struct ExportWriter {
    section: Section,
    /// Nothing written yet in the current list (epics, an epic's stories, or an edge list).
    list_empty: bool,
    /// An epic's `stories` list is open.
    in_epic: bool,
    epic_has_stories: bool,
}

impl Default for ExportWriter {
    fn default() -> Self {
        ExportWriter { section: Section::Start, list_empty: true, in_epic: false, epic_has_stories: false }
    }
}

impl ExportWriter {
    /// The bytes of one part.
    ///
    /// # Errors
    /// When a part is out of order (a story before its epic, an epic after the edges), or
    /// does not serialize.
    pub fn part(&mut self, part: &ExportPart) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::new();
        match part {
            ExportPart::Head { export_metadata, project } => {
                self.expect(self.section == Section::Start, "the head comes first")?;
                out.extend_from_slice(b"{\"export_metadata\":");
                serde_json::to_writer(&mut out, export_metadata)?;
                out.extend_from_slice(b",\"project\":");
                serde_json::to_writer(&mut out, project)?;
                out.extend_from_slice(b",\"epics\":[");
                self.section = Section::Epics;
                self.list_empty = true;
            }
            ExportPart::Epic(epic) => {
                self.expect(self.section == Section::Epics, "epics come before the dependencies")?;
                self.close_epic(&mut out);
                if !self.list_empty {
                    out.push(b',');
                }
                let head = serde_json::to_vec(&ExportedEpic { stories: Vec::new(), ..epic.clone() })?;
                // `stories` is the last field: reopen its empty list for the pages to come.
                let open = head.strip_suffix(b"[]}").ok_or_else(|| self.refuse("an epic ends with its stories"))?;
                out.extend_from_slice(open);
                out.push(b'[');
                self.list_empty = false;
                self.in_epic = true;
                self.epic_has_stories = false;
            }
            ExportPart::Stories(stories) => {
                self.expect(self.in_epic, "stories follow their epic")?;
                for story in stories {
                    if self.epic_has_stories {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, story)?;
                    self.epic_has_stories = true;
                }
            }
            ExportPart::StoryDependencies(edges) => {
                self.enter(Section::StoryDependencies, &mut out)?;
                self.items(edges, &mut out)?;
            }
            ExportPart::EpicDependencies(edges) => {
                self.enter(Section::EpicDependencies, &mut out)?;
                self.items(edges, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The closing bytes.
    ///
    /// # Errors
    /// When no head was written.
    pub fn finish(mut self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::new();
        self.enter(Section::EpicDependencies, &mut out)?;
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    fn items<T: Serialize>(&mut self, items: &[T], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for item in items {
            if !self.list_empty {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, item)?;
            self.list_empty = false;
        }
        Ok(())
    }

    fn close_epic(&mut self, out: &mut Vec<u8>) {
        if self.in_epic {
            out.extend_from_slice(b"]}");
            self.in_epic = false;
        }
    }

    /// Closes the sections before `target` and opens it (an empty list for any skipped).
    fn enter(&mut self, target: Section, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        self.expect(self.section != Section::Start, "the head comes first")?;
        self.expect(self.section <= target, "the dependency lists come in order")?;
        while self.section < target {
            match self.section {
                Section::Epics => {
                    self.close_epic(out);
                    out.extend_from_slice(b"],\"story_dependencies\":[");
                    self.section = Section::StoryDependencies;
                }
                Section::StoryDependencies => {
                    out.extend_from_slice(b"],\"epic_dependencies\":[");
                    self.section = Section::EpicDependencies;
                }
                Section::Start | Section::EpicDependencies => {}
            }
            self.list_empty = true;
        }
        Ok(())
    }

    fn expect(&self, holds: bool, rule: &str) -> Result<(), serde_json::Error> {
        if holds { Ok(()) } else { Err(self.refuse(rule)) }
    }

    fn refuse(&self, rule: &str) -> serde_json::Error {
        serde::ser::Error::custom(format!("export parts out of order: {rule}"))
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "test code: a failed expectation is the report")]
mod tests {
    use super::*;

    fn story(number: &str) -> ExportedStory {
        ExportedStory {
            number: number.into(),
            title: format!("Story {number}"),
            description: None,
            acceptance_criteria: serde_json::json!([{"id": "ac-1"}]),
            estimated_hours: Some(1.5),
            agent_status: "pending".into(),
            verified_status: "unverified".into(),
            assigned_agent_id: None,
            assigned_at: None,
            reported_done_at: None,
            verified_at: None,
            rejected_at: None,
            rejection_reason: None,
            metadata: serde_json::json!({}),
        }
    }

    fn epic(number: i64, stories: Vec<ExportedStory>) -> ExportedEpic {
        ExportedEpic {
            number,
            title: format!("Epic {number}"),
            description: Some("d".into()),
            phase: None,
            position: number,
            metadata: serde_json::json!({"k": [1, 2]}),
            stories,
        }
    }

    fn whole(epics: Vec<ExportedEpic>, with_edges: bool) -> ProjectExport {
        ProjectExport {
            export_metadata: ExportMetadata {
                exported_at: Utc::now(),
                loopctl_version: "0".into(),
                project_id: Uuid::nil(),
                tenant_id: Uuid::nil(),
            },
            project: ExportedProject {
                name: "P".into(),
                slug: "p".into(),
                description: None,
                repo_url: None,
                tech_stack: None,
                status: "active".into(),
                metadata: serde_json::json!({}),
            },
            epics,
            story_dependencies: if with_edges {
                vec![
                    ExportedStoryDependency { story: "1.2".into(), depends_on: "1.1".into() },
                    ExportedStoryDependency { story: "2.1".into(), depends_on: "1.2".into() },
                ]
            } else {
                Vec::new()
            },
            epic_dependencies: if with_edges {
                vec![ExportedEpicDependency { epic: 2, depends_on: 1 }]
            } else {
                Vec::new()
            },
        }
    }

    /// Streams `doc` the way the server does, with stories and edges in pages of one.
    fn streamed(doc: &ProjectExport) -> Vec<u8> {
        let mut writer = ExportWriter::default();
        let head = ExportPart::Head { export_metadata: doc.export_metadata.clone(), project: doc.project.clone() };
        let mut out = writer.part(&head).unwrap();
        for e in &doc.epics {
            out.extend(writer.part(&ExportPart::Epic(e.clone())).unwrap());
            for s in &e.stories {
                out.extend(writer.part(&ExportPart::Stories(vec![s.clone()])).unwrap());
            }
        }
        for d in &doc.story_dependencies {
            out.extend(writer.part(&ExportPart::StoryDependencies(vec![d.clone()])).unwrap());
        }
        for d in &doc.epic_dependencies {
            out.extend(writer.part(&ExportPart::EpicDependencies(vec![d.clone()])).unwrap());
        }
        out.extend(writer.finish().unwrap());
        out
    }

    #[test]
    fn a_streamed_export_is_byte_for_byte_the_whole_document() {
        let cases = [
            whole(vec![epic(1, vec![story("1.1"), story("1.2")]), epic(2, vec![]), epic(3, vec![story("3.1")])], true),
            whole(vec![epic(1, vec![])], false),
            whole(Vec::new(), false),
            whole(vec![epic(1, vec![story("1.1")])], true),
        ];
        for doc in cases {
            assert_eq!(String::from_utf8(streamed(&doc)).unwrap(), serde_json::to_string(&doc).unwrap());
        }
    }

    #[test]
    fn parts_out_of_order_are_refused_not_written_as_broken_json() {
        let mut writer = ExportWriter::default();
        assert!(writer.part(&ExportPart::Stories(vec![story("1.1")])).is_err());
        let doc = whole(Vec::new(), false);
        writer.part(&ExportPart::Head { export_metadata: doc.export_metadata, project: doc.project }).unwrap();
        assert!(writer.part(&ExportPart::Stories(vec![story("1.1")])).is_err(), "a story before any epic");
        writer.part(&ExportPart::EpicDependencies(Vec::new())).unwrap();
        assert!(writer.part(&ExportPart::Epic(epic(1, Vec::new()))).is_err(), "an epic after the edges");
        assert!(writer.part(&ExportPart::StoryDependencies(Vec::new())).is_err(), "edge lists in order");
    }
}
