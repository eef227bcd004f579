//! Records grouped by flow: what every ingest path hands a worker and what a replay evaluates.
//!
//! A body of a million lines names a few thousand flows. Grouping while parsing makes one
//! [`FlowId`] per flow, not one per record, and a CSV line whose flow was seen before is not
//! split again: its flow columns, as written, are the key of its group.

use crate::InputError;
use std::collections::HashMap;

use super::{Record, RecordRef, parse_bytes, parse_csv_line};
use crate::hash::FxBuildHasher;
use crate::id::FlowId;
use crate::time::{Instant, parse_rfc3339};

/// Records grouped by flow: each flow once, in order of its first record, with its records
/// (time, bytes) in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// A flow's key (see [`flow_key`]) → its place in `flows`.
    index: HashMap<Box<str>, usize, FxBuildHasher>,
    flows: Vec<(FlowId, Vec<(Instant, u64)>)>,
    /// Scratch for building keys.
    key: String,
}

/// The key of a flow: its four columns joined by commas, exactly as an unquoted CSV line
/// carries them; a flow whose parts hold a comma or a quote (so its lines are quoted) gets a
/// length-prefixed key that starts with a quote, which no unquoted line's columns can equal.
fn flow_key(out: &mut String, country: &str, lob: &str, kind: &str, name: &str) {
    use std::fmt::Write;
    out.clear();
    let parts = [country, lob, kind, name];
    if parts.iter().any(|p| p.contains([',', '"'])) {
        out.push('"');
        for p in parts {
            let _ = write!(out, "{}:{p}", p.len());
        }
    } else {
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(p);
        }
    }
}

impl Batch {
    /// Records in all.
    pub fn len(&self) -> usize {
        self.flows.iter().map(|f| f.1.len()).sum()
    }

    /// No records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flows with their records.
    pub fn flows(&self) -> &[(FlowId, Vec<(Instant, u64)>)] {
        &self.flows
    }

    /// Takes the flows with their records.
    pub fn into_flows(self) -> Vec<(FlowId, Vec<(Instant, u64)>)> {
        self.flows
    }

    /// Every record, flow by flow.
    pub fn records(&self) -> impl Iterator<Item = (&FlowId, Instant, u64)> {
        self.flows
            .iter()
            .flat_map(|(f, rs)| rs.iter().map(move |&(t, b)| (f, t, b)))
    }

    fn push(&mut self, slot: usize, time: Instant, bytes: u64) {
        self.flows[slot].1.push((time, bytes));
    }

    /// The slot of the flow whose key is in `self.key`, made with `flow` if new; `accept` is
    /// asked about a new flow (a refused flow gets no slot and is asked again next time).
    fn slot(
        &mut self,
        flow: impl FnOnce() -> FlowId,
        accept: impl FnOnce(&FlowId) -> Result<(), InputError>,
    ) -> Result<usize, InputError> {
        if let Some(&slot) = self.index.get(self.key.as_str()) {
            return Ok(slot);
        }
        let flow = flow();
        accept(&flow)?;
        self.flows.push((flow, Vec::new()));
        self.index
            .insert(self.key.as_str().into(), self.flows.len() - 1);
        Ok(self.flows.len() - 1)
    }

    /// Adds a parsed record; `accept` decides about a flow not in the batch yet.
    pub fn add(
        &mut self,
        r: &RecordRef<'_>,
        accept: impl FnOnce(&FlowId) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        flow_key(&mut self.key, &r.country, &r.lob, r.kind.as_str(), &r.name);
        let slot = self.slot(|| r.flow_id(), accept)?;
        self.push(slot, r.time, r.bytes);
        Ok(())
    }

    /// Adds an owned record; `accept` decides about a flow not in the batch yet.
    pub fn add_record(
        &mut self,
        r: Record,
        accept: impl FnOnce(&FlowId) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        let f = &r.flow;
        flow_key(&mut self.key, &f.country, &f.lob, f.kind.as_str(), &f.name);
        let slot = self.slot(|| r.flow, accept)?;
        self.push(slot, r.time, r.bytes);
        Ok(())
    }

    /// Adds one data line of the traffic CSV, refused with the reason [`parse_csv_line`] gives.
    /// A line of a flow already in the batch has only its time and bytes parsed.
    pub fn add_csv_line(
        &mut self,
        line: &str,
        accept: impl FnOnce(&FlowId) -> Result<(), InputError>,
    ) -> Result<(), InputError> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.as_bytes().contains(&b'"')
            && let (Some(first), Some(last)) = (line.find(','), line.rfind(','))
            && first < last
            && let Some(&slot) = self.index.get(&line[first + 1..last])
        {
            // Its flow columns were valid before: only the time and the bytes can be wrong,
            // checked in the order `parse_csv_line` checks them.
            let time = parse_rfc3339(&line[..first])?;
            let bytes = parse_bytes(&line[last + 1..])?;
            self.push(slot, time, bytes);
            return Ok(());
        }
        self.add(&parse_csv_line(line)?, accept)
    }

    /// Takes over the records of `other`, after this batch's records of the same flow.
    pub fn extend(&mut self, other: Batch) {
        for (flow, records) in other.flows {
            flow_key(
                &mut self.key,
                &flow.country,
                &flow.lob,
                flow.kind.as_str(),
                &flow.name,
            );
            let slot = self
                .slot(|| flow, |_| Ok(()))
                .expect("accepted by the other batch");
            self.flows[slot].1.extend(records);
        }
    }
}

impl PartialEq for Batch {
    fn eq(&self, other: &Batch) -> bool {
        self.flows == other.flows
    }
}

impl Eq for Batch {}

impl FromIterator<Record> for Batch {
    fn from_iter<I: IntoIterator<Item = Record>>(records: I) -> Batch {
        let mut batch = Batch::default();
        for r in records {
            batch
                .add_record(r, |_| Ok(()))
                .expect("every flow accepted");
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::FlowKind;

    fn flow(lob: &str, name: &str) -> FlowId {
        FlowId::new("CZ", lob, FlowKind::Input, name).unwrap()
    }

    fn groups(b: &Batch) -> Vec<(String, Vec<(Instant, u64)>)> {
        b.flows()
            .iter()
            .map(|(f, rs)| (format!("{}/{}", f.lob, f.name), rs.clone()))
            .collect()
    }

    #[test]
    fn groups_by_flow_in_first_seen_order() {
        let t = 1_486_335_600;
        let mut b = Batch::default();
        for line in [
            "2017-02-05T23:00:00Z,CZ,GSM,input,A,1",
            "2017-02-05T23:00:01Z,CZ,GSM,input,B,2\r",
            "2017-02-05T23:00:02Z,CZ,GSM,input,A,3",
            // The same flow quoted: one group with the unquoted lines.
            "2017-02-05T23:00:03Z,\"CZ\",GSM,input,\"A\",4",
            // A quoted name with a comma: its own flow, its key cannot meet an unquoted one.
            "2017-02-05T23:00:04Z,CZ,GSM,input,\"A,B\",5",
            "2017-02-05T23:00:05Z,CZ,GSM,input,\"A,B\",6",
        ] {
            b.add_csv_line(line, |_| Ok(())).unwrap();
        }
        assert_eq!(
            groups(&b),
            [
                ("GSM/A".into(), vec![(t, 1), (t + 2, 3), (t + 3, 4)]),
                ("GSM/B".into(), vec![(t + 1, 2)]),
                ("GSM/A,B".into(), vec![(t + 4, 5), (t + 5, 6)]),
            ]
        );
        assert_eq!(b.len(), 6);
    }

    #[test]
    fn a_known_flow_line_is_still_checked_whole() {
        let mut b = Batch::default();
        b.add_csv_line("2017-02-05T23:00:00Z,CZ,GSM,input,A,1", |_| Ok(()))
            .unwrap();
        for (line, why) in [
            ("2017-02-31T23:00:00Z,CZ,GSM,input,A,1", "no such date"),
            (
                "2017-02-05T23:00:00Z,CZ,GSM,input,A,x",
                "invalid bytes \"x\"",
            ),
            (
                "2017-02-05T23:00:00Z,CZ,GSM,input,A,1,2",
                "expected 6 fields",
            ),
            ("x,CZ,GSM,input,A,1,2", "expected 6 fields"),
            ("2017-02-05T23:00:00Z,CZ,GSM,input,A", "expected 6 fields"),
        ] {
            let err = b.add_csv_line(line, |_| Ok(())).unwrap_err().to_string();
            assert!(err.contains(why), "{line}: {err}");
        }
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_refused_flow_is_asked_about_again_and_never_grouped() {
        let mut b = Batch::default();
        let mut asked = 0;
        for _ in 0..2 {
            let err = b
                .add_csv_line("2017-02-05T23:00:00Z,XX,GSM,input,A,1", |_| {
                    asked += 1;
                    Err(InputError::UnknownCountry("XX".into()))
                })
                .unwrap_err();
            assert_eq!(err, InputError::UnknownCountry("XX".into()));
        }
        assert_eq!((asked, b.len(), b.flows().len()), (2, 0, 0));
    }

    #[test]
    fn extend_and_collect_keep_one_group_per_flow() {
        let r = |name: &str, time: Instant| Record {
            time,
            flow: flow("GSM", name),
            bytes: 1,
        };
        let mut a: Batch = [r("A", 1), r("B", 2)].into_iter().collect();
        let b: Batch = [r("B", 3), r("C", 4), r("A", 5)].into_iter().collect();
        a.extend(b);
        assert_eq!(
            groups(&a),
            [
                ("GSM/A".into(), vec![(1, 1), (5, 1)]),
                ("GSM/B".into(), vec![(2, 1), (3, 1)]),
                ("GSM/C".into(), vec![(4, 1)]),
            ]
        );
        assert_eq!(a.len(), 5);
        assert_eq!(a.records().count(), 5);
    }
}
