//! The flow registry in the embedded store: entries by flow key, so a country's or a LoB's
//! flows are one prefix scan.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl crate::RegistryStore for EmbeddedStore {
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut merged: std::collections::BTreeMap<Vec<u8>, FlowEntry> = Default::default();
            for f in flows {
                let mut k = Vec::new();
                flow_key(&f.flow, &mut k);
                let entry = match merged.remove(&k) {
                    Some(m) => FlowEntry {
                        first_seen: m.first_seen.min(f.first_seen),
                        ..m
                    },
                    None => match i.get_json::<FlowEntry>(&i.flows, &k, "flows")? {
                        Some(old) => FlowEntry {
                            first_seen: old.first_seen.min(f.first_seen),
                            ..old
                        },
                        None => f,
                    },
                };
                merged.insert(k, entry);
            }
            let mut b = i.batch();
            for (k, f) in &merged {
                b.insert(&i.flows, k.clone(), json(f));
            }
            b.commit().map_err(backend)?;
            if let Some(flows) = &mut i.views().flows {
                for f in merged.into_values() {
                    flows.insert(f.flow.clone(), f);
                }
            }
            Ok(())
        })
        .await
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        self.blocking(|i| {
            if let Some(flows) = &i.views().flows {
                return Ok(flows.values().cloned().collect());
            }
            let _w = i.lock();
            let all: Vec<FlowEntry> = i.all_json(&i.flows, "flows")?;
            let flows: std::collections::BTreeMap<FlowId, FlowEntry> =
                all.into_iter().map(|f| (f.flow.clone(), f)).collect();
            let out = flows.values().cloned().collect();
            i.views().flows = Some(flows);
            Ok(out)
        })
        .await
    }

    async fn flow(&self, flow: &FlowId) -> Result<Option<FlowEntry>> {
        let mut k = Vec::new();
        flow_key(flow, &mut k);
        self.blocking(move |i| i.get_json(&i.flows, &k, "flows"))
            .await
    }

    async fn flows_in(&self, scope: Scope<'_>) -> Result<Vec<FlowEntry>> {
        let scope = OwnedScope::of(scope);
        self.blocking(move |i| {
            i.scoped(
                scope.get(),
                |v| v.flows.as_ref(),
                &i.flows,
                |_, v| serde_json::from_slice(v).map_err(|e| corrupt("flows", e)),
            )
        })
        .await
    }
}
