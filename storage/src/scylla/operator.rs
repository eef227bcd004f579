//! Silences and the flows acknowledged now in ScyllaDB (one small partition each, JSON
//! bodies); an acknowledgement is also written into its event's body.

use crate::TickStore;
use async_trait::async_trait;
use flowwatch_core::event::Acknowledgement;

use super::*;

#[async_trait]
impl crate::OperatorStore for ScyllaStore {
    async fn put_silence(&self, silence: Silence) -> Result<()> {
        self.exec(&self.st.silence_put, (&silence.id, body(&silence)))
            .await?;
        Ok(())
    }

    async fn silence(&self, id: &str) -> Result<Option<Silence>> {
        let rows: Vec<(String,)> = self.rows(&self.st.silence_get, (id,)).await?;
        rows.first().map(|(b,)| parse(b)).transpose()
    }

    async fn silences(&self) -> Result<Vec<Silence>> {
        let rows: Vec<(String,)> = self.rows(&self.st.silences_all, ()).await?;
        rows.iter().map(|(b,)| parse(b)).collect()
    }

    async fn acknowledge(&self, id: &str, ack: Acknowledgement) -> Result<Option<Event>> {
        let Some(mut event) = self.event(id).await? else {
            return Ok(None);
        };
        event.acknowledged = Some(ack.clone());
        self.rewrite_event(&event).await?;
        let f = &event.flow;
        let current = FlowAcknowledgement {
            flow: f.clone(),
            event_id: id.to_owned(),
            ack,
        };
        self.exec(
            &self.st.flow_ack_put,
            (&f.country, &f.lob, f.kind.as_str(), &f.name, body(&current)),
        )
        .await?;
        Ok(Some(event))
    }

    async fn flow_acknowledgements(&self) -> Result<Vec<FlowAcknowledgement>> {
        // Clustered by flow: already in flow order.
        let rows: Vec<(String,)> = self.rows(&self.st.flow_acks_all, ()).await?;
        rows.iter().map(|(b,)| parse(b)).collect()
    }

    async fn published(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            let rows: Vec<(String,)> = self.rows(&self.st.published_get, (&id,)).await?;
            if !rows.is_empty() {
                out.push(id);
            }
        }
        Ok(out)
    }

    async fn mark_published(&self, ids: Vec<String>, at: Instant) -> Result<()> {
        for id in &ids {
            self.exec(&self.st.published_put, (id, at)).await?;
        }
        Ok(())
    }
}
