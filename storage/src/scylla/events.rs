//! Events and the alarm outbox in ScyllaDB.
//!
//! `event_ids` holds every event by id, its body as first appended. Appending claims the id
//! (`INSERT … IF NOT EXISTS`, state `pending`), writes the event's other rows, then marks it
//! `stored`; appending an id found `pending` (a crash, or a timeout after the claim landed)
//! completes it from the claimed body. The other rows are written with the claim's time as
//! their timestamp, so completing them again never undoes a later change: an acknowledgement
//! written since stays, and an outbox row deleted since (published) stays deleted; an id
//! claimed again after its event expired gets a later time, above the deletes.
//!
//! Pages read `events`, partitioned by scope (all, a country, a LoB, both) and UTC day,
//! newest first, from the days `event_days` lists for that scope: a page of a country's
//! events reads those only, `LIMIT` rows at a time. The outbox is partitioned by day
//! (`outbox_days` lists the days that may hold rows); a day found empty leaves the list once
//! it is two days old, so reads never walk the tombstones of published days.

use super::*;
use crate::keys::decode_cursor;

/// How many days old an empty outbox day must be before it leaves `outbox_days`: younger
/// days may still be written (an appender writes the row, then lists its day).
const OUTBOX_DAYS_KEPT: i32 = 2;

/// The statements of events and the outbox.
pub(super) struct EventStatements {
    claim: Prepared,
    claimed: Prepared,
    stored: Prepared,
    by_id: Prepared,
    insert: Prepared,
    day: Prepared,
    days: Prepared,
    page: Prepared,
    body_set: Prepared,
    id_body_set: Prepared,
    delete: Prepared,
    id_delete: Prepared,
    day_delete: Prepared,
    of_day: Prepared,
    outbox_insert: Prepared,
    outbox_day: Prepared,
    outbox_days: Prepared,
    outbox_read: Prepared,
    outbox_delete: Prepared,
    outbox_day_delete: Prepared,
    outbox_count: Prepared,
    ack_delete: Prepared,
}

impl EventStatements {
    pub(super) async fn prepare(cql: &dyn Cql) -> Result<EventStatements> {
        Ok(EventStatements {
            claim: cql.prepare("INSERT INTO event_ids (id, time, state, body, claimed_at) VALUES (?, ?, 'pending', ?, ?) IF NOT EXISTS").await?,
            claimed: cql.prepare("SELECT state, body, claimed_at FROM event_ids WHERE id = ?").await?,
            stored: cql.prepare("UPDATE event_ids SET state = 'stored' WHERE id = ?").await?,
            by_id: cql.prepare("SELECT body FROM event_ids WHERE id = ?").await?,
            insert: cql.prepare("INSERT INTO events (scope, day, time, id, new_status, body) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?").await?,
            day: cql.prepare("INSERT INTO event_days (scope, day) VALUES (?, ?) USING TIMESTAMP ?").await?,
            days: cql.prepare("SELECT day FROM event_days WHERE scope = ? AND day >= ? AND day <= ?").await?,
            // CQL does not mix `(time, id) < (?, ?)` with `time >= ?`: the page stops at `from`.
            page: cql.prepare("SELECT time, id, new_status, body FROM events WHERE scope = ? AND day = ? AND (time, id) < (?, ?) LIMIT ?").await?,
            body_set: cql.prepare("UPDATE events SET body = ? WHERE scope = ? AND day = ? AND time = ? AND id = ?").await?,
            id_body_set: cql.prepare("UPDATE event_ids SET body = ? WHERE id = ?").await?,
            delete: cql.prepare("DELETE FROM events WHERE scope = ? AND day = ? AND time = ? AND id = ?").await?,
            id_delete: cql.prepare("DELETE FROM event_ids WHERE id = ?").await?,
            day_delete: cql.prepare("DELETE FROM event_days WHERE scope = ? AND day = ?").await?,
            of_day: cql.prepare("SELECT time, id, body FROM events WHERE scope = ? AND day = ? AND time < ?").await?,
            outbox_insert: cql.prepare("INSERT INTO outbox (day, time, id, body) VALUES (?, ?, ?, ?) USING TIMESTAMP ?").await?,
            outbox_day: cql.prepare("INSERT INTO outbox_days (k, day) VALUES (0, ?)").await?,
            outbox_days: cql.prepare("SELECT day FROM outbox_days WHERE k = 0").await?,
            outbox_read: cql.prepare("SELECT body FROM outbox WHERE day = ? LIMIT ?").await?,
            outbox_delete: cql.prepare("DELETE FROM outbox WHERE day = ? AND time = ? AND id = ?").await?,
            outbox_day_delete: cql.prepare("DELETE FROM outbox_days USING TIMESTAMP ? WHERE k = 0 AND day = ?").await?,
            outbox_count: cql.prepare("SELECT count(*) FROM outbox WHERE day = ?").await?,
            ack_delete: cql.prepare(&format!("DELETE FROM flow_acks WHERE k = 0 AND {FLOW_KEY}")).await?,
        })
    }
}

/// The key of the scope of a country, a LoB, both or neither (all events).
fn scope(country: Option<&str>, lob: Option<&str>) -> String {
    match (country, lob) {
        (None, None) => "*".to_owned(),
        (Some(c), None) => format!("c:{c}"),
        (None, Some(l)) => format!("l:{l}"),
        (Some(c), Some(l)) => format!("cl:{c}\u{1f}{l}"),
    }
}

/// The scopes an event is listed in: all, its country, its LoB, both.
fn scopes(flow: &FlowId) -> [String; 4] {
    let (c, l) = (Some(flow.country.as_str()), Some(flow.lob.as_str()));
    [
        scope(None, None),
        scope(c, None),
        scope(None, l),
        scope(c, l),
    ]
}

/// The wall clock in microseconds (the timestamp a write gets).
pub(super) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl ScyllaStore {
    pub(super) async fn append(&self, events: Vec<Event>) -> Result<()> {
        bounded(events.iter().map(|e| self.append_one(e)).collect()).await?;
        Ok(())
    }

    /// Claims `e`'s id; completes it unless it was stored whole before.
    async fn append_one(&self, e: &Event) -> Result<()> {
        let st = &self.st.events;
        let body = body(e);
        let at = now_micros();
        if applied(self.exec(&st.claim, (&e.id, e.time, &body, at)).await?)? {
            return self.complete(e, body, at).await;
        }
        // Claimed before: by this event whole, or by one a crash cut short.
        let claimed: Vec<(Option<String>, Option<String>, Option<i64>)> =
            self.rows(&st.claimed, (&e.id,)).await?;
        match claimed.into_iter().next() {
            Some((Some(state), Some(first), Some(at))) if state == "pending" => {
                let first_event = parse::<Event>(&first)?;
                self.complete(&first_event, first, at).await
            }
            _ => Ok(()),
        }
    }

    /// Writes the rows of an event claimed at `at` (µs; one batch), then marks it stored.
    async fn complete(&self, e: &Event, body: String, at: i64) -> Result<()> {
        let st = &self.st.events;
        let d = day(e.time);
        let status = status_code(e.new_status) as i8;
        let mut writes = Vec::with_capacity(10);
        for scope in scopes(&e.flow) {
            writes.push((st.day, (&scope, d, at).bind()));
            let row = (&scope, d, e.time, &e.id, status, &body, at);
            writes.push((st.insert, row.bind()));
        }
        if e.alarmed() {
            writes.push((st.outbox_insert, (d, e.time, &e.id, &body, at).bind()));
        }
        self.cql.batch(writes).await?;
        if e.alarmed() {
            // Listed after its row is written: see `outbox_oldest`.
            self.exec(&st.outbox_day, (d,)).await?;
        }
        if !e.keeps_acknowledgement() {
            let f = &e.flow;
            self.exec(
                &st.ack_delete,
                (&f.country, &f.lob, f.kind.as_str(), &f.name),
            )
            .await?;
        }
        self.exec(&st.stored, (&e.id,)).await?;
        Ok(())
    }

    pub(super) async fn event_by_id(&self, id: &str) -> Result<Option<Event>> {
        let rows: Vec<(String,)> = self.rows(&self.st.events.by_id, (id,)).await?;
        rows.first().map(|(b,)| parse::<Event>(b)).transpose()
    }

    /// Writes `e` (an event stored before) with its new body wherever it is kept.
    pub(super) async fn rewrite_event(&self, e: &Event) -> Result<()> {
        let st = &self.st.events;
        let body = body(e);
        let d = day(e.time);
        let mut writes = vec![(st.id_body_set, (&body, &e.id).bind())];
        for scope in scopes(&e.flow) {
            writes.push((st.body_set, (&body, &scope, d, e.time, &e.id).bind()));
        }
        self.cql.batch(writes).await
    }

    /// A page of events: the days of the query's scope newest first, each read `LIMIT` rows at
    /// a time from where the page is, until the page is full.
    pub(super) async fn events_page(&self, q: EventQuery) -> Result<EventPage> {
        let st = &self.st.events;
        let limit = q.limit.max(1);
        let from = q.from.unwrap_or(Instant::MIN);
        let (mut before_time, mut before_id) = match q.cursor.as_deref().map(decode_cursor) {
            Some(cursor) => cursor?,
            None => (q.to.unwrap_or(Instant::MAX), String::new()),
        };
        let scope = scope(q.country.as_deref(), q.lob.as_deref());
        let last_day = day(before_time);
        if day(from) > last_day {
            return Ok(EventPage::from_overfetch(Vec::new(), limit));
        }
        let days: Vec<(i32,)> = self.rows(&st.days, (&scope, day(from), last_day)).await?;
        let want = (limit + 1).min(i32::MAX as usize) as i32;
        let mut events = Vec::new();
        // Newest first: `event_days` is clustered so.
        'days: for (d,) in days {
            loop {
                let rows: Vec<(i64, String, i8, String)> = self
                    .rows(&st.page, (&scope, d, before_time, &before_id, want))
                    .await?;
                let full = rows.len() == want as usize;
                for (time, id, status, body) in rows {
                    if time < from {
                        break 'days;
                    }
                    (before_time, before_id) = (time, id);
                    let status = status_from(status as u8);
                    if !q.statuses.is_empty() && !status.is_some_and(|s| q.statuses.contains(&s)) {
                        continue;
                    }
                    let e = parse::<Event>(&body)?;
                    if q.admits(&e) {
                        events.push(e);
                        if events.len() > limit {
                            break 'days;
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        Ok(EventPage::from_overfetch(events, limit))
    }

    /// Up to `limit` queued alarms, oldest first: the listed days in order, `LIMIT` rows each.
    pub(super) async fn outbox_oldest(&self, limit: usize) -> Result<Vec<Event>> {
        let st = &self.st.events;
        let started = now_micros();
        let today = day(started / 1_000_000);
        let days: Vec<(i32,)> = self.rows(&st.outbox_days, ()).await?;
        let mut out = Vec::new();
        for (d,) in days {
            if out.len() >= limit {
                break;
            }
            let want = (limit - out.len()).min(i32::MAX as usize) as i32;
            let rows: Vec<(String,)> = self.rows(&st.outbox_read, (d, want)).await?;
            if rows.is_empty() && d <= today - OUTBOX_DAYS_KEPT {
                // Timestamped when this read began: a day listed again since stays listed.
                self.exec(&st.outbox_day_delete, (started, d)).await?;
            }
            for (body,) in rows {
                out.push(parse::<Event>(&body)?);
            }
        }
        Ok(out)
    }

    pub(super) async fn outbox_remove(&self, ids: Vec<String>) -> Result<()> {
        bounded(ids.iter().map(|id| self.outbox_remove_one(id)).collect()).await?;
        Ok(())
    }

    /// Removes `id`'s outbox row (found by its event's time).
    async fn outbox_remove_one(&self, id: &str) -> Result<()> {
        if let Some(e) = self.event_by_id(id).await? {
            let key = (day(e.time), e.time, id);
            self.exec(&self.st.events.outbox_delete, key).await?;
        }
        Ok(())
    }

    pub(super) async fn outbox_count(&self) -> Result<u64> {
        let st = &self.st.events;
        let days: Vec<(i32,)> = self.rows(&st.outbox_days, ()).await?;
        let counts = days
            .iter()
            .map(|(d,)| self.rows::<(i64,)>(&st.outbox_count, (*d,)));
        let counts = try_join_all(counts).await?;
        Ok(counts.iter().flatten().map(|(n,)| *n as u64).sum())
    }

    /// Deletes the events older than `before`, with their rows in every scope and the outbox.
    pub(super) async fn expire_events(&self, before: Instant) -> Result<u64> {
        let st = &self.st.events;
        let cut = day(before);
        let mut removed = 0u64;
        let days: Vec<(i32,)> = self.rows(&st.days, ("*", i32::MIN, cut)).await?;
        for (d,) in days {
            let rows: Vec<(i64, String, String)> = self.rows(&st.of_day, ("*", d, before)).await?;
            let mut day_scopes = BTreeSet::new();
            for (time, id, body) in &rows {
                let e = parse::<Event>(body)?;
                for scope in scopes(&e.flow) {
                    self.exec(&st.delete, (&scope, d, *time, id)).await?;
                    day_scopes.insert(scope);
                }
                self.exec(&st.id_delete, (id,)).await?;
                self.exec(&st.outbox_delete, (d, *time, id)).await?;
            }
            removed += rows.len() as u64;
            if d < cut {
                day_scopes.insert("*".to_owned());
                for scope in day_scopes {
                    self.exec(&st.day_delete, (&scope, d)).await?;
                }
            }
        }
        Ok(removed)
    }
}
