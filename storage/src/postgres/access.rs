//! Users, API keys and the audit log in PostgreSQL.

use async_trait::async_trait;

use super::*;

fn user_of(r: &Row) -> Result<User> {
    let role: &str = r.get(1);
    Ok(User {
        name: r.get(0),
        role: Role::parse(role).ok_or_else(|| corrupt(format!("unknown role \"{role}\"")))?,
        password_hash: r.get(2),
    })
}

fn key_of(r: &Row) -> Result<ApiKey> {
    let kind: &str = r.get(2);
    Ok(ApiKey {
        hash: r.get(0),
        user: r.get(1),
        kind: KeyKind::parse(kind)
            .ok_or_else(|| corrupt(format!("unknown key kind \"{kind}\"")))?,
        created_at: r.get(3),
        expires_at: r.get(4),
    })
}

const KEY_COLUMNS: &str = "hash, name, kind, created_at, expires_at";

#[async_trait]
impl crate::AccessStore for PostgresStore {
    async fn put_user(&self, user: User) -> Result<()> {
        let c = self.client().await;
        c.execute(
            "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash",
            &[&user.name, &user.role.as_str(), &user.password_hash],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let c = self.client().await;
        let row = c
            .query_opt(
                "SELECT name, role, password_hash FROM users WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let c = self.client().await;
        let rows = c
            .query(
                "SELECT name, role, password_hash FROM users ORDER BY name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(user_of).collect()
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let c = self.client().await;
        // Its keys go with it (ON DELETE CASCADE).
        Ok(c.execute("DELETE FROM users WHERE name = $1", &[&name])
            .await
            .map_err(pg)?
            > 0)
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        let c = self.client().await;
        let inserted = c
            .execute(
                "INSERT INTO api_keys (hash, name, kind, created_at, expires_at)
                 SELECT $1, name, $3, $4, $5 FROM users WHERE name = $2
                 ON CONFLICT (hash) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
                &[
                    &key.hash,
                    &key.user,
                    &key.kind.as_str(),
                    &key.created_at,
                    &key.expires_at,
                ],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(Error::Invalid {
                what: format!("API key of unknown user {:?}", key.user),
            });
        }
        Ok(())
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let c = self.client().await;
        let row = c
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"),
                &[&hash],
            )
            .await
            .map_err(pg)?;
        row.as_ref().map(key_of).transpose()
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let c = self.client().await;
        let rows = c
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE name = $1 ORDER BY created_at, hash"
                ),
                &[&user],
            )
            .await
            .map_err(pg)?;
        rows.iter().map(key_of).collect()
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let c = self.client().await;
        Ok(c.execute("DELETE FROM api_keys WHERE hash = $1", &[&hash])
            .await
            .map_err(pg)?
            > 0)
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        let c = self.client().await;
        c.execute(
            "INSERT INTO audit_log (at, id, who, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&entry.at, &entry.id, &entry.user, &entry.action, &entry.target, &entry.detail],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        let c = self.client().await;
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let rows = c
            .query(
                "SELECT at, id, who, action, target, detail FROM audit_log
                 WHERE (at, id) < ($1, $2) ORDER BY at DESC, id DESC LIMIT $3",
                &[&at, &id, &to_i64(limit as u64, "limit")?],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                id: r.get(1),
                user: r.get(2),
                action: r.get(3),
                target: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }
}
