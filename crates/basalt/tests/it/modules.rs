//! The module contract: two phases (every module provides, then every
//! module is wired), so the order of the module list does not matter; and
//! every kind of part a module wires in (documented and raw routes, metrics,
//! readiness checks, background services) reaches the running app.

use std::collections::BTreeSet;

use basalt_platform::supervisor::Stage;
use basalt_testkit::{TestApp, TestAppBuilder};
use reqwest::StatusCode;
use serde_json::Value;

use crate::blog::sign_up;
use crate::fixture;

fn app_with(modules: Vec<Box<dyn basalt_platform::Module>>) -> TestAppBuilder {
    TestApp::builder()
        .modules(modules)
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS", "1")
}

async fn paths(app: &TestApp) -> BTreeSet<String> {
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_order_of_the_module_list_does_not_matter() {
    let mut reversed = basalt::modules();
    reversed.push(Box::new(fixture::NotesModule));
    reversed.reverse();
    assert_eq!(
        reversed.iter().map(|m| m.name()).collect::<Vec<_>>(),
        ["test-notes", "graphql", "shop", "chat", "blog", "identity"],
        "GraphQL comes before the modules whose services it serves, the shop, the chat and the blog before identity"
    );
    let backwards = app_with(reversed).spawn().await;
    let forwards = app_with(basalt::modules())
        .module(fixture::NotesModule)
        .spawn()
        .await;

    assert_eq!(paths(&backwards).await, paths(&forwards).await);
    for app in [&backwards, &forwards] {
        // RealWorld sign-up (the blog through the identity service), an
        // article, and the list showing it.
        let writer = sign_up(app).await;
        writer
            .publish(app, "Order does not matter", &["modules"])
            .await;
        let page: Value = app.get("/api/articles").await.json().await.expect("json");
        assert_eq!(page["articlesCount"], 1, "{page}");
        let graphql = crate::graphql::data(
            app,
            Some(&writer.token),
            "{ viewer { username } articles { totalCount } }",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(graphql["articles"]["totalCount"], 1, "{graphql}");
        assert_eq!(graphql["viewer"]["username"], writer.username.as_str());
        assert_eq!(
            page["articles"][0]["author"]["username"], writer.username,
            "{page}"
        );
    }
    let names = |app: &TestApp| {
        let mut names: Vec<String> = app
            .platform
            .supervisor
            .live()
            .into_iter()
            .map(|t| t.name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&backwards), names(&forwards));
    backwards.stop().await.expect("stops");
    forwards.stop().await.expect("stops");
}

#[tokio::test]
async fn a_modules_routes_metrics_readiness_and_background_services_are_wired_in() {
    let app = TestApp::builder()
        .module(fixture::NotesModule)
        .spawn()
        .await;
    // A raw route is served, and stays out of the API document.
    let raw = app.get("/api/test-raw").await;
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.text().await.expect("body"), "raw");
    let documented = paths(&app).await;
    assert!(documented.contains("/api/test-notes"), "{documented:?}");
    assert!(!documented.contains("/api/test-raw"), "{documented:?}");

    // Its metric is exported with the platform's, and counts.
    let created = app
        .client
        .post(app.url("/api/test-notes"))
        .json(&serde_json::json!({ "title": "wired" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), StatusCode::CREATED);
    let metrics = app.get("/metrics").await.text().await.expect("body");
    assert!(
        metrics.contains("basalt_test_notes_created_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("basalt_http_requests_total"), "{metrics}");
    assert_eq!(metrics.matches("# EOF").count(), 1, "{metrics}");

    // Its readiness check is part of /readyz.
    let ready: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(
        ready["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["name"] == "test-notes" && c["status"] == "up"),
        "{ready}"
    );

    // Its background service runs under the supervisor.
    let live = app.platform.supervisor.live();
    assert!(
        live.iter()
            .any(|t| t.name == "test-notes.ticker" && t.stage == Stage::Support),
        "{live:?}"
    );
    app.stop().await.expect("stops");
}
