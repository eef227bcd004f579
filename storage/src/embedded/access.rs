//! Users, API keys (by hash) and the audit log (`at ‖ id`) in the embedded store.

use async_trait::async_trait;

use super::*;

impl Inner {
    /// The API keys of `user`, oldest first (a scan: keys are few).
    fn keys_of(&self, user: &str) -> Result<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self.all_json(&self.keys, "keys")?;
        keys.retain(|k| k.user == user);
        keys.sort_by(|a, b| (a.created_at, &a.hash).cmp(&(b.created_at, &b.hash)));
        Ok(keys)
    }
}

#[async_trait]
impl crate::AccessStore for EmbeddedStore {
    async fn put_user(&self, user: User) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            b.insert(&i.users, user.name.as_bytes().to_vec(), json(&user));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_owned();
        self.blocking(move |i| i.get_json(&i.users, name.as_bytes(), "users"))
            .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.blocking(|i| i.all_json(&i.users, "users")).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            if i.users.get(name.as_bytes()).map_err(backend)?.is_none() {
                return Ok(false);
            }
            let mut b = i.batch();
            for key in i.keys_of(&name)? {
                b.remove(&i.keys, key.hash.into_bytes());
            }
            b.remove(&i.users, name.into_bytes());
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            if i.users.get(key.user.as_bytes()).map_err(backend)?.is_none() {
                return Err(Error::Invalid {
                    what: format!("API key of unknown user {:?}", key.user),
                });
            }
            let mut b = i.batch();
            b.insert(&i.keys, key.hash.as_bytes().to_vec(), json(&key));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_owned();
        self.blocking(move |i| i.get_json(&i.keys, hash.as_bytes(), "keys"))
            .await
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let user = user.to_owned();
        self.blocking(move |i| i.keys_of(&user)).await
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            if i.keys.get(hash.as_bytes()).map_err(backend)?.is_none() {
                return Ok(false);
            }
            let mut b = i.batch();
            b.remove(&i.keys, hash.into_bytes());
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            b.insert(&i.audit, event_key(entry.at, &entry.id), json(&entry));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.blocking(move |i| {
            let hi = match &before {
                Some((at, id)) => event_key(*at, id),
                None => time(Instant::MAX).to_vec(),
            };
            i.audit
                .range(..hi)
                .rev()
                .take(limit)
                .map(|item| {
                    serde_json::from_slice(&item.value().map_err(backend)?)
                        .map_err(|e| corrupt("audit", e))
                })
                .collect()
        })
        .await
    }
}
