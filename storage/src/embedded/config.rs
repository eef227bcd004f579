//! Configuration versions in the embedded store, by version number.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl crate::ConfigStore for EmbeddedStore {
    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        self.blocking(|i| match i.config.last_key_value() {
            None => Ok(None),
            Some(g) => serde_json::from_slice(&g.value().map_err(backend)?)
                .map(Some)
                .map_err(|e| corrupt("config", e)),
        })
        .await
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        self.blocking(move |i| i.get_json(&i.config, &version.to_be_bytes(), "config"))
            .await
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let author = author.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            let current = match i.config.last_key_value() {
                None => 0,
                Some(g) => {
                    let k = g.key().map_err(backend)?;
                    u64::from_be_bytes(
                        k.as_ref()
                            .try_into()
                            .map_err(|_| corrupt("config", "version key is not 8 bytes"))?,
                    )
                }
            };
            let saved = ConfigVersion::successor(current, expected, document, &author)?;
            let mut b = i.batch();
            b.insert(
                &i.config,
                saved.version.to_be_bytes().to_vec(),
                json(&saved),
            );
            b.commit().map_err(backend)?;
            Ok(saved)
        })
        .await
    }
}
