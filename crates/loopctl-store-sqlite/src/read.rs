//! The `Store` trait on SQLite: reads on the pool, writes through the writer task.

use loopctl_store::*;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::SqliteStore;
use crate::row::{self, map_err, stage_count_columns, story_columns};

fn all<T>(rows: Vec<SqliteRow>, decode: fn(&SqliteRow) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}

fn one<T>(row: Option<SqliteRow>, decode: fn(&SqliteRow) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    row.as_ref().map(decode).transpose()
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn commit(&self, batch: WriteBatch) -> StoreResult<'_, Vec<i64>> {
        Box::pin(self.submit(batch))
    }

    fn ping(&self) -> StoreResult<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1 FROM tenants LIMIT 1").execute(&self.readers).await.map_err(map_err)?;
            // An empty batch through the writer: its task is alive and it can take the lock.
            self.submit(Vec::new()).await?;
            Ok(())
        })
    }

    fn pressure(&self) -> StorePressure {
        StorePressure {
            pool_size: self.readers.size(),
            pool_idle: u32::try_from(self.readers.num_idle()).unwrap_or(u32::MAX),
            writer_queue: Some(self.writer.max_capacity() - self.writer.capacity()),
        }
    }

    fn claims_in_flight(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<'_, (i64, i64)> {
        Box::pin(async move {
            sqlx::query_as(
                "SELECT count(*), COALESCE(SUM(CASE WHEN lease_expires_at <= ?1 THEN 1 ELSE 0 END), 0) \
                 FROM stories INDEXED BY stories_claim_lease WHERE agent_status IN ('assigned', 'implementing')",
            )
            .bind(row::micros(now))
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)
        })
    }

    fn tenant(&self, id: Uuid) -> StoreResult<'_, Option<TenantRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM tenants WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::tenant)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<'_, Option<ApiKeyRecord>> {
        let hash = hash.to_vec();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?")
                .bind(hash)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::api_key)
        })
    }

    fn api_keys(&self, tenant_id: Uuid, include_revoked: bool) -> StoreResult<'_, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM api_keys WHERE tenant_id = ? AND (? OR revoked_at IS NULL) ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(include_revoked)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::api_key)
        })
    }

    fn agent(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<AgentRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM agents WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::agent)
        })
    }

    fn agents(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<AgentRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM agents WHERE tenant_id = ? ORDER BY created_at, id")
                .bind(tenant_id)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
            all(rows, row::agent)
        })
    }

    fn project(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<ProjectRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM projects WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::project)
        })
    }

    fn project_by_slug(&self, tenant_id: Uuid, slug: &str) -> StoreResult<'_, Option<ProjectRecord>> {
        let slug = slug.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM projects WHERE tenant_id = ? AND slug = ?")
                .bind(tenant_id)
                .bind(slug)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::project)
        })
    }

    fn projects(&self, tenant_id: Uuid, include_archived: bool) -> StoreResult<'_, Vec<ProjectRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM projects WHERE tenant_id = ? AND (? OR status = 'active') ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(include_archived)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::project)
        })
    }

    fn epic(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<EpicRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM epics WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::epic)
        })
    }

    fn epics(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Vec<EpicRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM epics WHERE tenant_id = ? AND project_id = ? ORDER BY position, number")
                    .bind(tenant_id)
                    .bind(project_id)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::epic)
        })
    }

    fn story(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<StoryRecord>> {
        Box::pin(async move {
            let row = sqlx::query(concat!("SELECT ", story_columns!(), " FROM stories WHERE tenant_id = ? AND id = ?"))
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::story)
        })
    }

    fn story_by_number(&self, tenant_id: Uuid, project_id: Uuid, number: &str) -> StoreResult<'_, Option<StoryRecord>> {
        let number = number.to_string();
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                story_columns!(),
                " FROM stories WHERE tenant_id = ? AND project_id = ? AND number = ?"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(number)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
            one(row, row::story)
        })
    }

    fn stories(&self, tenant_id: Uuid, filter: StoryFilter) -> StoreResult<'_, (Vec<StoryRecord>, i64)> {
        Box::pin(async move {
            let agent_status = filter.agent_status.map(|s| s.as_str());
            let verified_status = filter.verified_status.map(|s| s.as_str());
            // One indexed condition per filter present (a `? IS NULL OR …` hides the index
            // from the planner), and the epics as the outer loop in work order, so a page is
            // read from `stories_epic_*` in order and the read stops at the page: no sort of
            // the project's rows. The conditions are fixed text; every value is bound.
            let mut conditions = vec!["e.tenant_id = ?"];
            let mut n = 1;
            let mut next = || {
                n += 1;
                n
            };
            let project = filter.project_id.map(|_| format!("e.project_id = ?{}", next()));
            let epic = filter.epic_id.map(|_| format!("s.epic_id = ?{}", next()));
            let agent = agent_status.map(|_| format!("s.agent_status = ?{}", next()));
            let verdict = verified_status.map(|_| format!("s.verified_status = ?{}", next()));
            let owned: Vec<String> = [project, epic, agent, verdict].into_iter().flatten().collect();
            conditions.extend(owned.iter().map(String::as_str));
            let condition = conditions.join(" AND ");
            let (limit_at, offset_at) = (next(), next());
            let listing = format!(
                "WITH page AS (SELECT s.id AS page_id, e.position AS epic_position, e.number AS epic_number, s.sort_key AS story_key \
                 FROM epics e CROSS JOIN stories s ON s.epic_id = e.id WHERE {condition} ORDER BY 2, 3, 4 \
                 LIMIT ?{limit_at} OFFSET ?{offset_at}) \
                 SELECT {} FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key",
                story_columns!()
            );
            let counting =
                format!("SELECT COUNT(*) FROM epics e CROSS JOIN stories s ON s.epic_id = e.id WHERE {condition}");
            macro_rules! bind_filters {
                ($query:expr) => {{
                    let mut query = $query.bind(tenant_id);
                    if let Some(id) = filter.project_id {
                        query = query.bind(id);
                    }
                    if let Some(id) = filter.epic_id {
                        query = query.bind(id);
                    }
                    if let Some(status) = agent_status {
                        query = query.bind(status);
                    }
                    if let Some(status) = verified_status {
                        query = query.bind(status);
                    }
                    query
                }};
            }
            let rows = bind_filters!(sqlx::query(sqlx::AssertSqlSafe(listing)))
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
            let total: i64 = bind_filters!(sqlx::query_scalar(sqlx::AssertSqlSafe(counting)))
                .fetch_one(&self.readers)
                .await
                .map_err(map_err)?;
            Ok((all(rows, row::story)?, total))
        })
    }

    fn expired_claims(&self, query: ExpiredClaims) -> StoreResult<'_, Vec<StoryRecord>> {
        Box::pin(async move {
            // Two statements, so each reads its own index: a project's claims by lease end
            // (`stories_project_lease`), or every tenant's (`stories_claim_lease`).
            let rows = match query.project {
                Some((tenant_id, project_id)) => sqlx::query(concat!(
                    "SELECT ",
                    story_columns!(),
                    " FROM stories INDEXED BY stories_project_lease WHERE project_id = ?2 AND agent_status IN ('assigned', 'implementing') \
                     AND lease_expires_at <= ?1 AND tenant_id = ?3 AND (?4 = 0 OR stale_since IS NULL) \
                     ORDER BY lease_expires_at LIMIT ?5"
                ))
                .bind(row::micros(query.now))
                .bind(project_id)
                .bind(tenant_id)
                .bind(query.unannounced_only)
                .bind(query.limit),
                None => sqlx::query(concat!(
                    "SELECT ",
                    story_columns!(),
                    " FROM stories WHERE agent_status IN ('assigned', 'implementing') AND lease_expires_at <= ?1 \
                     AND (?2 = 0 OR stale_since IS NULL) ORDER BY lease_expires_at LIMIT ?3"
                ))
                .bind(row::micros(query.now))
                .bind(query.unannounced_only)
                .bind(query.limit),
            }
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::story)
        })
    }

    fn ready_stories(&self, query: FrontierQuery) -> StoreResult<'_, StoryPage> {
        Box::pin(async move {
            // Two ordered arms merged under one LIMIT: the open stories through `stories_open`
            // (epics in work order, each epic's open stories by number), and the claims whose
            // lease ran out (at most the in-flight ones) through `stories_project_lease`.
            let rows = sqlx::query(concat!(
                "WITH page AS ( \
                 SELECT s.id AS page_id, e.position AS epic_position, e.number AS epic_number, s.sort_key AS story_key \
                   FROM epics e JOIN stories s INDEXED BY stories_open ON s.epic_id = e.id \
                  WHERE e.tenant_id = ?1 AND e.project_id = ?2 AND e.waiting_on = 0 AND (?4 IS NULL OR e.id = ?4) \
                    AND s.agent_status IN ('pending', 'contracted') AND s.waiting_on = 0 AND s.escalation_locked = 0 \
                 UNION ALL \
                 SELECT s.id, e.position, e.number, s.sort_key \
                   FROM stories s INDEXED BY stories_project_lease JOIN epics e ON e.id = s.epic_id \
                  WHERE s.project_id = ?2 AND s.tenant_id = ?1 AND s.agent_status IN ('assigned', 'implementing') \
                    AND s.lease_expires_at <= ?3 AND s.waiting_on = 0 AND s.escalation_locked = 0 AND e.waiting_on = 0 \
                    AND (?4 IS NULL OR s.epic_id = ?4) \
                 ORDER BY 2, 3, 4 LIMIT ?5 OFFSET ?6) \
                 SELECT ",
                story_columns!(),
                " FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key"
            ))
            .bind(query.tenant_id)
            .bind(query.project_id)
            .bind(row::micros(query.now))
            .bind(query.epic_id)
            .bind(query.limit)
            .bind(query.offset)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            let total = if query.with_total {
                let total: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM epics e JOIN stories s INDEXED BY stories_open ON s.epic_id = e.id \
                       WHERE e.tenant_id = ?1 AND e.project_id = ?2 AND e.waiting_on = 0 AND (?4 IS NULL OR e.id = ?4) \
                         AND s.agent_status IN ('pending', 'contracted') AND s.waiting_on = 0 AND s.escalation_locked = 0) \
                     + (SELECT COUNT(*) FROM stories s INDEXED BY stories_project_lease JOIN epics e ON e.id = s.epic_id \
                       WHERE s.project_id = ?2 AND s.tenant_id = ?1 AND s.agent_status IN ('assigned', 'implementing') \
                         AND s.lease_expires_at <= ?3 AND s.waiting_on = 0 AND s.escalation_locked = 0 \
                         AND e.waiting_on = 0 AND (?4 IS NULL OR s.epic_id = ?4))",
                )
                .bind(query.tenant_id)
                .bind(query.project_id)
                .bind(row::micros(query.now))
                .bind(query.epic_id)
                .fetch_one(&self.readers)
                .await
                .map_err(map_err)?;
                Some(total)
            } else {
                None
            };
            Ok(StoryPage { stories: all(rows, row::story)?, total })
        })
    }

    fn blocked_stories(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        offset: i64,
        limit: i64,
    ) -> StoreResult<'_, StoryPage> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "WITH page AS ( \
                 SELECT s.id AS page_id, e.position AS epic_position, e.number AS epic_number, s.sort_key AS story_key \
                   FROM epics e JOIN stories s INDEXED BY stories_unclaimed ON s.epic_id = e.id \
                  WHERE e.tenant_id = ?1 AND e.project_id = ?2 AND s.agent_status IN ('pending', 'contracted') \
                    AND (s.waiting_on > 0 OR e.waiting_on > 0) \
                  ORDER BY 2, 3, 4 LIMIT ?3 OFFSET ?4) \
                 SELECT ",
                story_columns!(),
                " FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM epics e JOIN stories s INDEXED BY stories_unclaimed ON s.epic_id = e.id \
                  WHERE e.tenant_id = ?1 AND e.project_id = ?2 AND s.agent_status IN ('pending', 'contracted') \
                    AND (s.waiting_on > 0 OR e.waiting_on > 0)",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
            Ok(StoryPage { stories: all(rows, row::story)?, total: Some(total) })
        })
    }

    fn project_tally(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, ProjectTally> {
        Box::pin(async move {
            let (total, unverified, in_flight, stale): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(e.stories_total), 0), COALESCE(SUM(e.unverified_stories), 0), \
                   (SELECT COUNT(*) FROM stories s INDEXED BY stories_project_lease WHERE s.project_id = ?2 AND s.agent_status IN ('assigned', 'implementing') \
                     AND s.tenant_id = ?1), \
                   (SELECT COUNT(*) FROM stories s INDEXED BY stories_project_lease WHERE s.project_id = ?2 AND s.agent_status IN ('assigned', 'implementing') \
                     AND s.lease_expires_at <= ?3 AND s.tenant_id = ?1) \
                 FROM epics e WHERE e.project_id = ?2 AND e.tenant_id = ?1",
            )
            .bind(tenant_id)
            .bind(project_id)
            .bind(row::micros(now))
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
            Ok(ProjectTally { total, verified: total - unverified, in_flight, stale })
        })
    }

    fn blockers(&self, tenant_id: Uuid, story_ids: &[Uuid], per_story: i64) -> StoreResult<'_, Vec<BlockerRecord>> {
        let story_ids = story_ids.to_vec();
        Box::pin(async move {
            let mut found = Vec::new();
            // One indexed probe per story of the page: the page is bounded, the project is not.
            for story_id in story_ids {
                let rows = sqlx::query(
                    "SELECT ?2 AS blocked_id, t.id, t.number, t.title, t.agent_status, t.verified_status FROM stories t \
                     WHERE t.tenant_id = ?1 AND t.verified_status <> 'verified' AND t.id IN ( \
                       SELECT d.depends_on_story_id FROM story_dependencies d WHERE d.story_id = ?2 AND d.tenant_id = ?1 \
                       UNION \
                       SELECT u.id FROM epic_dependencies ed JOIN stories u ON u.epic_id = ed.depends_on_epic_id \
                        WHERE ed.tenant_id = ?1 AND ed.epic_id = (SELECT x.epic_id FROM stories x WHERE x.id = ?2 AND x.tenant_id = ?1) \
                          AND u.verified_status <> 'verified') \
                     ORDER BY t.sort_key LIMIT ?3",
                )
                .bind(tenant_id)
                .bind(story_id)
                .bind(per_story)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
                found.extend(all(rows, row::blocker)?);
            }
            Ok(found)
        })
    }

    fn stage_counts(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, Vec<EpicCounts>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT epic_id, ",
                stage_count_columns!(),
                " FROM stories \
                 WHERE tenant_id = ?1 AND project_id = ?2 GROUP BY epic_id"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(row::micros(now))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::epic_counts)
        })
    }

    fn unverified_blockers(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, i64> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM stories st WHERE st.tenant_id = ?1 AND st.verified_status <> 'verified' AND st.id IN ( \
                 SELECT d.depends_on_story_id FROM story_dependencies d WHERE d.story_id = ?2 AND d.tenant_id = ?1 \
                 UNION \
                 SELECT s.id FROM epic_dependencies ed JOIN stories s ON s.epic_id = ed.depends_on_epic_id \
                 WHERE ed.tenant_id = ?1 AND ed.epic_id = (SELECT x.epic_id FROM stories x WHERE x.id = ?2 AND x.tenant_id = ?1))",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)
        })
    }

    fn stories_by_number(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        numbers: &[String],
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        let numbers = serde_json::to_string(numbers);
        Box::pin(async move {
            let numbers = numbers.map_err(|e| StoreError::Invariant(e.to_string()))?;
            let rows = sqlx::query(concat!(
                "SELECT ",
                story_columns!(),
                " FROM stories WHERE project_id = ?2 AND number IN (SELECT value FROM json_each(?3)) AND tenant_id = ?1"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(numbers)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::story)
        })
    }

    fn epic_stories_after(
        &self,
        tenant_id: Uuid,
        epic_id: Uuid,
        after_sort_key: Option<i64>,
        limit: i64,
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                story_columns!(),
                " FROM stories WHERE epic_id = ?2 AND sort_key > ?3 AND tenant_id = ?1 ORDER BY sort_key LIMIT ?4"
            ))
            .bind(tenant_id)
            .bind(epic_id)
            .bind(after_sort_key.unwrap_or(i64::MIN))
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::story)
        })
    }

    fn numbered_edges(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        level: EdgeLevel,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<'_, Vec<NumberedEdge>> {
        Box::pin(async move {
            let sql = match level {
                EdgeLevel::Story => {
                    "SELECT d.id, a.number AS from_number, b.number AS to_number FROM story_dependencies d \
                     JOIN stories a ON a.id = d.story_id JOIN stories b ON b.id = d.depends_on_story_id \
                     WHERE d.project_id = ?2 AND d.tenant_id = ?1 AND (?3 IS NULL OR d.id > ?3) ORDER BY d.id LIMIT ?4"
                }
                EdgeLevel::Epic => {
                    "SELECT d.id, CAST(a.number AS TEXT) AS from_number, CAST(b.number AS TEXT) AS to_number \
                     FROM epic_dependencies d JOIN epics a ON a.id = d.epic_id JOIN epics b ON b.id = d.depends_on_epic_id \
                     WHERE d.project_id = ?2 AND d.tenant_id = ?1 AND (?3 IS NULL OR d.id > ?3) ORDER BY d.id LIMIT ?4"
                }
            };
            let rows = sqlx::query(sql)
                .bind(tenant_id)
                .bind(project_id)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
            all(rows, row::numbered_edge)
        })
    }

    fn dependencies(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Dependencies> {
        Box::pin(async move {
            let stories = sqlx::query(
                "SELECT id, tenant_id, project_id, story_id AS from_id, depends_on_story_id AS to_id, created_at \
                 FROM story_dependencies WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            let epics = sqlx::query(
                "SELECT id, tenant_id, project_id, epic_id AS from_id, depends_on_epic_id AS to_id, created_at \
                 FROM epic_dependencies WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            Ok(Dependencies { stories: all(stories, row::dependency)?, epics: all(epics, row::dependency)? })
        })
    }

    fn artifacts(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ArtifactRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM artifacts WHERE tenant_id = ? AND story_id = ? ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::artifact)
        })
    }

    fn token_usage(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<TokenUsageRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM token_usage WHERE tenant_id = ? AND story_id = ? ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::token_usage)
        })
    }

    fn project_token_totals(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, TokenTotals> {
        Box::pin(async move {
            let (reports, input_tokens, output_tokens, cost_millicents): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), \
                   COALESCE(SUM(cost_millicents), 0) FROM token_usage WHERE project_id = ?2 AND tenant_id = ?1",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
            Ok(TokenTotals { reports, input_tokens, output_tokens, cost_millicents })
        })
    }

    fn reviews(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ReviewRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM reviews WHERE tenant_id = ? AND story_id = ? ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::review)
        })
    }

    fn verifications(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM verifications WHERE tenant_id = ? AND story_id = ? ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::verification)
        })
    }

    fn orchestrator_state(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        state_key: &str,
    ) -> StoreResult<'_, Option<OrchestratorStateRecord>> {
        let state_key = state_key.to_string();
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT * FROM orchestrator_states WHERE tenant_id = ? AND project_id = ? AND state_key = ?",
            )
            .bind(tenant_id)
            .bind(project_id)
            .bind(state_key)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
            one(row, row::orchestrator_state)
        })
    }

    fn skill_versions(&self, tenant_id: Uuid, name: Option<&str>) -> StoreResult<'_, Vec<SkillVersionRecord>> {
        let name = name.map(str::to_string);
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM skill_versions WHERE tenant_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name, version",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::skill_version)
        })
    }

    fn skill_results(&self, tenant_id: Uuid, name: &str) -> StoreResult<'_, Vec<SkillResultRecord>> {
        let name = name.to_string();
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM skill_results WHERE tenant_id = ? AND name = ? ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::skill_result)
        })
    }

    fn idempotent_response(&self, scope: &[u8], key: &str) -> StoreResult<'_, Option<IdempotentResponse>> {
        let scope = scope.to_vec();
        let key = key.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM idempotent_responses WHERE scope = ? AND key = ?")
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::idempotent_response)
        })
    }

    fn dispatch(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<DispatchRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM dispatches WHERE tenant_id = ?1 AND id = ?2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::dispatch)
        })
    }

    fn dispatches(&self, tenant_id: Uuid, story_id: Option<Uuid>) -> StoreResult<'_, Vec<DispatchRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM dispatches WHERE tenant_id = ?1 AND (?2 IS NULL OR story_id = ?2) ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::dispatch)
        })
    }

    fn criterion_records(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<CriterionRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM criterion_records WHERE tenant_id = ?1 AND story_id = ?2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::criterion_record)
        })
    }

    fn verification_runs(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRunRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM verification_runs WHERE tenant_id = ?1 AND story_id = ?2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::verification_run)
        })
    }

    fn events(&self, tenant_id: Uuid, filter: EventFilter) -> StoreResult<'_, Vec<EventRecord>> {
        Box::pin(async move {
            let after_time = filter.after_time.map(row::micros);
            let query = if filter.newest_first {
                sqlx::query(
                    "SELECT * FROM events WHERE tenant_id = ?1 AND (?2 IS NULL OR project_id = ?2) \
                     AND (?3 IS NULL OR entity_type = ?3) AND (?4 IS NULL OR entity_id = ?4) \
                     AND (?5 IS NULL OR action = ?5) AND (?6 IS NULL OR cursor > ?6) \
                     AND (?7 IS NULL OR inserted_at > ?7) ORDER BY cursor DESC LIMIT ?8",
                )
            } else {
                sqlx::query(
                    "SELECT * FROM events WHERE tenant_id = ?1 AND (?2 IS NULL OR project_id = ?2) \
                     AND (?3 IS NULL OR entity_type = ?3) AND (?4 IS NULL OR entity_id = ?4) \
                     AND (?5 IS NULL OR action = ?5) AND (?6 IS NULL OR cursor > ?6) \
                     AND (?7 IS NULL OR inserted_at > ?7) ORDER BY cursor ASC LIMIT ?8",
                )
            };
            let rows = query
                .bind(tenant_id)
                .bind(filter.project_id)
                .bind(filter.entity_type)
                .bind(filter.entity_id)
                .bind(filter.action)
                .bind(filter.after_cursor)
                .bind(after_time)
                .bind(filter.limit)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
            all(rows, row::event)
        })
    }

    fn webhooks(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<WebhookRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = ?1 ORDER BY created_at, id")
                .bind(tenant_id)
                .fetch_all(&self.readers)
                .await
                .map_err(map_err)?;
            all(rows, row::webhook)
        })
    }

    fn webhook(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<WebhookRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = ?1 AND id = ?2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::webhook)
        })
    }

    fn deliveries(&self, tenant_id: Uuid, webhook_id: Uuid, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM webhook_deliveries WHERE tenant_id = ?1 AND webhook_id = ?2 ORDER BY id DESC LIMIT ?3",
            )
            .bind(tenant_id)
            .bind(webhook_id)
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::delivery)
        })
    }

    fn due_deliveries(&self, now: chrono::DateTime<chrono::Utc>, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT d.* FROM webhooks w JOIN webhook_deliveries d ON d.id = \
                 (SELECT min(p.id) FROM webhook_deliveries p WHERE p.webhook_id = w.id AND p.status = 'pending') \
                 WHERE w.enabled = 1 AND d.next_attempt_at <= ?1 AND (d.leased_until IS NULL OR d.leased_until <= ?1) \
                 ORDER BY d.id LIMIT ?2",
            )
            .bind(row::micros(now))
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
            all(rows, row::delivery)
        })
    }

    fn event_at(&self, tenant_id: Uuid, cursor: i64) -> StoreResult<'_, Option<EventRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM events WHERE tenant_id = ?1 AND cursor = ?2")
                .bind(tenant_id)
                .bind(cursor)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::event)
        })
    }

    fn audit_links(&self, tenant_id: Uuid, after_cursor: Option<i64>, limit: i64) -> StoreResult<'_, Vec<AuditLink>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM audit_links WHERE tenant_id = ?1 AND cursor > ?2 ORDER BY cursor LIMIT ?3")
                    .bind(tenant_id)
                    .bind(after_cursor.unwrap_or(0))
                    .bind(limit)
                    .fetch_all(&self.readers)
                    .await
                    .map_err(map_err)?;
            all(rows, row::audit_link)
        })
    }

    fn audit_tip(&self, tenant_id: Uuid) -> StoreResult<'_, Option<AuditLink>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM audit_links WHERE tenant_id = ?1 ORDER BY cursor DESC LIMIT 1")
                .bind(tenant_id)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
            one(row, row::audit_link)
        })
    }

    fn tenants_behind_audit_chain(&self, limit: i64) -> StoreResult<'_, Vec<Uuid>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT t.id FROM tenants t WHERE \
                 (SELECT max(e.cursor) FROM events e WHERE e.tenant_id = t.id) > \
                 COALESCE((SELECT max(l.cursor) FROM audit_links l WHERE l.tenant_id = t.id), 0) LIMIT ?1",
            )
            .bind(limit)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)
        })
    }
}
