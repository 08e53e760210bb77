//! The work breakdown: projects, epics and stories (content, never status).

use loopctl_api::*;
use loopctl_core::{AgentStatus, StoryNumber, StoryState, VerifiedStatus};
use loopctl_store::{EpicRecord, ProjectRecord, StoryFilter, StoryRecord, WriteOp};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::bootstrap::valid_slug;
use crate::view::{FromRecord, FromRecordAt};
use crate::{
    ANYONE, App, AppError, AppResult, HUMANS, MANAGERS, Principal, event, metadata, opt_text, require, story_status,
    text,
};

/// Where the runner's configuration lives in a project's metadata.
const RUNNER_KEY: &str = "runner";

/// The parts of a project's metadata only a user changes, each through its own call: the
/// runner's configuration (`PUT /projects/:id/runner`: an orchestrator cannot point the
/// verifier at a repository or a check of its choosing) and the budget (`PUT
/// /projects/:id/budget`: the orchestrator it stops cannot raise it). A metadata write keeps
/// them as they were, whatever it sends.
const USER_SETTINGS: [&str; 2] = [RUNNER_KEY, crate::usage::BUDGET_KEY];

/// A new project's metadata: user settings come only through their own calls.
fn without_user_settings(mut metadata: Value) -> Value {
    keep_user_settings(&Value::Null, &mut metadata);
    metadata
}

fn keep_user_settings(before: &Value, after: &mut Value) {
    for key in USER_SETTINGS {
        match before.get(key) {
            Some(kept) => after[key] = kept.clone(),
            None => {
                if let Some(map) = after.as_object_mut() {
                    map.remove(key);
                }
            }
        }
    }
}

/// Story list query (`GET /stories`).
#[derive(Debug, Clone, Default)]
pub struct StoryQuery {
    pub project_id: Uuid,
    pub epic_id: Option<Uuid>,
    pub agent_status: Option<String>,
    pub verified_status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl crate::view::FromRecord<loopctl_store::EpicCounts> for Stages {
    fn from_record(c: &loopctl_store::EpicCounts) -> Stages {
        Stages {
            pending: c.pending,
            contracted: c.contracted,
            in_flight: c.assigned + c.implementing,
            stale: c.stale,
            awaiting_verification: c.reported,
            verified: c.verified,
            rejected: c.rejected,
            escalated: c.escalated,
        }
    }
}

impl App {
    /// Finds a project by UUID, slug or name.
    pub async fn resolve_project(&self, who: &Principal, reference: &str) -> AppResult<ProjectRecord> {
        let reference = reference.trim();
        if let Ok(id) = Uuid::parse_str(reference) {
            return self.project_of(who, id).await;
        }
        if let Some(project) = self.store.project_by_slug(who.tenant_id, reference).await? {
            return Ok(project);
        }
        let projects = self.store.projects(who.tenant_id, true).await?;
        projects
            .into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(reference))
            .ok_or_else(|| AppError::not_found(format!("project `{reference}`")))
    }

    pub(crate) async fn project_of(&self, who: &Principal, id: Uuid) -> AppResult<ProjectRecord> {
        self.store.project(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("project"))
    }

    pub(crate) async fn epic_of(&self, who: &Principal, id: Uuid) -> AppResult<EpicRecord> {
        self.store.epic(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("epic"))
    }

    pub(crate) async fn story_of(&self, who: &Principal, id: Uuid) -> AppResult<StoryRecord> {
        self.store.story(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("story"))
    }

    /// Finds a story by UUID, or by number (`2.1`, `US-2.1`) within a project.
    pub async fn resolve_story(
        &self,
        who: &Principal,
        project: Option<Uuid>,
        reference: &str,
    ) -> AppResult<StoryRecord> {
        if let Ok(id) = Uuid::parse_str(reference.trim()) {
            return self.story_of(who, id).await;
        }
        let number = StoryNumber::parse(reference).map_err(AppError::validation)?;
        let project = project.ok_or_else(|| {
            AppError::validation(format!("story {number} is named by number; say which project (project_id)"))
        })?;
        self.store
            .story_by_number(who.tenant_id, project, &number.to_string())
            .await?
            .ok_or_else(|| AppError::not_found(format!("story {number}")))
    }

    pub async fn create_project(&self, who: &Principal, request: CreateProject) -> AppResult<ProjectView> {
        require(who, MANAGERS, "create projects")?;
        let name = text("name", &request.name, 255)?;
        let slug = request.slug.unwrap_or_else(|| crate::bootstrap::slugify(&name));
        if !valid_slug(&slug) {
            return Err(AppError::field("slug", "must be 2 to 64 lowercase letters, digits or dashes"));
        }
        let at = self.now();
        let project = ProjectRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            name,
            slug,
            repo_url: opt_text("repo_url", request.repo_url.as_deref(), 2000)?,
            description: opt_text("description", request.description.as_deref(), 50_000)?,
            tech_stack: opt_text("tech_stack", request.tech_stack.as_deref(), 2000)?,
            mission: opt_text("mission", request.mission.as_deref(), 2000)?,
            status: "active".into(),
            metadata: without_user_settings(metadata(request.metadata)?),
            created_at: at,
            updated_at: at,
        };
        let audit =
            event(who, Some(project.id), ("project", project.id), "created", json!({}), json!({"slug": project.slug}));
        self.commit(vec![WriteOp::InsertProject(project.clone()), audit]).await.map_err(|err| {
            if err.code == ErrorCode::Conflict {
                AppError::new(
                    ErrorCode::Conflict,
                    format!("a project with slug `{}` already exists; pick another slug", project.slug),
                )
            } else {
                err
            }
        })?;
        Ok(ProjectView::from_record(&project))
    }

    pub async fn list_projects(&self, who: &Principal, include_archived: bool) -> AppResult<Vec<ProjectView>> {
        require(who, ANYONE, "list projects")?;
        Ok(self.store.projects(who.tenant_id, include_archived).await?.iter().map(ProjectView::from_record).collect())
    }

    pub async fn get_project(&self, who: &Principal, id: Uuid) -> AppResult<ProjectView> {
        match who.scope {
            // A dispatched token may read the project of its own story.
            Some(scope) if self.story_of(who, scope.story_id).await?.project_id == id => {}
            _ => require(who, ANYONE, "read projects")?,
        }
        let project = self.project_of(who, id).await?;
        let epics = self.store.epics(who.tenant_id, id).await?;
        // The epics' maintained counts, not a count of the project's rows.
        let tally = self.store.project_tally(who.tenant_id, id, self.now()).await?;
        let mut view = ProjectView::from_record(&project);
        view.epic_count = Some(epics.len());
        view.story_count = Some(tally.total);
        Ok(view)
    }

    pub async fn update_project(&self, who: &Principal, id: Uuid, patch: UpdateProject) -> AppResult<ProjectView> {
        require(who, MANAGERS, "change projects")?;
        let mut project = self.project_of(who, id).await?;
        if let Some(name) = patch.name {
            project.name = text("name", &name, 255)?;
        }
        if patch.repo_url.is_some() {
            project.repo_url = opt_text("repo_url", patch.repo_url.as_deref(), 2000)?;
        }
        if patch.description.is_some() {
            project.description = opt_text("description", patch.description.as_deref(), 50_000)?;
        }
        if patch.tech_stack.is_some() {
            project.tech_stack = opt_text("tech_stack", patch.tech_stack.as_deref(), 2000)?;
        }
        if patch.mission.is_some() {
            project.mission = opt_text("mission", patch.mission.as_deref(), 2000)?;
        }
        if let Some(status) = patch.status {
            if !matches!(status.as_str(), "active" | "archived") {
                return Err(AppError::field("status", "must be active or archived"));
            }
            project.status = status;
        }
        if patch.metadata.is_some() {
            let before = std::mem::take(&mut project.metadata);
            project.metadata = metadata(patch.metadata)?;
            keep_user_settings(&before, &mut project.metadata);
        }
        project.updated_at = self.now();
        let audit = event(who, Some(id), ("project", id), "updated", json!({}), json!({"status": project.status}));
        self.commit(vec![WriteOp::UpdateProject(project.clone()), audit]).await?;
        Ok(ProjectView::from_record(&project))
    }

    /// Sets what `loopctl runner` checks for this project: the repository it clones (a path
    /// or git URL), the command it runs in a clean copy of each reported commit, and its time
    /// limit. Users only, audited.
    pub async fn set_project_runner(
        &self,
        who: &Principal,
        id: Uuid,
        config: RunnerConfig,
    ) -> AppResult<RunnerSettings> {
        require(who, HUMANS, "configure the verifier runner")?;
        let mut project = self.project_of(who, id).await?;
        let repo = text("repo", &config.repo, 2000)?;
        let check_command = opt_text("check_command", config.check_command.as_deref(), 2000)?;
        let timeout_seconds = config.timeout_seconds.unwrap_or(600);
        if !(1..=24 * 3600).contains(&timeout_seconds) {
            return Err(AppError::field("timeout_seconds", "must be from 1 to 86400"));
        }
        let settings = RunnerSettings { repo, check_command, timeout_seconds };
        let runner = serde_json::to_value(&settings).map_err(|_| AppError::internal())?;
        let before = project.metadata.get(RUNNER_KEY).cloned().unwrap_or(Value::Null);
        if !project.metadata.is_object() {
            project.metadata = json!({});
        }
        project.metadata[RUNNER_KEY] = runner.clone();
        project.updated_at = self.now();
        let audit = event(
            who,
            Some(id),
            ("project", id),
            "runner_configured",
            json!({"runner": before}),
            json!({"runner": runner}),
        );
        self.commit(vec![WriteOp::UpdateProject(project), audit]).await?;
        Ok(settings)
    }

    /// Archiving keeps everything; the project leaves default listings.
    pub async fn archive_project(&self, who: &Principal, id: Uuid) -> AppResult<ProjectView> {
        require(who, HUMANS, "archive projects")?;
        let patch = UpdateProject { status: Some("archived".into()), ..UpdateProject::default() };
        self.update_project(who, id, patch).await
    }

    pub async fn create_epic(&self, who: &Principal, project_id: Uuid, request: CreateEpic) -> AppResult<EpicView> {
        require(who, MANAGERS, "create epics")?;
        let project = self.project_of(who, project_id).await?;
        let number = epic_number("number", &request.number)?;
        let at = self.now();
        let epic = EpicRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            project_id: project.id,
            number,
            title: text("title", &request.title, 500)?,
            description: opt_text("description", request.description.as_deref(), 50_000)?,
            phase: opt_text("phase", request.phase.as_deref(), 255)?,
            position: position(request.position.unwrap_or(0))?,
            metadata: metadata(request.metadata)?,
            created_at: at,
            updated_at: at,
        };
        let audit = event(who, Some(project.id), ("epic", epic.id), "created", json!({}), json!({"number": number}));
        self.commit(vec![WriteOp::InsertEpic(epic.clone()), audit]).await.map_err(|err| {
            if err.code == ErrorCode::Conflict {
                AppError::new(
                    ErrorCode::DuplicateNumber,
                    format!("epic {number} already exists in this project; pick a different number"),
                )
            } else {
                err
            }
        })?;
        Ok(EpicView::from_record(&epic))
    }

    pub async fn list_epics(&self, who: &Principal, project_id: Uuid) -> AppResult<Vec<EpicView>> {
        require(who, ANYONE, "list epics")?;
        self.project_of(who, project_id).await?;
        let epics = self.store.epics(who.tenant_id, project_id).await?;
        let per_epic = self.store.stage_counts(who.tenant_id, project_id, self.now()).await?;
        Ok(epics
            .iter()
            .map(|epic| {
                let c = loopctl_store::EpicCounts::of(&per_epic, epic.id);
                let mut view = EpicView::from_record(epic);
                view.story_count = Some(count(c.total));
                view.completion_percentage = Some(percentage(count(c.verified), count(c.total)));
                view
            })
            .collect())
    }

    pub async fn get_epic(&self, who: &Principal, id: Uuid) -> AppResult<EpicView> {
        require(who, ANYONE, "read epics")?;
        let epic = self.epic_of(who, id).await?;
        let filter = StoryFilter { epic_id: Some(id), limit: i64::MAX, ..StoryFilter::default() };
        let (stories, _) = self.store.stories(who.tenant_id, filter).await?;
        let mut view = EpicView::from_record(&epic);
        view.story_count = Some(stories.len());
        let at = self.now();
        view.stories = Some(stories.iter().map(|record| StoryBrief::from_record_at(record, at)).collect());
        Ok(view)
    }

    pub async fn update_epic(&self, who: &Principal, id: Uuid, patch: UpdateEpic) -> AppResult<EpicView> {
        require(who, MANAGERS, "change epics")?;
        let mut epic = self.epic_of(who, id).await?;
        if let Some(title) = patch.title {
            epic.title = text("title", &title, 500)?;
        }
        if patch.description.is_some() {
            epic.description = opt_text("description", patch.description.as_deref(), 50_000)?;
        }
        if patch.phase.is_some() {
            epic.phase = opt_text("phase", patch.phase.as_deref(), 255)?;
        }
        if let Some(pos) = patch.position {
            epic.position = position(pos)?;
        }
        if patch.metadata.is_some() {
            epic.metadata = metadata(patch.metadata)?;
        }
        epic.updated_at = self.now();
        let audit = event(who, Some(epic.project_id), ("epic", id), "updated", json!({}), json!({"title": epic.title}));
        self.commit(vec![WriteOp::UpdateEpic(epic.clone()), audit]).await?;
        Ok(EpicView::from_record(&epic))
    }

    pub async fn delete_epic(&self, who: &Principal, id: Uuid) -> AppResult<()> {
        require(who, HUMANS, "delete epics")?;
        let epic = self.epic_of(who, id).await?;
        let audit =
            event(who, Some(epic.project_id), ("epic", id), "deleted", json!({"number": epic.number}), json!({}));
        self.commit(vec![WriteOp::DeleteEpic { tenant_id: who.tenant_id, id }, audit]).await?;
        Ok(())
    }

    /// Creates a story in an epic (`epic_id`), or in a project by `epic_number`.
    pub async fn create_story(
        &self,
        who: &Principal,
        epic_id: Option<Uuid>,
        project_id: Option<Uuid>,
        request: CreateStory,
    ) -> AppResult<StoryView> {
        require(who, MANAGERS, "create stories")?;
        let epic = match (epic_id, project_id) {
            (Some(epic_id), _) => self.epic_of(who, epic_id).await?,
            (None, Some(project_id)) => {
                self.project_of(who, project_id).await?;
                let raw = request.epic_number.as_ref().ok_or_else(|| AppError::field("epic_number", "is required"))?;
                let number = epic_number("epic_number", raw)?;
                let epics = self.store.epics(who.tenant_id, project_id).await?;
                epics.into_iter().find(|e| e.number == number).ok_or_else(|| {
                    AppError::field("epic_number", format!("epic {number} not found in this project; create it first"))
                })?
            }
            (None, None) => return Err(AppError::validation("say which epic or project the story belongs to")),
        };
        let number = story_number("number", &request.number)?;
        let at = self.now();
        let story = StoryRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            project_id: epic.project_id,
            epic_id: epic.id,
            number: number.to_string(),
            sort_key: number.sort_key(),
            title: text("title", &request.title, 500)?,
            description: opt_text("description", request.description.as_deref(), 50_000)?,
            acceptance_criteria: criteria("acceptance_criteria", request.acceptance_criteria)?,
            estimated_hours: hours(request.estimated_hours.as_ref())?,
            metadata: metadata(request.metadata)?,
            state: StoryState::default(),
            lock_version: 0,
            created_at: at,
            updated_at: at,
        };
        let audit = event(who, Some(story.project_id), ("story", story.id), "created", json!({}), story_status(&story));
        self.commit(vec![WriteOp::InsertStory(story.clone()), audit]).await.map_err(|err| {
            if err.code == ErrorCode::Conflict {
                AppError::new(ErrorCode::DuplicateNumber,
                    format!("story {number} already exists in this project; pick a different number, or import with merge=true to update it"),
                )
            } else {
                err
            }
        })?;
        Ok(StoryView::from_record_at(&story, self.now()))
    }

    pub async fn list_stories(&self, who: &Principal, query: StoryQuery) -> AppResult<Page<StoryView>> {
        require(who, ANYONE, "list stories")?;
        self.project_of(who, query.project_id).await?;
        let agent_status = query
            .agent_status
            .as_deref()
            .map(str::parse::<AgentStatus>)
            .transpose()
            .map_err(|m| AppError::field("agent_status", m))?;
        let verified_status = query
            .verified_status
            .as_deref()
            .map(str::parse::<VerifiedStatus>)
            .transpose()
            .map_err(|m| AppError::field("verified_status", m))?;
        let limit = query.limit.unwrap_or(100).clamp(1, 500);
        let offset = query.offset.unwrap_or(0).max(0);
        let filter = StoryFilter {
            project_id: Some(query.project_id),
            epic_id: query.epic_id,
            agent_status,
            verified_status,
            limit,
            offset,
        };
        let (stories, total_count) = self.store.stories(who.tenant_id, filter).await?;
        let at = self.now();
        Ok(Page {
            data: stories.iter().map(|record| StoryView::from_record_at(record, at)).collect(),
            meta: PageMeta { total_count, limit, offset },
        })
    }

    pub async fn update_story(&self, who: &Principal, id: Uuid, patch: UpdateStory) -> AppResult<StoryView> {
        require(who, MANAGERS, "change stories")?;
        let mut story = self.story_of(who, id).await?;
        if let Some(title) = patch.title {
            story.title = text("title", &title, 500)?;
        }
        if patch.description.is_some() {
            story.description = opt_text("description", patch.description.as_deref(), 50_000)?;
        }
        if patch.acceptance_criteria.is_some() {
            story.acceptance_criteria = criteria("acceptance_criteria", patch.acceptance_criteria)?;
        }
        if patch.estimated_hours.is_some() {
            story.estimated_hours = hours(patch.estimated_hours.as_ref())?;
        }
        if patch.metadata.is_some() {
            story.metadata = metadata(patch.metadata)?;
        }
        story.updated_at = self.now();
        let audit =
            event(who, Some(story.project_id), ("story", id), "updated", json!({}), json!({"title": story.title}));
        self.commit(vec![WriteOp::UpdateStoryContent(story.clone()), audit]).await?;
        Ok(StoryView::from_record_at(&story, self.now()))
    }

    pub async fn delete_story(&self, who: &Principal, id: Uuid) -> AppResult<()> {
        require(who, HUMANS, "delete stories")?;
        let story = self.story_of(who, id).await?;
        let audit = event(who, Some(story.project_id), ("story", id), "deleted", story_status(&story), json!({}));
        self.commit(vec![WriteOp::DeleteStory { tenant_id: who.tenant_id, id }, audit]).await?;
        Ok(())
    }

    /// Story ids and titles of a project, in order (for the benchmark's fixtures).
    pub async fn all_stories_for_bench(&self, who: &Principal, project_id: Uuid) -> AppResult<Vec<(Uuid, String)>> {
        Ok(self.all_stories(who, project_id).await?.into_iter().map(|s| (s.id, s.title)).collect())
    }

    pub(crate) async fn all_stories(&self, who: &Principal, project_id: Uuid) -> AppResult<Vec<StoryRecord>> {
        let filter = StoryFilter { project_id: Some(project_id), limit: i64::MAX, ..StoryFilter::default() };
        Ok(self.store.stories(who.tenant_id, filter).await?.0)
    }

    /// Progress from one aggregate query: flat cost at any project size.
    pub async fn project_progress(&self, who: &Principal, project_id: Uuid) -> AppResult<Progress> {
        require(who, ANYONE, "read progress")?;
        let project = self.project_of(who, project_id).await?;
        let used = self.store.project_token_totals(who.tenant_id, project_id).await?;
        let epics = self.store.epics(who.tenant_id, project_id).await?;
        let per_epic = self.store.stage_counts(who.tenant_id, project_id, self.now()).await?;
        let epic_rows: Vec<EpicProgress> = epics
            .iter()
            .map(|epic| {
                let c = loopctl_store::EpicCounts::of(&per_epic, epic.id);
                EpicProgress {
                    id: epic.id,
                    number: epic.number,
                    title: epic.title.clone(),
                    total_stories: c.total,
                    verified: c.verified,
                    complete: c.complete(),
                    stages: Stages::from_record(&c),
                }
            })
            .collect();
        let sum = loopctl_store::EpicCounts::sum(&per_epic);
        Ok(Progress {
            total_stories: count(sum.total),
            stories_by_agent_status: json!({
                "pending": sum.pending,
                "contracted": sum.contracted,
                "assigned": sum.assigned,
                "implementing": sum.implementing,
                // Verified stories are counted as verified, never as waiting in reported_done.
                "reported_done": sum.reported,
            }),
            stories_by_verified_status: json!({
                "unverified": sum.total - sum.verified - sum.rejected,
                "verified": sum.verified,
                "rejected": sum.rejected,
            }),
            total_epics: epics.len(),
            epics_completed: epic_rows.iter().filter(|e| e.complete).count(),
            verification_percentage: percentage(count(sum.verified), count(sum.total)),
            estimated_hours_total: hours_out(sum.hours_total),
            estimated_hours_completed: hours_out(sum.hours_verified),
            in_flight: sum.in_flight(),
            escalated: count(sum.escalated),
            stages: Stages::from_record(&sum),
            complete: sum.complete(),
            token_usage: TokenTotalsView::from_record(&used),
            budget: crate::usage::budget_status(&project, &used),
            epics: epic_rows,
        })
    }
}

/// A story count as the `usize` the views use.
fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn percentage(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "story counts are far below 2^52")]
    let ratio = part as f64 * 100.0 / whole as f64;
    (ratio * 10.0).round() / 10.0
}

fn position(value: i64) -> AppResult<i64> {
    if value < 0 {
        return Err(AppError::field("position", "must be 0 or more"));
    }
    Ok(value)
}

/// Epic numbers are positive integers; clients send them as numbers or numeric strings.
pub(crate) fn epic_number(field: &str, value: &Value) -> AppResult<i64> {
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(AppError::field(field, "must be a positive whole number")),
    }
}

/// Story numbers are `E.S` strings; integers are accepted and stringified.
pub(crate) fn story_number(field: &str, value: &Value) -> AppResult<StoryNumber> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(AppError::field(field, "must be a story number like \"2.1\"")),
    };
    StoryNumber::parse(&text).map_err(|m| AppError::field(field, m))
}

/// Acceptance criteria: an array of objects; `description` is kept as `criterion` too,
/// as the reference stores it.
pub(crate) fn criteria(field: &str, value: Option<Value>) -> AppResult<Value> {
    let items = match value {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(AppError::field(
                field,
                "must be an array of objects like [{\"id\":\"AC-1\",\"description\":\"Feature works\"}]",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (idx, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(mut map) => {
                if !map.contains_key("criterion")
                    && let Some(description) = map.get("description").cloned()
                {
                    map.insert("criterion".into(), description);
                }
                if !map.contains_key("id") {
                    map.insert("id".into(), json!(format!("AC-{}", idx + 1)));
                }
                out.push(Value::Object(map));
            }
            Value::String(criterion) => out.push(json!({"id": format!("AC-{}", idx + 1), "criterion": criterion})),
            _ => {
                return Err(AppError::field(
                    &format!("{field}[{idx}]"),
                    "must be an object like {\"id\":\"AC-1\",\"description\":\"Feature works\"}",
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

const MAX_ESTIMATED_HOURS: f64 = 1_000_000.0;

pub(crate) fn hours(value: Option<&Value>) -> AppResult<Option<f64>> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    // Bounded, so totals over a whole project stay finite on every store.
    match parsed {
        Some(h) if (0.0..=MAX_ESTIMATED_HOURS).contains(&h) => Ok(Some(h + 0.0)),
        _ => Err(AppError::field("estimated_hours", "must be a number of hours from 0 to 1000000")),
    }
}

/// Hours as they leave the server: never `-0.0`, and never a non-finite number (which JSON
/// would carry as `null`). Every write is bounded already; this covers rows stored before.
pub(crate) fn hours_out(hours: f64) -> f64 {
    if hours.is_finite() { hours + 0.0 } else { 0.0 }
}

impl App {
    pub async fn story_detail(&self, who: &Principal, id: Uuid) -> AppResult<StoryDetail> {
        // A dispatched token may read its own story, and only that one.
        who.check_story_scope(id)?;
        let story = self.story_of(who, id).await?;
        let project = self.project_of(who, story.project_id).await?;
        let deps = self.store.dependencies(who.tenant_id, story.project_id).await?;
        let artifacts = self.store.artifacts(who.tenant_id, id).await?;
        let reviews = self.store.reviews(who.tenant_id, id).await?;
        let verifications: Vec<VerificationView> =
            self.store.verifications(who.tenant_id, id).await?.iter().map(FromRecord::from_record).collect();
        Ok(StoryDetail {
            story: StoryView::from_record_at(&story, self.now()),
            dependencies: deps
                .stories
                .iter()
                .filter(|d| d.from_id == id)
                .map(|d| StoryDependencyRef { id: d.id, story_id: d.from_id, depends_on_story_id: d.to_id })
                .collect(),
            artifacts: artifacts.iter().map(FromRecord::from_record).collect(),
            reviews: reviews.iter().map(FromRecord::from_record).collect(),
            latest_verification: verifications.last().cloned(),
            verifications,
            project_mission: project.mission,
            criteria: self.story_criteria(who, id).await?,
            reported_commit_sha: crate::evidence::latest_commit(&artifacts, &story),
            token_usage: crate::usage::story_totals(&self.store.token_usage(who.tenant_id, id).await?),
        })
    }
}

/// Refuses unless the caller manages work (orchestrator, user, superadmin).
///
/// # Errors
/// `forbidden` for agent keys.
pub fn require_manager(who: &Principal) -> AppResult<()> {
    require(who, MANAGERS, "manage work")
}
