//! Silences (by id) and the flows acknowledged now (by flow key) in the embedded store; an
//! acknowledgement is also written into its event.

use async_trait::async_trait;
use flowwatch_core::event::Acknowledgement;

use super::*;

impl Inner {
    /// The event with `id` and its key in `events`, if one is stored.
    pub(super) fn event_at(&self, id: &str) -> Result<Option<(Vec<u8>, Event)>> {
        let Some(t) = self.event_ids.get(id.as_bytes()).map_err(backend)? else {
            return Ok(None);
        };
        let key = event_key(decode_time(&t)?, id);
        match self.get_json::<Event>(&self.events, &key, "events")? {
            Some(event) => Ok(Some((key, event))),
            None => Err(corrupt(
                "events",
                format!("event {id} is indexed but missing"),
            )),
        }
    }

    /// The event with `id`, if one is stored.
    pub(super) fn event(&self, id: &str) -> Result<Option<Event>> {
        Ok(self.event_at(id)?.map(|(_, e)| e))
    }
}

#[async_trait]
impl crate::OperatorStore for EmbeddedStore {
    async fn put_silence(&self, silence: Silence) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            b.insert(&i.silences, silence.id.as_bytes().to_vec(), json(&silence));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn silence(&self, id: &str) -> Result<Option<Silence>> {
        let id = id.to_owned();
        self.blocking(move |i| i.get_json(&i.silences, id.as_bytes(), "silences"))
            .await
    }

    async fn silences(&self) -> Result<Vec<Silence>> {
        self.blocking(|i| i.all_json(&i.silences, "silences")).await
    }

    async fn acknowledge(&self, id: &str, ack: Acknowledgement) -> Result<Option<Event>> {
        let id = id.to_owned();
        self.blocking(move |i| {
            // Under the write lock: `append_events` may be dropping the flow's acknowledgement.
            let _w = i.lock();
            let Some(t) = i.event_ids.get(id.as_bytes()).map_err(backend)? else {
                return Ok(None);
            };
            let key = event_key(decode_time(&t)?, &id);
            let Some(mut event) = i.get_json::<Event>(&i.events, &key, "events")? else {
                return Err(corrupt(
                    "events",
                    format!("event {id} is indexed but missing"),
                ));
            };
            event.acknowledged = Some(ack.clone());
            let mut flow = Vec::new();
            flow_key(&event.flow, &mut flow);
            let current = FlowAcknowledgement {
                flow: event.flow.clone(),
                event_id: id,
                ack,
            };
            let mut b = i.batch();
            b.insert(&i.events, key, json(&event));
            b.insert(&i.flow_acks, flow, json(&current));
            b.commit().map_err(backend)?;
            Ok(Some(event))
        })
        .await
    }

    async fn flow_acknowledgements(&self) -> Result<Vec<FlowAcknowledgement>> {
        self.blocking(|i| {
            let mut all: Vec<FlowAcknowledgement> = i.all_json(&i.flow_acks, "flow_acks")?;
            // Keys are length-prefixed: their order is not the flows'.
            all.sort_by(|a, b| a.flow.cmp(&b.flow));
            Ok(all)
        })
        .await
    }

    async fn published(&self, ids: Vec<String>) -> Result<Vec<String>> {
        self.blocking(move |i| {
            let mut out = Vec::new();
            for id in ids {
                if i.published.contains_key(id.as_bytes()).map_err(backend)? {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn mark_published(&self, ids: Vec<String>, at: Instant) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            for id in ids {
                b.insert(&i.published, id.into_bytes(), time(at).to_vec());
            }
            b.commit().map_err(backend)
        })
        .await
    }
}
