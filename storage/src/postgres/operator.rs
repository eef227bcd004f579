//! Silences and the flows acknowledged now in PostgreSQL (JSON bodies); an acknowledgement is
//! also written into its event's body.

use async_trait::async_trait;
use flowwatch_core::event::Acknowledgement;

use super::*;

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(corrupt)
}

#[async_trait]
impl crate::OperatorStore for PostgresStore {
    async fn put_silence(&self, silence: Silence) -> Result<()> {
        let body = serde_json::to_value(&silence).expect("silences serialize");
        self.client()
            .await
            .execute(
                "INSERT INTO silences (id, body) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                &[&silence.id, &body],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn silence(&self, id: &str) -> Result<Option<Silence>> {
        let row = (self.client().await)
            .query_opt("SELECT body FROM silences WHERE id = $1", &[&id])
            .await
            .map_err(pg)?;
        row.map(|r| parse(r.get(0))).transpose()
    }

    async fn silences(&self) -> Result<Vec<Silence>> {
        let rows = (self.client().await)
            .query("SELECT body FROM silences ORDER BY id COLLATE \"C\"", &[])
            .await
            .map_err(pg)?;
        rows.into_iter().map(|r| parse(r.get(0))).collect()
    }

    async fn acknowledge(&self, id: &str, ack: Acknowledgement) -> Result<Option<Event>> {
        let value = serde_json::to_value(&ack).expect("acknowledgements serialize");
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        let Some(row) = tx
            .query_opt(
                "UPDATE events SET body = jsonb_set(body, '{acknowledged}', $2)
                 WHERE id = $1 RETURNING body",
                &[&id, &value],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let event: Event = parse(row.get(0))?;
        let current = FlowAcknowledgement {
            flow: event.flow.clone(),
            event_id: id.to_owned(),
            ack,
        };
        let f = &event.flow;
        tx.execute(
            "INSERT INTO flow_acks (country, lob, kind, name, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (country, lob, kind, name) DO UPDATE SET body = EXCLUDED.body",
            &[
                &f.country,
                &f.lob,
                &f.kind.as_str(),
                &f.name,
                &serde_json::to_value(&current).expect("acknowledgements serialize"),
            ],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(event))
    }

    async fn flow_acknowledgements(&self) -> Result<Vec<FlowAcknowledgement>> {
        let rows = (self.client().await)
            .query(
                "SELECT body FROM flow_acks ORDER BY country COLLATE \"C\", lob COLLATE \"C\",
                        kind COLLATE \"C\", name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg)?;
        rows.into_iter().map(|r| parse(r.get(0))).collect()
    }

    async fn published(&self, ids: Vec<String>) -> Result<Vec<String>> {
        let rows = (self.client().await)
            .query(
                "SELECT id FROM published_incidents WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(pg)?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn mark_published(&self, ids: Vec<String>, at: Instant) -> Result<()> {
        (self.client().await)
            .execute(
                "INSERT INTO published_incidents (id, at) SELECT UNNEST($1::text[]), $2
                 ON CONFLICT (id) DO NOTHING",
                &[&ids, &at],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }
}
