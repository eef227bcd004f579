//! Users, API keys (with a per-user index) and the audit log in ScyllaDB.

use async_trait::async_trait;

use super::*;

type UserColumns = (String, String, Option<String>);

fn user_of((name, role, password_hash): UserColumns) -> Result<User> {
    Ok(User {
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("unknown role \"{role}\"")))?,
        name,
        password_hash,
    })
}

type KeyColumns = (String, String, String, i64, Option<i64>);

fn key_of((hash, user, kind, created_at, expires_at): KeyColumns) -> Result<ApiKey> {
    Ok(ApiKey {
        kind: KeyKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("unknown key kind \"{kind}\"")))?,
        hash,
        user,
        created_at,
        expires_at,
    })
}

#[async_trait]
impl crate::AccessStore for ScyllaStore {
    async fn put_user(&self, user: User) -> Result<()> {
        self.exec(
            &self.st.user_upsert,
            (&user.name, user.role.as_str(), &user.password_hash),
        )
        .await?;
        Ok(())
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let rows: Vec<UserColumns> = self.rows(&self.st.user_get, (name,)).await?;
        rows.into_iter().next().map(user_of).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserColumns> = self.rows(&self.st.users_all, ()).await?;
        let mut users: Vec<User> = rows.into_iter().map(user_of).collect::<Result<_>>()?;
        users.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    /// The user goes first, then its keys: a key stored meanwhile either is listed here or
    /// finds its user gone (see `put_api_key`).
    async fn delete_user(&self, name: &str) -> Result<bool> {
        if self.user(name).await?.is_none() {
            return Ok(false);
        }
        self.exec(&self.st.user_delete, (name,)).await?;
        let hashes: Vec<(String,)> = self.rows(&self.st.user_keys, (name,)).await?;
        for (hash,) in hashes {
            self.exec(&self.st.key_delete, (hash,)).await?;
        }
        self.exec(&self.st.user_keys_delete, (name,)).await?;
        Ok(true)
    }

    /// Checks the user before and after the key is written: a user deleted in between takes
    /// the key with it (here, or in `delete_user`'s listing of its keys).
    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        let unknown = || Error::Invalid {
            what: format!("API key of unknown user {:?}", key.user),
        };
        if self.user(&key.user).await?.is_none() {
            return Err(unknown());
        }
        self.exec(&self.st.user_key_insert, (&key.user, &key.hash))
            .await?;
        self.exec(
            &self.st.key_insert,
            (
                &key.hash,
                &key.user,
                key.kind.as_str(),
                key.created_at,
                key.expires_at,
            ),
        )
        .await?;
        if self.user(&key.user).await?.is_none() {
            self.exec(&self.st.key_delete, (&key.hash,)).await?;
            self.exec(&self.st.user_key_delete, (&key.user, &key.hash))
                .await?;
            return Err(unknown());
        }
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let rows: Vec<KeyColumns> = self.rows(&self.st.key_get, (hash,)).await?;
        rows.into_iter().next().map(key_of).transpose()
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let hashes: Vec<(String,)> = self.rows(&self.st.user_keys, (user,)).await?;
        let mut keys = Vec::with_capacity(hashes.len());
        for (hash,) in hashes {
            keys.extend(self.api_key(&hash).await?);
        }
        keys.sort_by(|a, b| (a.created_at, &a.hash).cmp(&(b.created_at, &b.hash)));
        Ok(keys)
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let Some(key) = self.api_key(hash).await? else {
            return Ok(false);
        };
        self.exec(&self.st.key_delete, (hash,)).await?;
        self.exec(&self.st.user_key_delete, (&key.user, hash))
            .await?;
        Ok(true)
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        self.exec(
            &self.st.audit_insert,
            (
                entry.at,
                &entry.id,
                &entry.user,
                &entry.action,
                &entry.target,
                entry.detail.to_string(),
            ),
        )
        .await?;
        Ok(())
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<(i64, String, String, String, String, String)> =
            self.rows(&self.st.audit_page, (at, id, limit)).await?;
        rows.into_iter()
            .map(|(at, id, user, action, target, detail)| {
                Ok(AuditEntry {
                    detail: serde_json::from_str(&detail).map_err(corrupt)?,
                    at,
                    id,
                    user,
                    action,
                    target,
                })
            })
            .collect()
    }
}
