//! The flow registry in ScyllaDB: `flows`, partitioned by (country, LoB, bucket) and clustered
//! by (kind, name), so a LoB's flows are its 16 buckets and a country's those of its LoBs
//! (listed in `lobs`); no partition holds more than a sixteenth of a LoB.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl crate::RegistryStore for ScyllaStore {
    /// Per flow, `INSERT … IF NOT EXISTS`, and for a flow known already `UPDATE … IF
    /// first_seen > ?` (flows are registered once each: these transactions are rare).
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        self.note_lobs(flows.iter().map(|f| &f.flow)).await?;
        let mut by_flow: BTreeMap<&FlowId, Vec<&FlowEntry>> = BTreeMap::new();
        for f in &flows {
            by_flow.entry(&f.flow).or_default().push(f);
        }
        bounded(by_flow.into_values().map(|e| self.register(e)).collect()).await?;
        Ok(())
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        self.entries(None).await
    }

    async fn flow(&self, flow: &FlowId) -> Result<Option<FlowEntry>> {
        let (c, l, k, n) = (&flow.country, &flow.lob, flow.kind.as_str(), &flow.name);
        let rows: Vec<FlowColumns> = self
            .rows(&self.st.flow_get, (c, l, k, n, bucket(flow)))
            .await?;
        rows.into_iter().next().map(entry_of).transpose()
    }

    async fn flows_in(&self, scope: Scope<'_>) -> Result<Vec<FlowEntry>> {
        self.entries(Some(scope)).await
    }

    /// Counted by the nodes (one row comes back), not read.
    async fn flow_count(&self) -> Result<u64> {
        let rows: Vec<(i64,)> = self.rows(&self.st.flow_count, ()).await?;
        Ok(rows.first().map_or(0, |(n,)| *n as u64))
    }
}

type FlowColumns = (String, String, String, String, i64, i32);

fn entry_of((c, l, k, n, first_seen, partition): FlowColumns) -> Result<FlowEntry> {
    Ok(FlowEntry {
        flow: flow_of(c, l, &k, n)?,
        first_seen,
        partition: partition as u32,
    })
}

impl ScyllaStore {
    /// One flow's entries, in order.
    async fn register(&self, entries: Vec<&FlowEntry>) -> Result<()> {
        for f in entries {
            let b = bucket(&f.flow);
            let (c, l, k, n) = (
                &f.flow.country,
                &f.flow.lob,
                f.flow.kind.as_str(),
                &f.flow.name,
            );
            let insert = (c, l, b, k, n, f.first_seen, f.partition as i32);
            if !applied(self.exec(&self.st.flow_insert, insert).await?)? {
                let lower = (f.first_seen, c, l, k, n, b, f.first_seen);
                applied(self.exec(&self.st.flow_lower, lower).await?)?;
            }
        }
        Ok(())
    }

    /// The entries of every flow, or of those of `scope`, ordered by flow.
    async fn entries(&self, scope: Option<Scope<'_>>) -> Result<Vec<FlowEntry>> {
        let rows: Vec<FlowColumns> = self.scoped(&self.st.flows, scope).await?;
        let mut out: Vec<FlowEntry> = rows.into_iter().map(entry_of).collect::<Result<_>>()?;
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }
}
