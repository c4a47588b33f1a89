//! Maintenance windows (SPEC section 5b): the `maintenance_windows` table, and the rows as the
//! quiet-period rules read them ([`WindowRow::to_window`]).

use super::TenantRow;
use crate::domain::quiet::{self, Recurrence, Schedule, Scope, Window};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WindowRow {
    pub id: Uuid,
    pub name: String,
    pub scope_all: bool,
    pub scope_license_ids: Vec<Uuid>,
    pub scope_tags: Vec<String>,
    /// The one-off window's start, or the recurrence's DTSTART.
    pub starts_at: DateTime<Utc>,
    /// The one-off window's end (`None` when recurring).
    pub ends_at: Option<DateTime<Utc>>,
    pub rrule: Option<String>,
    pub duration_seconds: Option<i32>,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TenantRow for WindowRow {
    const TABLE: &'static str = "maintenance_windows";
    const COLUMNS: &'static str = "id, name, scope_all, scope_license_ids, scope_tags, starts_at, ends_at, \
         rrule, duration_seconds, timezone, created_at, updated_at";
}

impl WindowRow {
    pub fn scope(&self) -> Scope {
        if self.scope_all {
            Scope::All
        } else if !self.scope_license_ids.is_empty() {
            Scope::Licenses(self.scope_license_ids.clone())
        } else {
            Scope::Tags(self.scope_tags.clone())
        }
    }

    /// The window as the rules read it. `None` for a row that no longer parses (a time zone
    /// removed from the tz database, say): it is logged by the caller and mutes nothing.
    pub fn to_window(&self) -> Option<Window> {
        let schedule = match (&self.rrule, self.ends_at, self.duration_seconds) {
            (None, Some(ends_at), _) => Schedule::OneOff {
                starts_at: self.starts_at,
                ends_at,
            },
            (Some(rule), _, Some(seconds)) => {
                let tz = quiet::parse_timezone(&self.timezone).ok()?;
                Schedule::Recurring(Box::new(
                    Recurrence::parse(rule, self.starts_at, i64::from(seconds), tz).ok()?,
                ))
            }
            _ => return None,
        };
        Some(Window {
            id: self.id,
            scope: self.scope(),
            schedule,
        })
    }
}

/// A window to insert, or the new state of one to update (checked by the caller).
pub struct WindowFields {
    pub name: String,
    pub scope: Scope,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub rrule: Option<String>,
    pub duration_seconds: Option<i32>,
    pub timezone: String,
}

impl WindowFields {
    fn scope_columns(&self) -> (bool, Vec<Uuid>, Vec<String>) {
        match &self.scope {
            Scope::All => (true, Vec::new(), Vec::new()),
            Scope::Licenses(ids) => (false, ids.clone(), Vec::new()),
            Scope::Tags(tags) => (false, Vec::new(), tags.clone()),
        }
    }
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    w: &WindowFields,
) -> Result<WindowRow, sqlx::Error> {
    let (all, ids, tags) = w.scope_columns();
    sqlx::query_as(super::returning::<WindowRow>(
        "INSERT INTO maintenance_windows (tenant_id, id, name, scope_all, scope_license_ids, scope_tags,
             starts_at, ends_at, rrule, duration_seconds, timezone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    ))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(&w.name)
    .bind(all)
    .bind(ids)
    .bind(tags)
    .bind(w.starts_at)
    .bind(w.ends_at)
    .bind(&w.rrule)
    .bind(w.duration_seconds)
    .bind(&w.timezone)
    .fetch_one(conn)
    .await
}

/// Replaces every field of the window (a PATCH is merged with the stored row by the caller).
pub async fn update(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    w: &WindowFields,
) -> Result<Option<WindowRow>, sqlx::Error> {
    let (all, ids, tags) = w.scope_columns();
    sqlx::query_as(super::returning::<WindowRow>(
        "UPDATE maintenance_windows SET name = $3, scope_all = $4, scope_license_ids = $5,
             scope_tags = $6, starts_at = $7, ends_at = $8, rrule = $9, duration_seconds = $10,
             timezone = $11, updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(&w.name)
    .bind(all)
    .bind(ids)
    .bind(tags)
    .bind(w.starts_at)
    .bind(w.ends_at)
    .bind(&w.rrule)
    .bind(w.duration_seconds)
    .bind(&w.timezone)
    .fetch_optional(conn)
    .await
}

/// Every window of these tenants, as the rules read them (rows that no longer parse are
/// logged and left out). For the sweep and for status reads.
pub async fn windows_of(
    conn: &mut PgConnection,
    tenant_ids: &[Uuid],
) -> Result<Vec<(Uuid, Window)>, sqlx::Error> {
    let rows = sqlx::query_as::<_, TenantWindowRow>(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, {} FROM maintenance_windows WHERE tenant_id = ANY($1)",
        WindowRow::COLUMNS
    )))
    .bind(tenant_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.row.to_window() {
            Some(w) => Some((r.tenant_id, w)),
            None => {
                tracing::warn!(window_id = %r.row.id, "a maintenance window no longer parses; it mutes nothing");
                None
            }
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct TenantWindowRow {
    tenant_id: Uuid,
    #[sqlx(flatten)]
    row: WindowRow,
}

/// Makes the sweep look at these licenses (every license of the tenant for `None`) at its next
/// run: a window, snooze or tag that changed may end or start a quiet time before the next
/// check the sweep had planned.
pub async fn recheck(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_ids: Option<&[Uuid]>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE notification_settings SET next_check_at = LEAST(next_check_at, $3)
          WHERE tenant_id = $1 AND next_check_at IS NOT NULL
            AND ($2::uuid[] IS NULL OR license_id = ANY($2))",
    )
    .bind(tenant_id)
    .bind(license_ids)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use sqlx::PgPool;

    async fn tenant(pool: &PgPool) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO tenants (id, name, timezone) VALUES ($1, 'T', 'UTC')")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
        id
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 3, h, 0, 0).unwrap()
    }

    #[sqlx::test]
    async fn stored_windows_come_back_as_the_rules_read_them(pool: PgPool) {
        let (t, other) = (tenant(&pool).await, tenant(&pool).await);
        let mut conn = pool.acquire().await.unwrap();
        let one_off = WindowFields {
            name: "router swap".into(),
            scope: Scope::Tags(vec!["site:a".into()]),
            starts_at: at(1),
            ends_at: Some(at(3)),
            rrule: None,
            duration_seconds: None,
            timezone: "UTC".into(),
        };
        let row = insert(&mut conn, t, &one_off).await.unwrap();
        let sundays = WindowFields {
            name: "patching".into(),
            scope: Scope::All,
            starts_at: at(0),
            ends_at: None,
            rrule: Some("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0;BYSECOND=0".into()),
            duration_seconds: Some(3600),
            timezone: "Europe/Berlin".into(),
        };
        insert(&mut conn, other, &sundays).await.unwrap();

        let mine = windows_of(&mut conn, &[t]).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].0, t);
        assert_eq!(mine[0].1.id, row.id);
        assert_eq!(mine[0].1.scope, Scope::Tags(vec!["site:a".into()]));
        assert_eq!(
            mine[0].1.schedule.occurrences(at(0), at(23)),
            vec![(at(1), at(3))]
        );
        let both = windows_of(&mut conn, &[t, other]).await.unwrap();
        assert_eq!(both.len(), 2);
        let (_, weekly) = both.iter().find(|(tid, _)| *tid == other).unwrap();
        // 02:00 Berlin is 01:00 UTC in January.
        assert_eq!(
            weekly.schedule.occurrences(at(0), at(23)),
            vec![(at(1), at(2))]
        );

        // An update replaces the fields; the scope's other columns are emptied.
        let updated = update(
            &mut conn,
            t,
            row.id,
            &WindowFields {
                scope: Scope::All,
                ..one_off
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(updated.scope_all && updated.scope_tags.is_empty());
        assert!(
            update(&mut conn, other, row.id, &sundays)
                .await
                .unwrap()
                .is_none()
        );
    }
}
