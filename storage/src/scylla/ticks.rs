//! Ticks in ScyllaDB (partitioned by flow and UTC day, fenced by epoch with lightweight
//! transactions) and the latest status per flow (`flow_status`, partitioned by country, LoB
//! and bucket, moved forward by the write's timestamp); events and the outbox are `events.rs`.

use async_trait::async_trait;

use flowwatch_core::detection::{Band, TickValues};

use super::cql::FromCql;
use super::*;

/// The values of `INSERT … (TICK_VALUES, start, flow, key)`; `key` is the day (ticks) or
/// the bucket (status).
fn tick_values(t: &StoredTick, key: i32) -> Result<Values> {
    let v = t.values;
    let band = v.and_then(|v| v.band);
    let f = &t.flow;
    Ok((
        t.end,
        to_i64(t.actual, "actual")?,
        status_code(t.status) as i8,
        v.map(|v| v.expected),
        v.map(|v| v.day_average),
        v.map(|v| v.tick_difference),
        v.map(|v| v.day_difference),
    )
        .bind()
        .into_iter()
        .chain(
            (
                v.map(|v| v.difference),
                t.evaluated_at,
                to_i64(t.epoch, "epoch")?,
                band.map(|b| b.lower),
                band.map(|b| b.outage_below),
                band.map(|b| b.evidence),
                band.map(|b| b.spread),
                t.start,
            )
                .bind(),
        )
        .chain((&f.country, &f.lob, f.kind.as_str(), &f.name, key).bind())
        .collect())
}

/// The values of `UPDATE ticks SET TICK_VALUES WHERE start, flow, day IF epoch <= ?` (a
/// tick's values as [`tick_values`] binds them, then the condition's bound), or of the status
/// insert (then its timestamp).
fn and_then(row: &Values, last: i64) -> Values {
    let mut values = row.clone();
    values.push(Some(CqlValue::BigInt(last)));
    values
}

/// The write timestamp of a status: its tick's start in microseconds, plus how many seconds
/// after it the tick was evaluated (up to 999 999), so the latest tick wins and, of two
/// evaluations of it, the later; never ahead of the wall clock, so no ordinary write is
/// shadowed.
fn status_timestamp(t: &StoredTick) -> i64 {
    let late = t.evaluated_at.saturating_sub(t.start).clamp(0, 999_999);
    t.start
        .max(0)
        .saturating_mul(1_000_000)
        .saturating_add(late)
}

/// A row of the tick reads (`TickStatements::read`, `statuses`) from `ticks` or `flow_status`:
/// the flow, the start, then `TICK_VALUES` in order.
struct TickColumns {
    country: String,
    lob: String,
    kind: String,
    name: String,
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
    band_lower: Option<f64>,
    band_outage_below: Option<f64>,
    band_evidence: Option<f64>,
    band_spread: Option<f64>,
}

impl FromRow for TickColumns {
    fn from_row(row: Values) -> Result<Self> {
        if row.len() != 19 {
            return Err(corrupt(format!("a tick row of {} columns", row.len())));
        }
        let mut c = row.into_iter();
        let mut next = || c.next().flatten();
        Ok(TickColumns {
            country: FromCql::from_cql(next())?,
            lob: FromCql::from_cql(next())?,
            kind: FromCql::from_cql(next())?,
            name: FromCql::from_cql(next())?,
            start: FromCql::from_cql(next())?,
            end: FromCql::from_cql(next())?,
            actual: FromCql::from_cql(next())?,
            status: FromCql::from_cql(next())?,
            expected: FromCql::from_cql(next())?,
            day_average: FromCql::from_cql(next())?,
            tick_difference: FromCql::from_cql(next())?,
            day_difference: FromCql::from_cql(next())?,
            difference: FromCql::from_cql(next())?,
            evaluated_at: FromCql::from_cql(next())?,
            epoch: FromCql::from_cql(next())?,
            band_lower: FromCql::from_cql(next())?,
            band_outage_below: FromCql::from_cql(next())?,
            band_evidence: FromCql::from_cql(next())?,
            band_spread: FromCql::from_cql(next())?,
        })
    }
}

impl TickColumns {
    /// The stored tick, of `flow` when the caller knows it, else of the flow the row names.
    fn into_tick(self, flow: Option<&FlowId>) -> Result<StoredTick> {
        let c = self;
        let band = c.band_lower.map(|lower| Band {
            lower,
            outage_below: c.band_outage_below.unwrap_or(f64::NAN),
            evidence: c.band_evidence.unwrap_or(f64::NAN),
            spread: c.band_spread.unwrap_or(f64::NAN),
        });
        let values = c.expected.map(|expected| TickValues {
            expected,
            day_average: c.day_average.unwrap_or(f64::NAN),
            tick_difference: c.tick_difference.unwrap_or(f64::NAN),
            day_difference: c.day_difference.unwrap_or(f64::NAN),
            difference: c.difference.unwrap_or(f64::NAN),
            band,
        });
        let flow = match flow {
            Some(flow) => flow.clone(),
            None => flow_of(c.country, c.lob, &c.kind, c.name)?,
        };
        Ok(StoredTick {
            flow,
            start: c.start,
            end: c.end,
            actual: c.actual as u64,
            status: status_from(c.status as u8)
                .ok_or_else(|| corrupt(format!("unknown status {}", c.status)))?,
            values,
            evaluated_at: c.evaluated_at,
            epoch: c.epoch as u64,
        })
    }
}

impl ScyllaStore {
    /// One flow's ticks, in order, then its status.
    async fn write_flow_ticks(
        &self,
        flow: &FlowId,
        ticks: Vec<&StoredTick>,
    ) -> Result<WriteOutcome> {
        let mut out = WriteOutcome::default();
        let mut latest: Option<&StoredTick> = None;
        for t in ticks {
            let row = tick_values(t, day(t.start))?;
            let inserted = applied(self.exec(&self.st.tick_insert, row.clone()).await?)?;
            // Not inserted: the tick exists; overwrite it unless a higher epoch wrote it.
            let written = inserted
                || applied(
                    self.exec(
                        &self.st.tick_update,
                        and_then(&row, to_i64(t.epoch, "epoch")?),
                    )
                    .await?,
                )?;
            if written {
                out.written += 1;
                if latest.is_none_or(|l| t.start > l.start) {
                    latest = Some(t);
                }
            } else {
                out.stale += 1;
            }
        }
        if let Some(t) = latest {
            let row = tick_values(t, bucket(flow))?;
            self.exec(&self.st.status_insert, and_then(&row, status_timestamp(t)))
                .await?;
        }
        Ok(out)
    }

    /// The latest tick of every flow, or of those of `scope`, ordered by flow.
    async fn statuses(&self, scope: Option<Scope<'_>>) -> Result<Vec<StoredTick>> {
        let rows: Vec<TickColumns> = self.scoped(&self.st.statuses, scope).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(row.into_tick(None)?);
        }
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }
}

#[async_trait]
impl crate::TickStore for ScyllaStore {
    /// Per tick, `INSERT … IF NOT EXISTS`, and for a tick stored already `UPDATE … IF epoch
    /// <= ?`; the flows of a call are written [`CONCURRENT_WRITES`] at a time, each flow's ticks
    /// in order; then each flow's latest status moves forward (`IF start <= ?`).
    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        self.index_days("ticks", ticks.iter().map(|t| (&t.flow, day(t.start))))
            .await?;
        self.note_lobs(ticks.iter().map(|t| &t.flow)).await?;
        let mut flows: BTreeMap<&FlowId, Vec<&StoredTick>> = BTreeMap::new();
        for t in &ticks {
            flows.entry(&t.flow).or_default().push(t);
        }
        let writes: Vec<_> = flows
            .into_iter()
            .map(|(flow, ticks)| self.write_flow_ticks(flow, ticks))
            .collect();
        let outcomes = bounded(writes).await?;
        let mut out = WriteOutcome::default();
        for o in outcomes {
            out.written += o.written;
            out.stale += o.stale;
        }
        Ok(out)
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let rows: Vec<TickColumns> = self
            .series_rows("ticks", &self.st.read_ticks, flow, from, to)
            .await?;
        let mut out = rows
            .into_iter()
            .map(|row| row.into_tick(Some(flow)))
            .collect::<Result<Vec<_>>>()?;
        // Days come in token order.
        out.sort_by_key(|t| t.start);
        Ok(out)
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        self.statuses(None).await
    }

    async fn latest_statuses_in(&self, scope: Scope<'_>) -> Result<Vec<StoredTick>> {
        self.statuses(Some(scope)).await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        self.append(events).await
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        self.event_by_id(id).await
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        self.events_page(q).await
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        self.outbox_oldest(limit).await
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        self.outbox_remove(ids).await
    }

    async fn outbox_len(&self) -> Result<u64> {
        self.outbox_count().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::detection::Status;

    fn at(start: Instant, evaluated_at: Instant) -> i64 {
        let flow = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
        status_timestamp(&StoredTick {
            flow,
            start,
            end: start + 60,
            actual: 0,
            status: Status::Ok,
            values: None,
            evaluated_at,
            epoch: 1,
        })
    }

    #[test]
    fn a_status_timestamp_orders_by_start_then_evaluation_and_stays_behind_the_clock() {
        let t = 1_700_000_000;
        // A later tick wins over an earlier one however late that was evaluated.
        assert!(at(t + 1, t + 1) > at(t, t + 11 * 86_400));
        // Of two evaluations of one tick, the later.
        assert!(at(t, t + 120) > at(t, t + 60));
        // Never ahead of the wall clock for a tick that has ended.
        let now = crate::now();
        assert!(at(now - 60, now) <= super::super::events::now_micros());
    }
}
