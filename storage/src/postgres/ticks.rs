//! Ticks (by flow id and start), the latest status per flow (`flow_status`), events and the
//! alarm outbox in PostgreSQL.

use async_trait::async_trait;

use super::*;

const TICK_COLUMNS: &str = "start, \"end\", actual, status, expected, day_average, tick_difference, day_difference, difference, evaluated_at, epoch, band_lower, band_outage_below, band_evidence, band_spread";

/// A tick from `TICK_COLUMNS` starting at column `at`.
fn tick_of(flow: FlowId, r: &Row, at: usize) -> Result<StoredTick> {
    let status: i16 = r.get(at + 3);
    let expected: Option<f64> = r.get(at + 4);
    let values = expected.map(|expected| flowwatch_core::detection::TickValues {
        expected,
        day_average: r.get::<_, Option<f64>>(at + 5).unwrap_or(f64::NAN),
        tick_difference: r.get::<_, Option<f64>>(at + 6).unwrap_or(f64::NAN),
        day_difference: r.get::<_, Option<f64>>(at + 7).unwrap_or(f64::NAN),
        difference: r.get::<_, Option<f64>>(at + 8).unwrap_or(f64::NAN),
        band: r
            .get::<_, Option<f64>>(at + 11)
            .map(|lower| flowwatch_core::detection::Band {
                lower,
                outage_below: r.get::<_, Option<f64>>(at + 12).unwrap_or(f64::NAN),
                evidence: r.get::<_, Option<f64>>(at + 13).unwrap_or(f64::NAN),
                spread: r.get::<_, Option<f64>>(at + 14).unwrap_or(f64::NAN),
            }),
    });
    Ok(StoredTick {
        flow,
        start: r.get(at),
        end: r.get(at + 1),
        actual: r.get::<_, i64>(at + 2) as u64,
        status: status_from(status as u8)
            .ok_or_else(|| corrupt(format!("unknown status {status}")))?,
        values,
        evaluated_at: r.get(at + 9),
        epoch: r.get::<_, i64>(at + 10) as u64,
    })
}

/// Columns of ticks as arrays for `UNNEST`.
struct TickArrays {
    flow_id: Vec<i64>,
    start: Vec<i64>,
    end: Vec<i64>,
    actual: Vec<i64>,
    status: Vec<i16>,
    values: [Vec<Option<f64>>; 5],
    evaluated_at: Vec<i64>,
    epoch: Vec<i64>,
    band: [Vec<Option<f64>>; 4],
}

const UNNEST_TICKS: &str = "SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::smallint[],
    $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::bigint[],
    $13::float8[], $14::float8[], $15::float8[], $16::float8[])";

const SET_TICK: &str = "\"end\" = EXCLUDED.\"end\", actual = EXCLUDED.actual, status = EXCLUDED.status,
    expected = EXCLUDED.expected, day_average = EXCLUDED.day_average, tick_difference = EXCLUDED.tick_difference,
    day_difference = EXCLUDED.day_difference, difference = EXCLUDED.difference,
    evaluated_at = EXCLUDED.evaluated_at, epoch = EXCLUDED.epoch,
    band_lower = EXCLUDED.band_lower, band_outage_below = EXCLUDED.band_outage_below,
    band_evidence = EXCLUDED.band_evidence, band_spread = EXCLUDED.band_spread";

impl TickArrays {
    fn new(ticks: &[(i64, &StoredTick)]) -> Result<TickArrays> {
        let mut a = TickArrays {
            flow_id: vec![],
            start: vec![],
            end: vec![],
            actual: vec![],
            status: vec![],
            values: Default::default(),
            evaluated_at: vec![],
            epoch: vec![],
            band: Default::default(),
        };
        for (id, t) in ticks {
            a.flow_id.push(*id);
            a.start.push(t.start);
            a.end.push(t.end);
            a.actual.push(to_i64(t.actual, "actual")?);
            a.status.push(status_code(t.status) as i16);
            let v = t.values.map(|v| {
                [
                    v.expected,
                    v.day_average,
                    v.tick_difference,
                    v.day_difference,
                    v.difference,
                ]
            });
            for (k, column) in a.values.iter_mut().enumerate() {
                column.push(v.map(|v| v[k]));
            }
            a.evaluated_at.push(t.evaluated_at);
            a.epoch.push(to_i64(t.epoch, "epoch")?);
            let b = t
                .values
                .and_then(|v| v.band)
                .map(|b| [b.lower, b.outage_below, b.evidence, b.spread]);
            for (k, column) in a.band.iter_mut().enumerate() {
                column.push(b.map(|b| b[k]));
            }
        }
        Ok(a)
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 16] {
        [
            &self.flow_id,
            &self.start,
            &self.end,
            &self.actual,
            &self.status,
            &self.values[0],
            &self.values[1],
            &self.values[2],
            &self.values[3],
            &self.values[4],
            &self.evaluated_at,
            &self.epoch,
            &self.band[0],
            &self.band[1],
            &self.band[2],
            &self.band[3],
        ]
    }
}

/// The latest tick's columns, joined with `flow_ids f`.
pub(super) fn status_select() -> String {
    let columns: Vec<String> = TICK_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect();
    format!(
        "SELECT f.country, f.lob, f.kind, f.name, {} FROM flow_ids f JOIN flow_status s ON s.flow_id = f.id",
        columns.join(", ")
    )
}

impl PostgresStore {
    async fn statuses(&self, which: Which<'_>) -> Result<Vec<StoredTick>> {
        self.rows_of(&status_select(), which)
            .await?
            .iter()
            .map(|r| tick_of(flow_of(r, 0)?, r, 4))
            .collect()
    }
}

#[async_trait]
impl crate::TickStore for PostgresStore {
    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        let mut c = self.client().await;
        let flows: Vec<&FlowId> = ticks.iter().map(|t| &t.flow).collect();
        let ids = self.flow_ids(&c, &flows, true).await?;
        // One row per (flow, start): the last of the batch wins.
        let mut by_key: HashMap<(i64, i64), &StoredTick> = HashMap::new();
        for t in &ticks {
            by_key.insert((ids[&t.flow], t.start), t);
        }
        let unique: Vec<(i64, &StoredTick)> =
            by_key.into_iter().map(|((id, _), t)| (id, t)).collect();
        let arrays = TickArrays::new(&unique)?;
        let tx = c.transaction().await.map_err(pg)?;
        let written = tx
            .query(
                &format!(
                    "INSERT INTO ticks (flow_id, {TICK_COLUMNS}) {UNNEST_TICKS}
                     ON CONFLICT (flow_id, start) DO UPDATE SET {SET_TICK} WHERE ticks.epoch <= EXCLUDED.epoch
                     RETURNING flow_id, start"
                ),
                &arrays.params(),
            )
            .await
            .map_err(pg)?;
        // Each flow's latest written tick moves its status forward.
        let mut latest: HashMap<i64, i64> = HashMap::new();
        for r in &written {
            let (id, start): (i64, i64) = (r.get(0), r.get(1));
            let e = latest.entry(id).or_insert(start);
            *e = (*e).max(start);
        }
        let newest: Vec<(i64, &StoredTick)> = unique
            .iter()
            .filter(|(id, t)| latest.get(id) == Some(&t.start))
            .copied()
            .collect();
        let arrays = TickArrays::new(&newest)?;
        tx.execute(
            &format!(
                "INSERT INTO flow_status (flow_id, {TICK_COLUMNS}) {UNNEST_TICKS}
                 ON CONFLICT (flow_id) DO UPDATE SET start = EXCLUDED.start, {SET_TICK}
                 WHERE flow_status.start <= EXCLUDED.start"
            ),
            &arrays.params(),
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        let written = written.len() as u64;
        Ok(WriteOutcome {
            written,
            stale: ticks.len() as u64 - written.min(ticks.len() as u64),
        })
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let c = self.client().await;
        let Some(&id) = self.flow_ids(&c, &[flow], false).await?.get(flow) else {
            return Ok(vec![]);
        };
        let rows = c
            .query(
                &format!("SELECT {TICK_COLUMNS} FROM ticks WHERE flow_id = $1 AND start >= $2 AND start < $3 ORDER BY start"),
                &[&id, &from, &to],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(|r| tick_of(flow.clone(), r, 0)).collect()
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        self.statuses(Which::All).await
    }

    async fn latest_statuses_in(&self, scope: Scope<'_>) -> Result<Vec<StoredTick>> {
        self.statuses(Which::In(scope)).await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        let c = self.client().await;
        let mut seen = std::collections::HashSet::new();
        let (mut id, mut time, mut country, mut lob, mut status, mut body, mut alarm) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut kind, mut name, mut ends_ack) = (vec![], vec![], vec![]);
        for e in &events {
            if !seen.insert(e.id.as_str()) {
                continue;
            }
            id.push(e.id.as_str());
            time.push(e.time);
            country.push(e.flow.country.as_str());
            lob.push(e.flow.lob.as_str());
            status.push(status_code(e.new_status) as i16);
            body.push(serde_json::to_value(e).expect("events serialize"));
            alarm.push(e.alarmed());
            kind.push(e.flow.kind.as_str());
            name.push(e.flow.name.as_str());
            ends_ack.push(!e.keeps_acknowledgement());
        }
        // New events only (a repeated id is left as it is); of those, the alarms are queued,
        // and those that end an episode drop their flow's acknowledgement.
        c.execute(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[],
                                      $5::smallint[], $6::jsonb[], $7::bool[],
                                      $8::text[], $9::text[], $10::bool[])
                 WITH ORDINALITY AS u(i, t, c, l, s, b, a, k, nm, e, n)
             ), new AS (
                 INSERT INTO events (id, time, country, lob, new_status, body)
                 SELECT i, t, c, l, s, b FROM input ORDER BY n
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id
             ), acks AS (
                 DELETE FROM flow_acks f USING input JOIN new ON new.id = input.i
                 WHERE input.e AND f.country = input.c AND f.lob = input.l
                   AND f.kind = input.k AND f.name = input.nm
             )
             INSERT INTO outbox (id)
             SELECT input.i FROM input JOIN new ON new.id = input.i WHERE input.a",
            &[
                &id, &time, &country, &lob, &status, &body, &alarm, &kind, &name, &ends_ack,
            ],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        let row = (self.client().await)
            .query_opt("SELECT body FROM events WHERE id = $1", &[&id])
            .await
            .map_err(pg)?;
        row.map(|r| serde_json::from_value(r.get(0)).map_err(corrupt))
            .transpose()
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        let limit = q.limit.max(1);
        let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let (cursor_time, cursor_id) = match &cursor {
            Some((t, id)) => (Some(*t), Some(id.as_str())),
            None => (None, None),
        };
        let statuses: Vec<i16> = q.statuses.iter().map(|s| status_code(*s) as i16).collect();
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT body FROM events
                 WHERE time >= $1 AND time < $2
                   AND ($3::text IS NULL OR country = $3) AND ($4::text IS NULL OR lob = $4)
                   AND (cardinality($5::smallint[]) = 0 OR new_status = ANY($5))
                   AND ($6::bigint IS NULL OR time < $6 OR (time = $6 AND id COLLATE \"C\" < $7))
                   AND (NOT $9 OR (NOT (body->>'revision')::boolean
                        AND (body->>'previousStatus' IN ('WARNING', 'OUTAGE')
                             OR body->>'newStatus' IN ('WARNING', 'OUTAGE'))))
                 ORDER BY time DESC, id COLLATE \"C\" DESC
                 LIMIT $8",
                &[
                    &q.from.unwrap_or(Instant::MIN),
                    &q.to.unwrap_or(Instant::MAX),
                    &q.country,
                    &q.lob,
                    &statuses,
                    &cursor_time,
                    &cursor_id,
                    &(limit as i64 + 1),
                    &q.actionable,
                ],
            )
            .await
            .map_err(pg)?;
        let events: Vec<Event> = rows
            .iter()
            .map(|r| serde_json::from_value(r.get(0)).map_err(corrupt))
            .collect::<Result<_>>()?;
        Ok(EventPage::from_overfetch(events, limit))
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT e.body FROM outbox o JOIN events e USING (id) ORDER BY e.time, e.id LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(pg)?;
        rows.into_iter()
            .map(|r| {
                serde_json::from_value(r.get::<_, serde_json::Value>(0))
                    .map_err(|e| corrupt(format!("event body: {e}")))
            })
            .collect()
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        let c = self.client().await;
        c.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn outbox_len(&self) -> Result<u64> {
        let c = self.client().await;
        let row = c
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
