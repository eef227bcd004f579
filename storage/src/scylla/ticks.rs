//! Ticks (partitioned by flow and UTC day), the latest status per flow (`flow_status`, 16
//! shards clustered by country, LoB, kind and name), events by day and the alarm outbox in
//! ScyllaDB.

use async_trait::async_trait;

use flowwatch_core::detection::{Band, TickValues};
use scylla::DeserializeRow;
use scylla::serialize::SerializationError;
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::RowWriter;

use super::*;

/// The values of `INSERT … (TICK_VALUES, start, flow, key)`; `key` is the day (ticks) or
/// the shard (status).
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
struct TickRow<'a> {
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
    start: i64,
    country: &'a str,
    lob: &'a str,
    kind: &'a str,
    name: &'a str,
    key: i32,
}

impl<'a> TickRow<'a> {
    fn new(t: &'a StoredTick, key: i32) -> Result<TickRow<'a>> {
        let v = t.values;
        let band = v.and_then(|v| v.band);
        Ok(TickRow {
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
            band_lower: band.map(|b| b.lower),
            band_outage_below: band.map(|b| b.outage_below),
            band_evidence: band.map(|b| b.evidence),
            band_spread: band.map(|b| b.spread),
            start: t.start,
            country: &t.flow.country,
            lob: &t.flow.lob,
            kind: t.flow.kind.as_str(),
            name: &t.flow.name,
            key,
        })
    }
}

/// The values of both conditional updates, `UPDATE ticks SET TICK_VALUES WHERE start, flow,
/// day IF epoch <= ?` and `UPDATE flow_status SET TICK_VALUES, start WHERE flow, shard IF
/// start <= ?`: a [`TickRow`], then the condition's bound.
struct TickUpdate<'r, 'a>(&'r TickRow<'a>, i64);

impl SerializeRow for TickUpdate<'_, '_> {
    fn serialize(
        &self,
        ctx: &RowSerializationContext<'_>,
        writer: &mut RowWriter,
    ) -> std::result::Result<(), SerializationError> {
        let Some((bound, row)) = ctx.columns().split_last() else {
            let e = corrupt("a conditional tick update without bind markers");
            return Err(SerializationError::new(e));
        };
        self.0
            .serialize(&RowSerializationContext::from_specs(row), writer)?;
        SerializeValue::serialize(&self.1, bound.typ(), writer.make_cell_writer())?;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// A row of the tick reads (`TickStatements::read`, `statuses`) from `ticks` or `flow_status`, matched to the columns by
/// name.
#[derive(DeserializeRow)]
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
    /// The latest tick of every flow, or of those of `scope`, ordered by flow.
    async fn statuses(&self, scope: Option<Scope<'_>>) -> Result<Vec<StoredTick>> {
        let rows: Vec<TickColumns> = self.sharded(&self.st.statuses, scope).await?;
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
                    self.exec(&self.st.tick_update, TickUpdate(&row, row.epoch))
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
                    self.exec(&self.st.status_update, TickUpdate(&row, row.start))
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
            for row in rows {
                out.push(row.into_tick(Some(flow))?);
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
            if e.alarmed() {
                self.exec(&self.st.outbox_insert, (e.time, &e.id)).await?;
            }
            if !e.keeps_acknowledgement() {
                let f = &e.flow;
                self.exec(
                    &self.st.flow_ack_delete,
                    (&f.country, &f.lob, f.kind.as_str(), &f.name),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        let time: Vec<(i64,)> = self.rows(&self.st.event_time, (id,)).await?;
        let Some(&(time,)) = time.first() else {
            return Ok(None);
        };
        let rows: Vec<(String,)> = self
            .rows(&self.st.event_body, (day(time), time, id))
            .await?;
        match rows.first() {
            Some((body,)) => serde_json::from_str(body).map(Some).map_err(corrupt),
            None => Err(corrupt(format!("event {id} is indexed but missing"))),
        }
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
                // The columns first: most rows are left without reading their body.
                if q.country.as_ref().is_some_and(|c| *c != country)
                    || q.lob.as_ref().is_some_and(|l| *l != lob)
                    || (!statuses.is_empty() && !statuses.contains(&(status as u8)))
                {
                    continue;
                }
                let e: Event = serde_json::from_str(&body).map_err(corrupt)?;
                if q.actionable && !e.actionable() {
                    continue;
                }
                events.push(e);
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

#[cfg(test)]
mod tests {
    //! No ScyllaDB node runs here: the tick statements are checked against the tables the
    //! schema files (and their upgrades) describe, with the driver's own type checks — what
    //! preparing them on a node would report for a wrong column, count or type.

    use std::collections::HashMap;

    use scylla::deserialize::row::DeserializeRow as _;
    use scylla::frame::response::result::{ColumnSpec, ColumnType, NativeType, TableSpec};

    use super::super::{SCHEMA, TickStatements, UPGRADES, schema_statements};
    use super::*;

    /// Each table's columns and their CQL types at this schema version.
    fn tables() -> HashMap<String, HashMap<String, String>> {
        let mut tables: HashMap<String, HashMap<String, String>> = HashMap::new();
        let upgrades = UPGRADES.iter().map(|(_, cql)| *cql);
        for statement in SCHEMA
            .iter()
            .copied()
            .chain(upgrades)
            .flat_map(schema_statements)
        {
            let words: Vec<&str> = statement.split_whitespace().collect();
            if let ["ALTER", "TABLE", table, "ADD", column, typ] = words[..] {
                let table = tables.get_mut(table).expect("altered after created");
                table.insert(column.to_owned(), typ.to_owned());
                continue;
            }
            let name = words[5].trim_end_matches('(').to_owned();
            let (_, body) = statement.split_once('(').expect("a column list");
            let mut columns = HashMap::new();
            let mut depth = 0;
            let mut column = String::new();
            for c in body.chars().chain([',']) {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => break,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        let words: Vec<&str> = column.split_whitespace().collect();
                        if let [name, typ, ..] = words[..]
                            && name != "PRIMARY"
                        {
                            columns.insert(name.trim_matches('"').to_owned(), typ.to_owned());
                        }
                        column.clear();
                        continue;
                    }
                    _ => {}
                }
                column.push(c);
            }
            let words: Vec<&str> = column.split_whitespace().collect();
            if let [name, typ, ..] = words[..] {
                columns.insert(name.trim_matches('"').to_owned(), typ.to_owned());
            }
            tables.insert(name, columns);
        }
        tables
    }

    /// The columns a statement binds (each `?`, in order) or selects, as a node describes
    /// them.
    fn specs(statement: &str, select: bool) -> Vec<ColumnSpec<'static>> {
        let words: Vec<&str> = statement
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == ',' || c == '(' || c == ')'))
            .collect();
        let table = match words[..] {
            ["INSERT", "INTO", table, ..] | ["UPDATE", table, ..] => table,
            _ => words[words.iter().position(|w| *w == "FROM").expect("FROM") + 1],
        };
        let names: Vec<&str> = if select {
            words[1..words.iter().position(|w| *w == "FROM").expect("FROM")].to_vec()
        } else if words[0] == "INSERT" {
            let values = words.iter().position(|w| *w == "VALUES").expect("VALUES");
            words[3..values].to_vec()
        } else {
            let marks = words.iter().enumerate().filter(|(_, w)| **w == "?");
            marks.map(|(at, _)| words[at - 2]).collect()
        };
        let columns = &tables()[table];
        names
            .into_iter()
            .map(|name| {
                let name = name.trim_matches('"');
                let typ = match columns.get(name).map(String::as_str) {
                    Some("text") => NativeType::Text,
                    Some("bigint") => NativeType::BigInt,
                    Some("int") => NativeType::Int,
                    Some("tinyint") => NativeType::TinyInt,
                    Some("double") => NativeType::Double,
                    other => panic!("{table} has no column {name} of a known type: {other:?}"),
                };
                let table = TableSpec::owned("flowwatch".into(), table.into());
                ColumnSpec::owned(name.into(), ColumnType::Native(typ), table)
            })
            .collect()
    }

    fn binds(
        statement: &str,
        row: &impl scylla::serialize::row::SerializeRow,
    ) -> Result<(), String> {
        let specs = specs(statement, false);
        let mut buf = Vec::new();
        row.serialize(
            &RowSerializationContext::from_specs(&specs),
            &mut RowWriter::new(&mut buf),
        )
        .map_err(|e| e.to_string())
    }

    fn band_tick() -> StoredTick {
        StoredTick {
            flow: FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap(),
            start: 3600,
            end: 7200,
            actual: 10,
            status: flowwatch_core::detection::Status::Outage,
            values: Some(TickValues {
                expected: 100.0,
                day_average: 90.0,
                tick_difference: 0.1,
                day_difference: 0.11,
                difference: 0.1,
                band: Some(Band {
                    lower: 60.0,
                    outage_below: 40.0,
                    evidence: 3.5,
                    spread: 0.2,
                }),
            }),
            evaluated_at: 7300,
            epoch: 1,
        }
    }

    #[test]
    fn the_tick_statements_bind_and_read_the_tables_columns_band_included() {
        let s = TickStatements::new();
        let tick = band_tick();
        let row = TickRow::new(&tick, 0).unwrap();
        assert_eq!(row.band_outage_below, Some(40.0));
        for statement in [&s.insert, &s.status_insert] {
            binds(statement, &row).unwrap_or_else(|e| panic!("{statement}: {e}"));
            assert!(statement.contains("band_spread"), "{statement}");
        }
        for statement in [&s.update, &s.status_update] {
            let update = TickUpdate(&row, 1);
            binds(statement, &update).unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        // The model tells a mismatch: the insert's values do not bind an update.
        assert!(binds(&s.update, &row).is_err());
        for statement in [&s.read, &s.statuses] {
            TickColumns::type_check(&specs(statement, true))
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        let without_band = s.read.replace(", band_spread", "");
        assert!(TickColumns::type_check(&specs(&without_band, true)).is_err());
        binds(
            &s.read,
            &(
                &tick.flow.country,
                &tick.flow.lob,
                "input",
                "A",
                0,
                0i64,
                1i64,
            ),
        )
        .unwrap();
    }

    #[test]
    fn a_row_read_back_keeps_the_band_and_a_row_without_one_has_none() {
        let tick = band_tick();
        let row = TickRow::new(&tick, 0).unwrap();
        let columns = |band: bool| TickColumns {
            country: "CZ".into(),
            lob: "GSM".into(),
            kind: "input".into(),
            name: "A".into(),
            start: row.start,
            end: row.end,
            actual: row.actual,
            status: row.status,
            expected: row.expected,
            day_average: row.day_average,
            tick_difference: row.tick_difference,
            day_difference: row.day_difference,
            difference: row.difference,
            evaluated_at: row.evaluated_at,
            epoch: row.epoch,
            band_lower: row.band_lower.filter(|_| band),
            band_outage_below: row.band_outage_below.filter(|_| band),
            band_evidence: row.band_evidence.filter(|_| band),
            band_spread: row.band_spread.filter(|_| band),
        };
        assert_eq!(columns(true).into_tick(None).unwrap(), tick);
        assert_eq!(columns(true).into_tick(Some(&tick.flow)).unwrap(), tick);
        let plain = columns(false).into_tick(None).unwrap();
        assert_eq!(plain.values.unwrap().band, None);
    }
}
