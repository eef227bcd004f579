//! Configuration versions in ScyllaDB (one partition, newest first).

use async_trait::async_trait;

use super::*;

fn config_of(
    (version, document, saved_at, author): (i64, String, i64, String),
) -> Result<ConfigVersion> {
    Ok(ConfigVersion {
        version: version as u64,
        document: serde_json::from_str(&document).map_err(corrupt)?,
        saved_at,
        author,
    })
}

#[async_trait]
impl crate::ConfigStore for ScyllaStore {
    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        let rows: Vec<(i64, String, i64, String)> = self.rows(&self.st.config_latest, ()).await?;
        rows.into_iter().next().map(config_of).transpose()
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        let rows: Vec<(i64, String, i64, String)> =
            self.rows(&self.st.config_version, (v,)).await?;
        rows.into_iter().next().map(config_of).transpose()
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let current = self.config_latest().await?.map_or(0, |c| c.version);
        let saved = ConfigVersion::successor(current, expected, document, author)?;
        let text = serde_json::to_string(&saved.document).expect("JSON serializes");
        // Versions are consecutive: of two editors of `expected`, one inserts `expected + 1`.
        if !applied(
            self.exec(
                &self.st.config_insert,
                (saved.version as i64, text, saved.saved_at, &saved.author),
            )
            .await?,
        )? {
            let current = self.config_latest().await?.map_or(0, |c| c.version);
            return Err(Error::Conflict { expected, current });
        }
        Ok(saved)
    }
}
