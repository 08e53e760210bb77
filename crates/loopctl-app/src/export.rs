//! The export of a project, read a page at a time: the server streams it, so its memory
//! is one page whatever the project's size (`loopctl_api::ExportWriter` writes the bytes).

use loopctl_api::*;
use loopctl_store::{EdgeLevel, EpicRecord};
use uuid::Uuid;

use crate::import::exported_story;
use crate::{ANYONE, App, AppResult, Principal, require};

/// Stories and edges per page of an export.
const PAGE: i64 = 500;

/// An export under way (`App::export`): `next_part` answers the head, then each epic and
/// its stories, then the dependency edges, then `None`.
pub struct ExportCursor {
    app: App,
    tenant_id: Uuid,
    project_id: Uuid,
    head: Option<ExportPart>,
    /// Epics still to send, by number.
    epics: std::vec::IntoIter<EpicRecord>,
    step: Step,
}

enum Step {
    NextEpic,
    Stories { epic_id: Uuid, after: Option<i64> },
    Edges { level: EdgeLevel, after: Option<Uuid> },
    Done,
}

impl App {
    /// Begins an export of the project (any role of the tenant may read it).
    pub async fn export(&self, who: &Principal, project_id: Uuid) -> AppResult<ExportCursor> {
        require(who, ANYONE, "export projects")?;
        let project = self.project_of(who, project_id).await?;
        let mut epics = self.store.epics(who.tenant_id, project_id).await?;
        epics.sort_by_key(|e| e.number);
        let head = ExportPart::Head {
            export_metadata: ExportMetadata {
                exported_at: self.now(),
                loopctl_version: env!("CARGO_PKG_VERSION").into(),
                project_id: project.id,
                tenant_id: who.tenant_id,
            },
            project: ExportedProject {
                name: project.name,
                slug: project.slug,
                description: project.description,
                repo_url: project.repo_url,
                tech_stack: project.tech_stack,
                status: project.status,
                metadata: project.metadata,
            },
        };
        Ok(ExportCursor {
            app: self.clone(),
            tenant_id: who.tenant_id,
            project_id,
            head: Some(head),
            epics: epics.into_iter(),
            step: Step::NextEpic,
        })
    }
}

impl ExportCursor {
    /// The next part of the export, or `None` when it is complete.
    ///
    /// # Errors
    /// When the store fails; the export is then incomplete and must not be used.
    pub async fn next_part(&mut self) -> AppResult<Option<ExportPart>> {
        if let Some(head) = self.head.take() {
            return Ok(Some(head));
        }
        let store = &self.app.store;
        loop {
            match self.step {
                Step::NextEpic => {
                    let Some(e) = self.epics.next() else {
                        self.step = Step::Edges { level: EdgeLevel::Story, after: None };
                        continue;
                    };
                    self.step = Step::Stories { epic_id: e.id, after: None };
                    return Ok(Some(ExportPart::Epic(ExportedEpic {
                        number: e.number,
                        title: e.title,
                        description: e.description,
                        phase: e.phase,
                        position: e.position,
                        metadata: e.metadata,
                        stories: Vec::new(),
                    })));
                }
                Step::Stories { epic_id, after } => {
                    let page = store.epic_stories_after(self.tenant_id, epic_id, after, PAGE).await?;
                    self.step = match page.last() {
                        Some(last) if page.len() as i64 == PAGE => {
                            Step::Stories { epic_id, after: Some(last.sort_key) }
                        }
                        _ => Step::NextEpic,
                    };
                    if !page.is_empty() {
                        return Ok(Some(ExportPart::Stories(page.iter().map(exported_story).collect())));
                    }
                }
                Step::Edges { level, after } => {
                    let page = store.numbered_edges(self.tenant_id, self.project_id, level, after, PAGE).await?;
                    self.step = match (page.last(), level) {
                        (Some(last), _) if page.len() as i64 == PAGE => Step::Edges { level, after: Some(last.id) },
                        (_, EdgeLevel::Story) => Step::Edges { level: EdgeLevel::Epic, after: None },
                        (_, EdgeLevel::Epic) => Step::Done,
                    };
                    if page.is_empty() {
                        continue;
                    }
                    return Ok(Some(match level {
                        EdgeLevel::Story => ExportPart::StoryDependencies(
                            page.into_iter()
                                .map(|e| ExportedStoryDependency { story: e.from, depends_on: e.to })
                                .collect(),
                        ),
                        EdgeLevel::Epic => ExportPart::EpicDependencies(
                            page.into_iter()
                                .filter_map(|e| {
                                    Some(ExportedEpicDependency {
                                        epic: e.from.parse().ok()?,
                                        depends_on: e.to.parse().ok()?,
                                    })
                                })
                                .collect(),
                        ),
                    }));
                }
                Step::Done => return Ok(None),
            }
        }
    }
}
