//! Conformance: Users, API keys and the audit log.

use super::*;

/// Users, their API keys (several per user), and what deleting either takes with it.
pub async fn users_and_api_keys(fx: Fixture) {
    let s = fx.store();
    let mut root = User {
        name: "root".into(),
        role: Role::Root,
        password_hash: Some("$argon2id$x".into()),
    };
    s.put_user(root.clone()).await.unwrap();
    let viewer = User {
        name: "viewer".into(),
        role: Role::ReadOnly,
        password_hash: None,
    };
    s.put_user(viewer.clone()).await.unwrap();
    assert_eq!(s.user("root").await.unwrap(), Some(root.clone()));
    root.role = Role::ReadOnly;
    s.put_user(root.clone()).await.unwrap();
    assert_eq!(s.user("root").await.unwrap().unwrap().role, Role::ReadOnly);

    let issued = ApiKey {
        kind: KeyKind::Issued,
        expires_at: None,
        ..key("k1", "root", T0)
    };
    for k in [
        key("k2", "root", T0 + 5),
        issued.clone(),
        key("k3", "viewer", T0),
    ] {
        s.put_api_key(k).await.unwrap();
    }
    assert!(matches!(
        s.put_api_key(key("k4", "nobody", T0)).await,
        Err(Error::Invalid { .. })
    ));
    assert!(s.api_key("k4").await.unwrap().is_none());
    assert_eq!(s.api_key("k1").await.unwrap(), Some(issued.clone()));
    assert_eq!(
        s.api_keys("root").await.unwrap(),
        [issued, key("k2", "root", T0 + 5)]
    );
    assert!(s.delete_api_key("k2").await.unwrap());
    assert!(!s.delete_api_key("k2").await.unwrap());
    assert!(s.api_key("k2").await.unwrap().is_none());
    assert_eq!(s.api_keys("root").await.unwrap().len(), 1);

    assert_eq!(
        s.users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["root", "viewer"]
    );
    assert!(s.delete_user("viewer").await.unwrap());
    assert!(!s.delete_user("viewer").await.unwrap());
    assert!(s.api_key("k3").await.unwrap().is_none());
    assert!(s.api_keys("viewer").await.unwrap().is_empty());
    assert_eq!(s.api_keys("root").await.unwrap().len(), 1);
}

/// The audit log reads newest first, in pages.
pub async fn audit_log_pages_newest_first(fx: Fixture) {
    let s = fx.store();
    let entry = |at: i64, id: &str| AuditEntry {
        at,
        id: id.into(),
        user: "root".into(),
        action: "user.create".into(),
        target: format!("u{at}"),
        detail: serde_json::json!({"role": "readOnly", "n": [1, 2]}),
    };
    for (at, id) in [(2, "b"), (1, "a"), (2, "a"), (3, "a")] {
        s.audit_append(entry(at, id)).await.unwrap();
    }
    let page = s.audit(None, 2).await.unwrap();
    assert_eq!(page, [entry(3, "a"), entry(2, "b")]);
    let rest = s.audit(Some((2, "b".into())), 10).await.unwrap();
    assert_eq!(rest, [entry(2, "a"), entry(1, "a")]);
    assert!(s.audit(Some((1, "a".into())), 10).await.unwrap().is_empty());
}
