//! The flow registry in ScyllaDB: `flows`, 16 shards clustered by country, LoB, kind and
//! name, so a country's or a LoB's flows are one slice of each shard.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl crate::RegistryStore for ScyllaStore {
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        for f in &flows {
            let s = shard(&f.flow);
            let (c, l, k, n) = (
                &f.flow.country,
                &f.flow.lob,
                f.flow.kind.as_str(),
                &f.flow.name,
            );
            if !applied(
                self.exec(
                    &self.st.flow_insert,
                    (s, c, l, k, n, f.first_seen, f.partition as i32),
                )
                .await?,
            )? {
                applied(
                    self.exec(
                        &self.st.flow_lower,
                        (f.first_seen, s, c, l, k, n, f.first_seen),
                    )
                    .await?,
                )?;
            }
        }
        Ok(())
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        self.entries(None).await
    }

    async fn flow(&self, flow: &FlowId) -> Result<Option<FlowEntry>> {
        let key = (&flow.country, &flow.lob, flow.kind.as_str(), &flow.name);
        let rows: Vec<FlowColumns> = self
            .rows(&self.st.flow_get, (shard(flow), key.0, key.1, key.2, key.3))
            .await?;
        rows.into_iter().next().map(entry_of).transpose()
    }

    async fn flows_in(&self, scope: Scope<'_>) -> Result<Vec<FlowEntry>> {
        self.entries(Some(scope)).await
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
    /// The entries of every flow, or of those of `scope`, ordered by flow.
    async fn entries(&self, scope: Option<Scope<'_>>) -> Result<Vec<FlowEntry>> {
        let rows: Vec<FlowColumns> = self.sharded(&self.st.flows, scope).await?;
        let mut out: Vec<FlowEntry> = rows.into_iter().map(entry_of).collect::<Result<_>>()?;
        out.sort_unstable_by(|a, b| a.flow.cmp(&b.flow));
        Ok(out)
    }
}
