//! Skills: versioned prompt documents. The built-in ones ship in the binary as version 1;
//! a tenant publishes later versions, pins are served by number, and results per version
//! show which prompt works.

use loopctl_api::*;
use loopctl_store::{SkillResultRecord, SkillVersionRecord, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::{ANYONE, App, AppError, AppResult, HUMANS, MANAGERS, Principal, event, object, require};

/// The skills every tenant has, written for loopctl's own commands.
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "loopctl:orchestrate",
        "The build loop, round by round, for the orchestrator",
        include_str!("../skills/orchestrate.md"),
    ),
    ("loopctl:review", "An independent review of one story", include_str!("../skills/review.md")),
    (
        "loopctl:verify-artifacts",
        "Checking reported artifacts against the repository",
        include_str!("../skills/verify-artifacts.md"),
    ),
    ("loopctl:contract", "Taking on a story as an implementation agent", include_str!("../skills/contract.md")),
];

fn built_in(name: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    BUILT_IN.iter().find(|(n, _, _)| *n == name)
}

fn valid_name(name: &str) -> AppResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(AppError::field("name", "use letters, digits and : - _ . (e.g. team:review)")) }
}

impl App {
    pub async fn list_skills(&self, who: &Principal) -> AppResult<Vec<SkillView>> {
        require(who, ANYONE, "list skills")?;
        let stored = self.store.skill_versions(who.tenant_id, None).await?;
        let mut views: Vec<SkillView> = BUILT_IN
            .iter()
            .map(|(name, description, _)| SkillView {
                name: (*name).into(),
                description: Some((*description).into()),
                current_version: 1,
                built_in: true,
                versions: vec![1],
            })
            .collect();
        for version in &stored {
            match views.iter_mut().find(|v| v.name == version.name) {
                Some(view) => {
                    view.versions.push(version.version);
                    view.current_version = view.current_version.max(version.version);
                }
                None => views.push(SkillView {
                    name: version.name.clone(),
                    description: version.changelog.clone(),
                    current_version: version.version,
                    built_in: false,
                    versions: vec![version.version],
                }),
            }
        }
        Ok(views)
    }

    /// The latest version of a skill, or the pinned one.
    pub async fn get_skill(&self, who: &Principal, name: &str, version: Option<i64>) -> AppResult<SkillVersionView> {
        require(who, ANYONE, "read skills")?;
        let stored = self.store.skill_versions(who.tenant_id, Some(name)).await?;
        let wanted = match version {
            Some(v) => Some(v),
            None => stored.last().map(|v| v.version).or(built_in(name).map(|_| 1)),
        };
        let Some(wanted) = wanted else {
            return Err(AppError::new(ErrorCode::NotFound, format!("no skill `{name}`; see `loopctl skill list`")));
        };
        if let Some(found) = stored.iter().find(|v| v.version == wanted) {
            return Ok(SkillVersionView {
                name: found.name.clone(),
                version: found.version,
                prompt_text: found.prompt_text.clone(),
                changelog: found.changelog.clone(),
                created_by: found.created_by.clone(),
                built_in: false,
            });
        }
        match (wanted, built_in(name)) {
            (1, Some((name, _, text))) => Ok(SkillVersionView {
                name: (*name).into(),
                version: 1,
                prompt_text: (*text).into(),
                changelog: None,
                created_by: "loopctl".into(),
                built_in: true,
            }),
            _ => Err(AppError::not_found(format!("version {wanted} of skill `{name}`"))),
        }
    }

    /// Publishes the next version of a skill (user keys).
    pub async fn publish_skill(
        &self,
        who: &Principal,
        name: &str,
        request: PublishSkill,
    ) -> AppResult<SkillVersionView> {
        require(who, HUMANS, "publish skills")?;
        valid_name(name)?;
        let prompt_text = crate::text("prompt_text", &request.prompt_text, 200_000)?;
        for _ in 0..5 {
            let stored = self.store.skill_versions(who.tenant_id, Some(name)).await?;
            let base = if built_in(name).is_some() { 1 } else { 0 };
            let version = stored.last().map_or(base, |v| v.version).max(base) + 1;
            let record = SkillVersionRecord {
                id: Uuid::now_v7(),
                tenant_id: who.tenant_id,
                name: name.to_string(),
                version,
                prompt_text: prompt_text.clone(),
                changelog: request.changelog.clone().or(request.description.clone()),
                created_by: format!("{}:{}", who.role, who.key_name),
                created_at: self.now(),
            };
            let audit = event(
                who,
                None,
                ("skill", record.id),
                "published",
                json!({}),
                json!({"name": name, "version": version}),
            );
            match self.commit(vec![WriteOp::InsertSkillVersion(record.clone()), audit]).await {
                Ok(_) => {
                    return Ok(SkillVersionView {
                        name: record.name,
                        version,
                        prompt_text: record.prompt_text,
                        changelog: record.changelog,
                        created_by: record.created_by,
                        built_in: false,
                    });
                }
                // Someone published the same version number at the same moment: take the next.
                Err(err) if err.code == ErrorCode::Conflict => continue,
                Err(err) => return Err(err),
            }
        }
        Err(AppError::new(ErrorCode::VersionConflict, "the skill is being published concurrently; retry"))
    }

    /// Records how a story went with a skill version (orchestrators and users).
    pub async fn record_skill_result(
        &self,
        who: &Principal,
        name: &str,
        request: RecordSkillResult,
    ) -> AppResult<SkillResultAnswer> {
        require(who, MANAGERS, "record skill results")?;
        if !matches!(request.result.as_str(), "pass" | "fail") {
            return Err(AppError::field("result", "must be pass or fail"));
        }
        let version = match request.version {
            Some(v) => v,
            None => self.get_skill(who, name, None).await?.version,
        };
        self.get_skill(who, name, Some(version)).await?;
        if let Some(story) = request.story_id {
            self.story_of(who, story).await?;
        }
        let record = SkillResultRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            name: name.to_string(),
            version,
            story_id: request.story_id,
            result: request.result,
            metrics: object("metrics", request.metrics)?,
            created_at: self.now(),
        };
        self.commit(vec![WriteOp::InsertSkillResult(record.clone())]).await?;
        Ok(SkillResultAnswer {
            skill_result: SkillResultView {
                id: record.id,
                name: record.name,
                version,
                story_id: record.story_id,
                result: record.result,
                metrics: record.metrics,
            },
        })
    }

    /// Pass/fail per version, so an orchestrator can see which prompt works.
    pub async fn skill_stats(&self, who: &Principal, name: &str) -> AppResult<SkillStats> {
        require(who, ANYONE, "read skill results")?;
        let results = self.store.skill_results(who.tenant_id, name).await?;
        let mut versions: Vec<i64> = results.iter().map(|r| r.version).collect();
        versions.sort_unstable();
        versions.dedup();
        let versions = versions
            .into_iter()
            .map(|version| {
                let mine: Vec<&SkillResultRecord> = results.iter().filter(|r| r.version == version).collect();
                let passed = mine.iter().filter(|r| r.result == "pass").count();
                #[expect(clippy::cast_precision_loss, reason = "result counts are small")]
                let pass_rate =
                    if mine.is_empty() { 0.0 } else { (passed as f64 * 1000.0 / mine.len() as f64).round() / 10.0 };
                VersionStats { version, results: mine.len(), passed, failed: mine.len() - passed, pass_rate }
            })
            .collect();
        Ok(SkillStats { name: name.to_string(), versions })
    }
}
