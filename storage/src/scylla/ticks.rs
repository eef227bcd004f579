//! Ticks (partitioned by flow and UTC day), the latest status per flow (`flow_status`, 16
//! shards clustered by country, LoB, kind and name), events by day and the alarm outbox in
//! ScyllaDB.

use async_trait::async_trait;

use super::*;

#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct TickRow<'a> {
    start: i64,
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    key: i32,
}

impl<'a> TickRow<'a> {
    /// The values of `INSERT … ({TICK_SELECT}, flow, key)`; `key` is the day (ticks) or the
    /// shard (status).
    fn new(t: &'a StoredTick, key: i32) -> Result<TickRow<'a>> {
        let v = t.values;
        Ok(TickRow {
            start: t.start,
            end: t.end,
            actual: to_i64(t.actual, "actual")?,
            status: status_code(t.status) as i8,
            expected: v.map(|v| v.expected),
            day_average: v.map(|v| v.day_average),
            tick_difference: v.map(|v| v.tick_difference),
            day_difference: v.map(|v| v.day_difference),
            difference: v.map(|v| v.difference),
            evaluated_at: t.evaluated_at,
            epoch: to_i64(t.epoch, "epoch")?,
            country: &t.flow.country,
            lob: &t.flow.lob,
            kind: t.flow.kind.as_str(),
            name: &t.flow.name,
            key,
        })
    }
}

type TickColumns = (
    i64,
    i64,
    i64,
    i8,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
);

fn tick_of(flow: FlowId, c: TickColumns) -> Result<StoredTick> {
    let (
        start,
        end,
        actual,
        status,
        expected,
        day_average,
        tick_difference,
        day_difference,
        difference,
        evaluated_at,
        epoch,
    ) = c;
    Ok(StoredTick {
        flow,
        start,
        end,
        actual: actual as u64,
        status: status_from(status as u8)
            .ok_or_else(|| corrupt(format!("unknown status {status}")))?,
        values: expected.map(|expected| TickValues {
            expected,
            day_average: day_average.unwrap_or(f64::NAN),
            tick_difference: tick_difference.unwrap_or(f64::NAN),
            day_difference: day_difference.unwrap_or(f64::NAN),
            difference: difference.unwrap_or(f64::NAN),
            band: None,
        }),
        evaluated_at,
        epoch: epoch as u64,
    })
}

type StatusColumns = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i8,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i64,
    i64,
);

fn split_status(r: StatusColumns) -> (String, String, String, String, TickColumns) {
    let (country, lob, kind, name, a, b, c, d, e, f, g, h, i, j, k) = r;
    (country, lob, kind, name, (a, b, c, d, e, f, g, h, i, j, k))
}

/// `UPDATE ticks SET … WHERE start, flow, day IF epoch <= ?`, bound in that order.
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct TickUpdate<'a> {
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    start: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    day: i32,
    min_epoch: i64,
}

/// `UPDATE flow_status SET start, … WHERE flow, shard IF start <= ?`, bound in that order.
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct StatusUpdate<'a> {
    start: i64,
    end: i64,
    actual: i64,
    status: i8,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    evaluated_at: i64,
    epoch: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    shard: i32,
    max_start: i64,
}

impl<'a> TickUpdate<'a> {
    fn new(r: &TickRow<'a>, min_epoch: i64) -> Self {
        TickUpdate {
            end: r.end,
            actual: r.actual,
            status: r.status,
            expected: r.expected,
            day_average: r.day_average,
            tick_difference: r.tick_difference,
            day_difference: r.day_difference,
            difference: r.difference,
            evaluated_at: r.evaluated_at,
            epoch: r.epoch,
            start: r.start,
            country: r.country,
            lob: r.lob,
            kind: r.kind,
            name: r.name,
            day: r.key,
            min_epoch,
        }
    }
}

impl<'a> StatusUpdate<'a> {
    fn new(r: &TickRow<'a>, max_start: i64) -> Self {
        StatusUpdate {
            start: r.start,
            end: r.end,
            actual: r.actual,
            status: r.status,
            expected: r.expected,
            day_average: r.day_average,
            tick_difference: r.tick_difference,
            day_difference: r.day_difference,
            difference: r.difference,
            evaluated_at: r.evaluated_at,
            epoch: r.epoch,
            country: r.country,
            lob: r.lob,
            kind: r.kind,
            name: r.name,
            shard: r.key,
            max_start,
        }
    }
}

impl ScyllaStore {
    /// The latest tick of every flow, or of those of `scope`, ordered by flow.
    async fn statuses(&self, scope: Option<Scope<'_>>) -> Result<Vec<StoredTick>> {
        let rows: Vec<StatusColumns> = self.sharded(&self.st.statuses, scope).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (country, lob, kind, name, cols) in rows.into_iter().map(split_status) {
            out.push(tick_of(flow_of(country, lob, &kind, name)?, cols)?);
        }
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }
}

#[async_trait]
impl crate::TickStore for ScyllaStore {
    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        let mut out = WriteOutcome::default();
        let mut latest: HashMap<&FlowId, &StoredTick> = HashMap::new();
        for t in &ticks {
            let d = day(t.start);
            self.mark_day("ticks", &t.flow, d).await?;
            let row = TickRow::new(t, d)?;
            let inserted = applied(self.exec(&self.st.tick_insert, &row).await?)?;
            // Not inserted: the tick exists; overwrite it unless a higher epoch wrote it.
            let written = inserted
                || applied(
                    self.exec(&self.st.tick_update, TickUpdate::new(&row, row.epoch))
                        .await?,
                )?;
            if written {
                out.written += 1;
                let e = latest.entry(&t.flow).or_insert(t);
                if t.start > e.start {
                    *e = t;
                }
            } else {
                out.stale += 1;
            }
        }
        for (flow, t) in latest {
            let row = TickRow::new(t, shard(flow))?;
            if !applied(self.exec(&self.st.status_insert, &row).await?)? {
                // Not applied when a later tick is already the status: nothing to do then.
                applied(
                    self.exec(&self.st.status_update, StatusUpdate::new(&row, row.start))
                        .await?,
                )?;
            }
        }
        Ok(out)
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        for d in day(from)..=day(to - 1) {
            let rows: Vec<TickColumns> = self
                .rows(
                    &self.st.read_ticks,
                    (
                        &flow.country,
                        &flow.lob,
                        flow.kind.as_str(),
                        &flow.name,
                        d,
                        from,
                        to,
                    ),
                )
                .await?;
            for c in rows {
                out.push(tick_of(flow.clone(), c)?);
            }
        }
        Ok(out)
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        self.statuses(None).await
    }

    async fn latest_statuses_in(&self, scope: Scope<'_>) -> Result<Vec<StoredTick>> {
        self.statuses(Some(scope)).await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        for e in &events {
            // The id is claimed first: a repeat (or a concurrent writer of it) stops here.
            if !applied(self.exec(&self.st.event_id, (&e.id, e.time)).await?)? {
                continue;
            }
            let body = serde_json::to_string(e).expect("events serialize");
            let d = day(e.time);
            self.exec(
                &self.st.event_insert,
                (
                    d,
                    e.time,
                    &e.id,
                    &e.flow.country,
                    &e.flow.lob,
                    status_code(e.new_status) as i8,
                    body,
                ),
            )
            .await?;
            self.exec(&self.st.event_day, (d,)).await?;
            if !e.revision {
                self.exec(&self.st.outbox_insert, (e.time, &e.id)).await?;
            }
        }
        Ok(())
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        let limit = q.limit.max(1);
        let from = q.from.unwrap_or(Instant::MIN);
        let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let upper = match &cursor {
            Some((t, _)) => t.saturating_add(1),
            None => q.to.unwrap_or(Instant::MAX),
        };
        let statuses: Vec<u8> = q.statuses.iter().map(|s| status_code(*s)).collect();
        let mut days: Vec<(i32,)> = self.rows(&self.st.event_days, ()).await?;
        days.sort_unstable_by(|a, b| b.cmp(a));
        let mut events: Vec<Event> = Vec::new();
        'days: for (d,) in days {
            if d > day(upper.saturating_sub(1)) || d < day(from) {
                continue;
            }
            let mut rows: Vec<(i64, String, String, String, i8, String)> =
                self.rows(&self.st.events_of_day, (d, from, upper)).await?;
            rows.sort_unstable_by(|a, b| (b.0, b.1.as_bytes()).cmp(&(a.0, a.1.as_bytes())));
            for (time, id, country, lob, status, body) in rows {
                if let Some((ct, cid)) = &cursor
                    && (time, id.as_bytes()) >= (*ct, cid.as_bytes())
                {
                    continue;
                }
                if q.country.as_ref().is_some_and(|c| *c != country)
                    || q.lob.as_ref().is_some_and(|l| *l != lob)
                    || (!statuses.is_empty() && !statuses.contains(&(status as u8)))
                {
                    continue;
                }
                events.push(serde_json::from_str(&body).map_err(corrupt)?);
                if events.len() > limit {
                    break 'days;
                }
            }
        }
        Ok(EventPage::from_overfetch(events, limit))
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        let queued: Vec<(i64, String)> = self
            .rows(&self.st.outbox_scan, (limit.min(i32::MAX as usize) as i32,))
            .await?;
        let mut out = Vec::with_capacity(queued.len());
        for (time, id) in queued {
            let body: Vec<(String,)> = self
                .rows(&self.st.event_body, (day(time), time, &id))
                .await?;
            if let Some((body,)) = body.into_iter().next() {
                out.push(serde_json::from_str(&body).map_err(corrupt)?);
            }
        }
        Ok(out)
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        for id in &ids {
            let time: Vec<(i64,)> = self.rows(&self.st.event_time, (id,)).await?;
            if let Some((time,)) = time.first() {
                self.exec(&self.st.outbox_delete, (*time, id)).await?;
            }
        }
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let rows: Vec<(i64,)> = self.rows(&self.st.outbox_count, ()).await?;
        Ok(rows.first().map_or(0, |r| r.0 as u64))
    }
}
