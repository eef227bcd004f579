//! Conformance: The flow registry.

use super::*;

/// The registry keeps each flow once, with its earliest first-seen time.
pub async fn registry_keeps_first_seen(fx: Fixture) {
    let s = fx.store();
    let entry = |n: &str, t: Instant| FlowEntry {
        flow: flow(n),
        first_seen: t,
        partition: 3,
    };
    s.register_flows(vec![entry("B", T0), entry("A", T0 + 10), entry("AB", T0)])
        .await
        .unwrap();
    s.register_flows(vec![
        entry("A", T0 + 5),
        entry("B", T0 + 99),
        entry("A", T0 + 7),
    ])
    .await
    .unwrap();
    let flows = s.flows().await.unwrap();
    let expected = vec![entry("A", T0 + 5), entry("AB", T0), entry("B", T0)];
    assert_eq!(flows, expected, "ordered by flow");
    // Registered after a full read: there on the next, merged the same way.
    s.register_flows(vec![entry("AA", T0 + 1), entry("A", T0 + 1)])
        .await
        .unwrap();
    let flows = s.flows().await.unwrap();
    let expected = vec![
        entry("A", T0 + 1),
        entry("AA", T0 + 1),
        entry("AB", T0),
        entry("B", T0),
    ];
    assert_eq!(flows, expected);
    assert_eq!(s.flow_count().await.unwrap(), 4);
}

/// One flow's entry, and the entries of one country or one LoB, are those of the full list
/// (ordered by flow), before and after a full read, and follow later registrations.
pub async fn registry_reads_one_flow_a_country_or_a_lob(fx: Fixture) {
    let s = fx.store();
    let entries: Vec<FlowEntry> = scattered_flows()
        .into_iter()
        .enumerate()
        .map(|(n, flow)| FlowEntry {
            flow,
            first_seen: T0 + n as Instant,
            partition: n as u32 % 4,
        })
        .collect();
    s.register_flows(entries.clone()).await.unwrap();
    let mut all = entries.clone();
    all.sort_by(|a, b| a.flow.cmp(&b.flow));
    let flows_in = async |scope| s.flows_in(scope).await.unwrap();
    let flow: fn(&FlowEntry) -> &FlowId = |e| &e.flow;
    // Before anything read the whole registry (some keep it in memory after), then after.
    reads_each_scope(&all, flow, flows_in).await;
    assert_eq!(s.flows().await.unwrap(), all);
    reads_each_scope(&all, flow, flows_in).await;
    assert_eq!(s.flows_in(Scope::lob("CZ", "GSM")).await.unwrap().len(), 6);
    assert_eq!(s.flows_in(Scope::country("CZ")).await.unwrap().len(), 18);
    for e in &all {
        assert_eq!(s.flow(&e.flow).await.unwrap().as_ref(), Some(e));
    }

    let new = FlowId::new("CZ", "GSM", FlowKind::Input, "NEW").expect("valid id");
    assert_eq!(s.flow(&new).await.unwrap(), None);
    let added = FlowEntry {
        flow: new.clone(),
        first_seen: T0,
        partition: 1,
    };
    let earlier = FlowEntry {
        first_seen: T0 - 1,
        ..entries[0].clone()
    };
    s.register_flows(vec![added.clone(), earlier.clone()])
        .await
        .unwrap();
    assert_eq!(s.flow(&new).await.unwrap(), Some(added.clone()));
    assert_eq!(
        s.flow(&entries[0].flow).await.unwrap(),
        Some(earlier.clone())
    );
    all.retain(|e| e.flow != earlier.flow);
    all.extend([added, earlier]);
    all.sort_by(|a, b| a.flow.cmp(&b.flow));
    reads_each_scope(&all, flow, flows_in).await;
}
