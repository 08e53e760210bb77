//! Names people and agents use for projects and stories, resolved to records once, here:
//! a project by UUID, slug or name; a story by UUID or number (`2.1`, `US-2.1`).

use loopctl_api::{ProjectAnswer, ProjectView, StoryAnswer, StoryView};

use crate::{Client, ClientError, Method, encode_component};

impl Client {
    /// The project named by its UUID, slug or name.
    ///
    /// # Errors
    /// `not_found` when no project of the tenant has that id, slug or name.
    pub async fn resolve_project(&self, reference: &str) -> Result<ProjectView, ClientError> {
        let path = format!("/api/v1/projects/{}", encode_component(reference.trim()));
        let answer: ProjectAnswer = self.call::<(), _>(Method::GET, &path, None, &[]).await?;
        Ok(answer.project)
    }

    /// The story named by its UUID, or by its number within `project` (`2.1`, `US-2.1`).
    ///
    /// # Errors
    /// `not_found`; `validation_failed` for a number without a project.
    pub async fn resolve_story(&self, project: Option<&str>, reference: &str) -> Result<StoryView, ClientError> {
        let reference = reference.trim();
        if let Ok(id) = uuid::Uuid::parse_str(reference) {
            let answer: loopctl_api::StoryDetailAnswer =
                self.call::<(), _>(Method::GET, &format!("/api/v1/stories/{id}"), None, &[]).await?;
            return Ok(answer.story.story);
        }
        let project = project.ok_or_else(|| {
            ClientError::Config(format!(
                "story `{reference}` is a number: name the project too (--project, or `project` in .loopctl.toml)"
            ))
        })?;
        let number = reference.strip_prefix("US-").or_else(|| reference.strip_prefix("us-")).unwrap_or(reference);
        let path = crate::path_with_query(
            "/api/v1/stories",
            &[("project_id", project.to_string()), ("number", number.to_string())],
        );
        let answer: StoryAnswer = self.call::<(), _>(Method::GET, &path, None, &[]).await?;
        Ok(answer.story)
    }
}
