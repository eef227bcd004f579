//! Configuration versions in PostgreSQL (`config_versions`).

use async_trait::async_trait;

use super::*;

fn config_of(r: &Row) -> ConfigVersion {
    ConfigVersion {
        version: r.get::<_, i64>(0) as u64,
        document: r.get(1),
        saved_at: r.get(2),
        author: r.get(3),
    }
}

#[async_trait]
impl crate::ConfigStore for PostgresStore {
    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        let c = self.client().await;
        let row = c
            .query_opt("SELECT version, document, saved_at, author FROM config_versions ORDER BY version DESC LIMIT 1", &[])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(config_of))
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        let c = self.client().await;
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        let row = c
            .query_opt("SELECT version, document, saved_at, author FROM config_versions WHERE version = $1", &[&v])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(config_of))
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        // Two editors serialise here; the loser sees the winner's version.
        tx.batch_execute("LOCK TABLE config_versions IN EXCLUSIVE MODE")
            .await
            .map_err(pg)?;
        let current: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM config_versions", &[])
            .await
            .map_err(pg)?
            .get(0);
        let saved = ConfigVersion::successor(current as u64, expected, document, author)?;
        tx.execute(
            "INSERT INTO config_versions (version, document, saved_at, author) VALUES ($1, $2, $3, $4)",
            &[&(saved.version as i64), &saved.document, &saved.saved_at, &saved.author],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(saved)
    }
}
