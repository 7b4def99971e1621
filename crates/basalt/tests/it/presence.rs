//! The presence port, on whichever adapter the app has: in-process in the
//! SQLite pass, Redis in the PostgreSQL pass (`TEST_REDIS_URL`), where two
//! nodes share it.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::broadcast::two_nodes;

const LONG: Duration = Duration::from_secs(60);

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

#[tokio::test]
async fn a_heartbeat_on_one_node_is_seen_on_every_node() {
    let (a, b) = two_nodes().await;
    let b = b.as_ref().unwrap_or(&a);
    let (on_a, on_b) = (&a.platform.presence, &b.platform.presence);
    assert_eq!(
        on_a.heartbeat("ann", "online", LONG).await.expect("ok"),
        None
    );
    assert_eq!(
        on_b.heartbeat("ann", "away", LONG)
            .await
            .expect("ok")
            .as_deref(),
        Some("online"),
        "the status before, whichever node set it"
    );
    assert_eq!(
        on_b.heartbeat("bob", "online", LONG).await.expect("ok"),
        None
    );
    assert_eq!(
        on_a.statuses(&keys(&["bob", "nobody", "ann"]))
            .await
            .expect("ok"),
        [Some("online".to_owned()), None, Some("away".to_owned())]
    );
    assert!(on_a.statuses(&[]).await.expect("ok").is_empty());

    assert!(on_a.remove("bob").await.expect("ok"));
    assert!(!on_b.remove("bob").await.expect("ok"), "removed already");
    assert_eq!(on_b.statuses(&keys(&["bob"])).await.expect("ok"), [None]);
    assert_eq!(
        on_b.heartbeat("bob", "online", LONG).await.expect("ok"),
        None
    );
}

/// Keys whose TTL ran out vanish from the statuses at once, and each is
/// claimed by exactly one of many concurrent callers across the nodes.
#[tokio::test]
async fn each_expired_key_is_claimed_exactly_once_across_nodes() {
    let (a, b) = two_nodes().await;
    let b = b.as_ref().unwrap_or(&a);
    let short = Duration::from_millis(300);
    let expiring: Vec<String> = (0..40).map(|i| format!("user:{i}")).collect();
    for (i, key) in expiring.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { b };
        node.platform
            .presence
            .heartbeat(key, "online", short)
            .await
            .expect("ok");
    }
    a.platform
        .presence
        .heartbeat("stays", "online", LONG)
        .await
        .expect("ok");
    assert!(
        a.platform
            .presence
            .claim_expired()
            .await
            .expect("ok")
            .is_empty(),
        "nothing has expired yet"
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    let statuses = b.platform.presence.statuses(&expiring).await.expect("ok");
    assert!(statuses.iter().all(Option::is_none), "{statuses:?}");

    let claims = (0..8).map(|i| {
        let presence = if i % 2 == 0 {
            a.platform.presence.clone()
        } else {
            b.platform.presence.clone()
        };
        async move { presence.claim_expired().await.expect("ok") }
    });
    let claimed: Vec<String> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    let unique: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!(
        claimed.len(),
        unique.len(),
        "a key claimed twice: {claimed:?}"
    );
    assert_eq!(unique, expiring.iter().collect::<BTreeSet<_>>());
    assert!(
        b.platform
            .presence
            .claim_expired()
            .await
            .expect("ok")
            .is_empty()
    );
    // Claimed keys are gone: a heartbeat finds them absent.
    assert_eq!(
        a.platform
            .presence
            .heartbeat(&expiring[0], "online", LONG)
            .await
            .expect("ok"),
        None
    );
    assert_eq!(
        b.platform
            .presence
            .statuses(&keys(&["stays"]))
            .await
            .expect("ok"),
        [Some("online".to_owned())]
    );
}
