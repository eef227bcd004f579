//! The flow registry in PostgreSQL: `flow_registry` by flow id, found through `flow_ids`,
//! whose unique index on (country, lob, kind, name) serves the reads of a country or a LoB.

use async_trait::async_trait;

use super::*;

/// The registry's columns, joined with `flow_ids f`.
pub(super) const REGISTRY: &str =
    "SELECT f.country, f.lob, f.kind, f.name, r.first_seen, r.partition
    FROM flow_ids f JOIN flow_registry r ON r.flow_id = f.id";

impl PostgresStore {
    async fn entries(&self, which: Which<'_>) -> Result<Vec<FlowEntry>> {
        self.rows_of(REGISTRY, which)
            .await?
            .iter()
            .map(|r| {
                Ok(FlowEntry {
                    flow: flow_of(r, 0)?,
                    first_seen: r.get(4),
                    partition: r.get::<_, i32>(5) as u32,
                })
            })
            .collect()
    }
}

#[async_trait]
impl crate::RegistryStore for PostgresStore {
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        let c = self.client().await;
        let refs: Vec<&FlowId> = flows.iter().map(|f| &f.flow).collect();
        let ids = self.flow_ids(&c, &refs, true).await?;
        let mut merged: HashMap<i64, (i64, i32)> = HashMap::new();
        for f in &flows {
            let e = merged
                .entry(ids[&f.flow])
                .or_insert((f.first_seen, f.partition as i32));
            e.0 = e.0.min(f.first_seen);
        }
        let (mut id, mut seen, mut part) = (vec![], vec![], vec![]);
        for (k, (s, p)) in merged {
            id.push(k);
            seen.push(s);
            part.push(p);
        }
        c.execute(
            "INSERT INTO flow_registry (flow_id, first_seen, partition)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::int[])
             ON CONFLICT (flow_id) DO UPDATE SET first_seen = LEAST(flow_registry.first_seen, EXCLUDED.first_seen)",
            &[&id, &seen, &part],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        self.entries(Which::All).await
    }

    async fn flow(&self, flow: &FlowId) -> Result<Option<FlowEntry>> {
        Ok(self.entries(Which::One(flow)).await?.pop())
    }

    async fn flows_in(&self, scope: Scope<'_>) -> Result<Vec<FlowEntry>> {
        self.entries(Which::In(scope)).await
    }

    async fn flow_count(&self) -> Result<u64> {
        let c = self.client().await;
        let row = c
            .query_one("SELECT count(*) FROM flow_registry", &[])
            .await
            .map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
