//! Conformance: Configuration versions.

use super::*;

/// Configuration versions: compare-and-set, every version readable.
pub async fn config_versions_compare_and_set(fx: Fixture) {
    let s = fx.store();
    assert!(s.config_latest().await.unwrap().is_none());
    let v1 = s
        .config_put(
            0,
            serde_json::json!({"defaults": {"granularity": "1h"}}),
            "root",
        )
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let stale = s.config_put(0, serde_json::json!({}), "other").await;
    assert!(
        matches!(
            stale,
            Err(Error::Conflict {
                expected: 0,
                current: 1
            })
        ),
        "{stale:?}"
    );
    let ahead = s.config_put(5, serde_json::json!({}), "other").await;
    assert!(
        matches!(
            ahead,
            Err(Error::Conflict {
                expected: 5,
                current: 1
            })
        ),
        "{ahead:?}"
    );
    let v2 = s
        .config_put(1, serde_json::json!({"defaults": {}}), "ops")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let latest: ConfigVersion = s.config_latest().await.unwrap().unwrap();
    assert_eq!(latest, v2);
    assert_eq!(
        s.config_version(1).await.unwrap().unwrap().document,
        v1.document
    );
    assert_eq!(s.config_version(1).await.unwrap().unwrap().author, "root");
    assert!(s.config_version(3).await.unwrap().is_none());
}
