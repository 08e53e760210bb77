//! The `Store` trait on PostgreSQL: reads and write batches both on the pool.

use loopctl_store::*;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::PgStore;
use crate::row::{self, map_err, stage_count_columns, story_columns};
use crate::statements::waits;

fn all<T>(rows: Vec<PgRow>, decode: fn(&PgRow) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(decode).collect()
}

/// SQLite reads a negative LIMIT as "no limit" where PostgreSQL refuses it; `LIMIT NULL`
/// is PostgreSQL's "no limit". (A negative OFFSET, which PostgreSQL also refuses, is
/// clamped to 0 as SQLite does.)
fn limit_or_all(limit: i64) -> Option<i64> {
    (limit >= 0).then_some(limit)
}

fn one<T>(row: Option<PgRow>, decode: fn(&PgRow) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    row.as_ref().map(decode).transpose()
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn commit(&self, batch: WriteBatch) -> StoreResult<'_, Vec<i64>> {
        Box::pin(self.commit_batch(batch))
    }

    fn commit_signals(&self) -> Option<futures_util::stream::BoxStream<'static, Uuid>> {
        let heard = PgStore::commit_signals(self);
        let signals = futures_util::stream::unfold(heard, |mut heard| async move {
            loop {
                match heard.recv().await {
                    Ok(tenant) => return Some((tenant, heard)),
                    // Missed some: the streams poll the store within a second anyway.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Some(Box::pin(signals))
    }

    fn ping(&self) -> StoreResult<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1 FROM tenants LIMIT 1").execute(&self.pool).await.map_err(map_err)?;
            Ok(())
        })
    }

    fn pressure(&self) -> StorePressure {
        StorePressure {
            pool_size: self.pool.size(),
            pool_idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            writer_queue: None,
        }
    }

    fn claims_in_flight(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<'_, (i64, i64)> {
        Box::pin(async move {
            sqlx::query_as(
                "SELECT count(*), COALESCE(SUM(CASE WHEN lease_expires_at <= $1 THEN 1 ELSE 0 END), 0)::bigint \
                 FROM stories WHERE agent_status IN ('assigned', 'implementing')",
            )
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
        })
    }

    fn tenant(&self, id: Uuid) -> StoreResult<'_, Option<TenantRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::tenant)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<'_, Option<ApiKeyRecord>> {
        let hash = hash.to_vec();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::api_key)
        })
    }

    fn api_keys(&self, tenant_id: Uuid, include_revoked: bool) -> StoreResult<'_, Vec<ApiKeyRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM api_keys WHERE tenant_id = $1 AND ($2 OR revoked_at IS NULL) ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(include_revoked)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::api_key)
        })
    }

    fn agent(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<AgentRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::agent)
        })
    }

    fn agents(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<AgentRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 ORDER BY created_at, id")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            all(rows, row::agent)
        })
    }

    fn project(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<ProjectRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM projects WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::project)
        })
    }

    fn project_by_slug(&self, tenant_id: Uuid, slug: &str) -> StoreResult<'_, Option<ProjectRecord>> {
        let slug = slug.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM projects WHERE tenant_id = $1 AND slug = $2")
                .bind(tenant_id)
                .bind(slug)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::project)
        })
    }

    fn projects(&self, tenant_id: Uuid, include_archived: bool) -> StoreResult<'_, Vec<ProjectRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM projects WHERE tenant_id = $1 AND ($2 OR status = 'active') ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(include_archived)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::project)
        })
    }

    fn epic(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<EpicRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM epics WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::epic)
        })
    }

    fn epics(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Vec<EpicRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM epics WHERE tenant_id = $1 AND project_id = $2 ORDER BY position, number")
                    .bind(tenant_id)
                    .bind(project_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::epic)
        })
    }

    fn story(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<StoryRecord>> {
        Box::pin(async move {
            let row =
                sqlx::query(concat!("SELECT ", story_columns!(), " FROM stories WHERE tenant_id = $1 AND id = $2"))
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
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
                " FROM stories WHERE tenant_id = $1 AND project_id = $2 AND number = $3"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(number)
            .fetch_optional(&self.pool)
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
            let mut conditions = vec!["e.tenant_id = $1"];
            let mut n = 1;
            let mut next = || {
                n += 1;
                n
            };
            let project = filter.project_id.map(|_| format!("e.project_id = ${}", next()));
            let epic = filter.epic_id.map(|_| format!("s.epic_id = ${}", next()));
            let agent = agent_status.map(|_| format!("s.agent_status = ${}", next()));
            let verdict = verified_status.map(|_| format!("s.verified_status = ${}", next()));
            let owned: Vec<String> = [project, epic, agent, verdict].into_iter().flatten().collect();
            conditions.extend(owned.iter().map(String::as_str));
            let condition = conditions.join(" AND ");
            let (limit_at, offset_at) = (next(), next());
            let listing = format!(
                "WITH page AS (SELECT s.id AS page_id, e.position AS epic_position, e.number AS epic_number, s.sort_key AS story_key \
                 FROM epics e JOIN stories s ON s.epic_id = e.id WHERE {condition} ORDER BY 2, 3, 4 \
                 LIMIT ${limit_at} OFFSET ${offset_at}) \
                 SELECT {} FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key",
                story_columns!()
            );
            let counting = format!("SELECT COUNT(*) FROM epics e JOIN stories s ON s.epic_id = e.id WHERE {condition}");
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
                .bind(limit_or_all(filter.limit))
                .bind(filter.offset.max(0))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            let total: i64 = bind_filters!(sqlx::query_scalar(sqlx::AssertSqlSafe(counting)))
                .fetch_one(&self.pool)
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
                    " FROM stories WHERE project_id = $2 AND agent_status IN ('assigned', 'implementing') \
                     AND lease_expires_at <= $1 AND tenant_id = $3 AND (NOT $4 OR stale_since IS NULL) \
                     ORDER BY lease_expires_at LIMIT $5"
                ))
                .bind(query.now)
                .bind(project_id)
                .bind(tenant_id)
                .bind(query.unannounced_only)
                .bind(limit_or_all(query.limit)),
                None => sqlx::query(concat!(
                    "SELECT ",
                    story_columns!(),
                    " FROM stories WHERE agent_status IN ('assigned', 'implementing') AND lease_expires_at <= $1 \
                     AND (NOT $2 OR stale_since IS NULL) ORDER BY lease_expires_at LIMIT $3"
                ))
                .bind(query.now)
                .bind(query.unannounced_only)
                .bind(limit_or_all(query.limit)),
            }
            .fetch_all(&self.pool)
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
            // Only the epic filter present is in the text (a cached plan of `$4 IS NULL OR …`
            // could not use the index); `$4` is bound either way.
            let (epic_is, story_in) = match query.epic_id {
                Some(_) => ("e.id = $4", "s.epic_id = $4"),
                None => ("$4::uuid IS NULL", "$4::uuid IS NULL"),
            };
            let listing = format!(
                "WITH page AS ( \
                 (SELECT s.id AS page_id, e.position AS epic_position, e.number AS epic_number, s.sort_key AS story_key \
                    FROM epics e JOIN stories s ON s.epic_id = e.id \
                   WHERE e.tenant_id = $1 AND e.project_id = $2 AND e.waiting_on = 0 AND {epic_is} \
                     AND s.agent_status IN ('pending', 'contracted') AND s.waiting_on = 0 AND NOT s.escalation_locked \
                   ORDER BY 2, 3, 4 LIMIT $7) \
                 UNION ALL \
                 (SELECT s.id, e.position, e.number, s.sort_key \
                    FROM stories s JOIN epics e ON e.id = s.epic_id \
                   WHERE s.project_id = $2 AND s.tenant_id = $1 AND s.agent_status IN ('assigned', 'implementing') \
                     AND s.lease_expires_at <= $3 AND s.waiting_on = 0 AND NOT s.escalation_locked AND e.waiting_on = 0 \
                     AND {story_in}) \
                 ORDER BY 2, 3, 4 LIMIT $5 OFFSET $6) \
                 SELECT {} FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key",
                story_columns!()
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(listing))
                .bind(query.tenant_id)
                .bind(query.project_id)
                .bind(query.now)
                .bind(query.epic_id)
                .bind(query.limit.max(0))
                .bind(query.offset.max(0))
                .bind(query.limit.max(0).saturating_add(query.offset.max(0)))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            let total = if query.with_total {
                let counting = format!(
                    "SELECT (SELECT COUNT(*) FROM epics e JOIN stories s ON s.epic_id = e.id \
                       WHERE e.tenant_id = $1 AND e.project_id = $2 AND e.waiting_on = 0 AND {epic_is} \
                         AND s.agent_status IN ('pending', 'contracted') AND s.waiting_on = 0 AND NOT s.escalation_locked) \
                     + (SELECT COUNT(*) FROM stories s JOIN epics e ON e.id = s.epic_id \
                       WHERE s.project_id = $2 AND s.tenant_id = $1 AND s.agent_status IN ('assigned', 'implementing') \
                         AND s.lease_expires_at <= $3 AND s.waiting_on = 0 AND NOT s.escalation_locked \
                         AND e.waiting_on = 0 AND {story_in})",
                );
                let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(counting))
                    .bind(query.tenant_id)
                    .bind(query.project_id)
                    .bind(query.now)
                    .bind(query.epic_id)
                    .fetch_one(&self.pool)
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
                   FROM epics e JOIN stories s ON s.epic_id = e.id \
                  WHERE e.tenant_id = $1 AND e.project_id = $2 AND s.agent_status IN ('pending', 'contracted') \
                    AND (s.waiting_on > 0 OR e.waiting_on > 0) \
                  ORDER BY 2, 3, 4 LIMIT $3 OFFSET $4) \
                 SELECT ",
                story_columns!(),
                " FROM page JOIN stories ON stories.id = page.page_id \
                 ORDER BY page.epic_position, page.epic_number, page.story_key"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM epics e JOIN stories s ON s.epic_id = e.id \
                  WHERE e.tenant_id = $1 AND e.project_id = $2 AND s.agent_status IN ('pending', 'contracted') \
                    AND (s.waiting_on > 0 OR e.waiting_on > 0)",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_one(&self.pool)
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
                "SELECT COALESCE(SUM(e.stories_total), 0)::bigint, COALESCE(SUM(e.unverified_stories), 0)::bigint, \
                   (SELECT COUNT(*) FROM stories s WHERE s.project_id = $2 AND s.agent_status IN ('assigned', 'implementing') \
                     AND s.tenant_id = $1), \
                   (SELECT COUNT(*) FROM stories s WHERE s.project_id = $2 AND s.agent_status IN ('assigned', 'implementing') \
                     AND s.lease_expires_at <= $3 AND s.tenant_id = $1) \
                 FROM epics e WHERE e.project_id = $2 AND e.tenant_id = $1",
            )
            .bind(tenant_id)
            .bind(project_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(ProjectTally { total, verified: total - unverified, in_flight, stale })
        })
    }

    fn blockers(&self, tenant_id: Uuid, story_ids: &[Uuid], per_story: i64) -> StoreResult<'_, Vec<BlockerRecord>> {
        let story_ids = story_ids.to_vec();
        Box::pin(async move {
            // One statement for the whole page: each story's blockers, at most `per_story` each.
            let rows = sqlx::query(
                "SELECT b.blocked_id, t.id, t.number, t.title, t.agent_status, t.verified_status \
                 FROM unnest($2::uuid[]) AS page(blocked_id) \
                 CROSS JOIN LATERAL ( \
                   SELECT page.blocked_id, t.id FROM stories t WHERE t.tenant_id = $1 AND t.verified_status <> 'verified' AND t.id IN ( \
                     SELECT d.depends_on_story_id FROM story_dependencies d WHERE d.story_id = page.blocked_id AND d.tenant_id = $1 \
                     UNION \
                     SELECT u.id FROM epic_dependencies ed JOIN stories u ON u.epic_id = ed.depends_on_epic_id \
                      WHERE ed.tenant_id = $1 AND u.verified_status <> 'verified' \
                        AND ed.epic_id = (SELECT x.epic_id FROM stories x WHERE x.id = page.blocked_id AND x.tenant_id = $1)) \
                   ORDER BY t.sort_key LIMIT $3) AS b \
                 JOIN stories t ON t.id = b.id \
                 ORDER BY b.blocked_id, t.sort_key",
            )
            .bind(tenant_id)
            .bind(&story_ids)
            .bind(per_story.max(0))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::blocker)
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
                 WHERE tenant_id = $1 AND project_id = $2 GROUP BY epic_id"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::epic_counts)
        })
    }

    fn unverified_blockers(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, i64> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM stories st WHERE st.tenant_id = $1 AND st.verified_status <> 'verified' AND st.id IN ( \
                 SELECT d.depends_on_story_id FROM story_dependencies d WHERE d.story_id = $2 AND d.tenant_id = $1 \
                 UNION \
                 SELECT s.id FROM epic_dependencies ed JOIN stories s ON s.epic_id = ed.depends_on_epic_id \
                 WHERE ed.tenant_id = $1 AND ed.epic_id = (SELECT x.epic_id FROM stories x WHERE x.id = $2 AND x.tenant_id = $1))",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
        })
    }

    fn story_and_wait(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<(StoryRecord, bool)>> {
        Box::pin(async move {
            let row = sqlx::query(concat!(
                "SELECT ",
                story_columns!(),
                ", ",
                waits!(),
                " AS waits FROM stories WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let waits: Option<bool> = row.try_get("waits").map_err(map_err)?;
            Ok(Some((row::story(&row)?, waits.unwrap_or(false))))
        })
    }

    fn stories_by_number(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        numbers: &[String],
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        let numbers = numbers.to_vec();
        Box::pin(async move {
            let rows = sqlx::query(concat!(
                "SELECT ",
                story_columns!(),
                " FROM stories WHERE project_id = $2 AND number = ANY($3::text[]) AND tenant_id = $1"
            ))
            .bind(tenant_id)
            .bind(project_id)
            .bind(&numbers)
            .fetch_all(&self.pool)
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
                " FROM stories WHERE epic_id = $2 AND sort_key > $3 AND tenant_id = $1 ORDER BY sort_key LIMIT $4"
            ))
            .bind(tenant_id)
            .bind(epic_id)
            .bind(after_sort_key.unwrap_or(i64::MIN))
            .bind(limit_or_all(limit))
            .fetch_all(&self.pool)
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
            // `$3` is bound either way; only the condition in use is in the text.
            let after_condition = if after.is_some() { "d.id > $3" } else { "$3::uuid IS NULL" };
            let sql = match level {
                EdgeLevel::Story => {
                    format!(
                        "SELECT d.id, a.number AS from_number, b.number AS to_number FROM story_dependencies d \
                     JOIN stories a ON a.id = d.story_id JOIN stories b ON b.id = d.depends_on_story_id \
                     WHERE d.project_id = $2 AND d.tenant_id = $1 AND {after_condition} ORDER BY d.id LIMIT $4"
                    )
                }
                EdgeLevel::Epic => {
                    format!(
                        "SELECT d.id, a.number::text AS from_number, b.number::text AS to_number \
                     FROM epic_dependencies d JOIN epics a ON a.id = d.epic_id JOIN epics b ON b.id = d.depends_on_epic_id \
                     WHERE d.project_id = $2 AND d.tenant_id = $1 AND {after_condition} ORDER BY d.id LIMIT $4"
                    )
                }
            };
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(project_id)
                .bind(after)
                .bind(limit_or_all(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            all(rows, row::numbered_edge)
        })
    }

    fn dependencies(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Dependencies> {
        Box::pin(async move {
            let stories = sqlx::query(
                "SELECT id, tenant_id, project_id, story_id AS from_id, depends_on_story_id AS to_id, created_at \
                 FROM story_dependencies WHERE tenant_id = $1 AND project_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            let epics = sqlx::query(
                "SELECT id, tenant_id, project_id, epic_id AS from_id, depends_on_epic_id AS to_id, created_at \
                 FROM epic_dependencies WHERE tenant_id = $1 AND project_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(Dependencies { stories: all(stories, row::dependency)?, epics: all(epics, row::dependency)? })
        })
    }

    fn artifacts(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ArtifactRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM artifacts WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::artifact)
        })
    }

    fn token_usage(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<TokenUsageRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM token_usage WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::token_usage)
        })
    }

    fn project_token_totals(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, TokenTotals> {
        Box::pin(async move {
            let (reports, input_tokens, output_tokens, cost_millicents): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0)::bigint, COALESCE(SUM(output_tokens), 0)::bigint, \
                   COALESCE(SUM(cost_millicents), 0)::bigint FROM token_usage WHERE project_id = $2 AND tenant_id = $1",
            )
            .bind(tenant_id)
            .bind(project_id)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(TokenTotals { reports, input_tokens, output_tokens, cost_millicents })
        })
    }

    fn reviews(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ReviewRecord>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM reviews WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(story_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::review)
        })
    }

    fn verifications(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM verifications WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.pool)
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
                "SELECT * FROM orchestrator_states WHERE tenant_id = $1 AND project_id = $2 AND state_key = $3",
            )
            .bind(tenant_id)
            .bind(project_id)
            .bind(state_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
            one(row, row::orchestrator_state)
        })
    }

    fn skill_versions(&self, tenant_id: Uuid, name: Option<&str>) -> StoreResult<'_, Vec<SkillVersionRecord>> {
        let name = name.map(str::to_string);
        Box::pin(async move {
            let rows = sqlx::query(if name.is_some() {
                "SELECT * FROM skill_versions WHERE tenant_id = $1 AND name = $2 ORDER BY name, version"
            } else {
                "SELECT * FROM skill_versions WHERE tenant_id = $1 AND $2::text IS NULL ORDER BY name, version"
            })
            .bind(tenant_id)
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::skill_version)
        })
    }

    fn skill_results(&self, tenant_id: Uuid, name: &str) -> StoreResult<'_, Vec<SkillResultRecord>> {
        let name = name.to_string();
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM skill_results WHERE tenant_id = $1 AND name = $2 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::skill_result)
        })
    }

    fn idempotent_response(&self, scope: &[u8], key: &str) -> StoreResult<'_, Option<IdempotentResponse>> {
        let scope = scope.to_vec();
        let key = key.to_string();
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM idempotent_responses WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::idempotent_response)
        })
    }

    fn dispatch(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<DispatchRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM dispatches WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::dispatch)
        })
    }

    fn dispatches(&self, tenant_id: Uuid, story_id: Option<Uuid>) -> StoreResult<'_, Vec<DispatchRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(if story_id.is_some() {
                "SELECT * FROM dispatches WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id"
            } else {
                "SELECT * FROM dispatches WHERE tenant_id = $1 AND $2::uuid IS NULL ORDER BY created_at, id"
            })
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::dispatch)
        })
    }

    fn criterion_records(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<CriterionRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM criterion_records WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::criterion_record)
        })
    }

    fn verification_runs(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRunRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM verification_runs WHERE tenant_id = $1 AND story_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(story_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::verification_run)
        })
    }

    fn events(&self, tenant_id: Uuid, filter: EventFilter) -> StoreResult<'_, Vec<EventRecord>> {
        Box::pin(async move {
            let limit = limit_or_all(filter.limit);
            // Paging forward is how the feed is followed: it stops at the settled cursor, so
            // a cursor still being committed is never stepped over.
            let settled = if filter.newest_first {
                None
            } else {
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let Some(settled) = crate::apply::settled_cursor(&mut tx, tenant_id).await? else {
                    return Ok(Vec::new());
                };
                tx.commit().await.map_err(map_err)?;
                Some(settled)
            };
            // Only the filters present are in the text: the statement's plan is cached, and
            // a cached plan for `$2 IS NULL OR project_id = $2` could not use the index.
            let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM events WHERE tenant_id = ");
            query.push_bind(tenant_id);
            if let Some(id) = filter.project_id {
                query.push(" AND project_id = ").push_bind(id);
            }
            if let Some(kind) = filter.entity_type {
                query.push(" AND entity_type = ").push_bind(kind);
            }
            if let Some(id) = filter.entity_id {
                query.push(" AND entity_id = ").push_bind(id);
            }
            if let Some(action) = filter.action {
                query.push(" AND action = ").push_bind(action);
            }
            if let Some(cursor) = filter.after_cursor {
                query.push(" AND cursor > ").push_bind(cursor);
            }
            if let Some(at) = filter.after_time {
                query.push(" AND inserted_at > ").push_bind(at);
            }
            if let Some(cursor) = settled {
                query.push(" AND cursor <= ").push_bind(cursor);
            }
            query.push(if filter.newest_first {
                " ORDER BY cursor DESC LIMIT "
            } else {
                " ORDER BY cursor ASC LIMIT "
            });
            query.push_bind(limit);
            let rows = query.build().fetch_all(&self.pool).await.map_err(map_err)?;
            all(rows, row::event)
        })
    }

    fn webhooks(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<WebhookRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
            all(rows, row::webhook)
        })
    }

    fn webhook(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<WebhookRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::webhook)
        })
    }

    fn deliveries(&self, tenant_id: Uuid, webhook_id: Uuid, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT * FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(tenant_id)
            .bind(webhook_id)
            .bind(limit_or_all(limit))
            .fetch_all(&self.pool)
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
                 WHERE w.enabled = TRUE AND d.next_attempt_at <= $1 AND (d.leased_until IS NULL OR d.leased_until <= $1) \
                 ORDER BY d.id LIMIT $2",
            )
            .bind(now)
            .bind(limit_or_all(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            all(rows, row::delivery)
        })
    }

    fn event_at(&self, tenant_id: Uuid, cursor: i64) -> StoreResult<'_, Option<EventRecord>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM events WHERE tenant_id = $1 AND cursor = $2")
                .bind(tenant_id)
                .bind(cursor)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            one(row, row::event)
        })
    }

    fn audit_links(&self, tenant_id: Uuid, after_cursor: Option<i64>, limit: i64) -> StoreResult<'_, Vec<AuditLink>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT * FROM audit_links WHERE tenant_id = $1 AND cursor > $2 ORDER BY cursor LIMIT $3")
                    .bind(tenant_id)
                    .bind(after_cursor.unwrap_or(0))
                    .bind(limit_or_all(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
            all(rows, row::audit_link)
        })
    }

    fn audit_tip(&self, tenant_id: Uuid) -> StoreResult<'_, Option<AuditLink>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT * FROM audit_links WHERE tenant_id = $1 ORDER BY cursor DESC LIMIT 1")
                .bind(tenant_id)
                .fetch_optional(&self.pool)
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
                 COALESCE((SELECT max(l.cursor) FROM audit_links l WHERE l.tenant_id = t.id), 0) LIMIT $1",
            )
            .bind(limit_or_all(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
        })
    }
}
