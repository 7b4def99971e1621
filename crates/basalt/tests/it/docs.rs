//! The OpenAPI document and Swagger UI, served by the binary with no CDN.

use reqwest::StatusCode;
use serde_json::Value;

use crate::spawn_app;

#[tokio::test]
async fn openapi_document_is_generated_from_the_handlers() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Basalt");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/test-notes",
        "/api/test-notes/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from {}",
            doc["paths"]
        );
    }
    assert!(doc["paths"]["/api/test-notes"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["Note"].is_object());
    assert!(doc["components"]["securitySchemes"]["metrics_token"].is_object());
}

/// Every asset the page references comes from the binary itself.
#[tokio::test]
async fn swagger_ui_is_served_entirely_by_the_binary() {
    let app = spawn_app().await;
    let redirect = app.get("/docs").await;
    assert!(redirect.status().is_redirection());
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");

    let assets = referenced_assets(&html);
    assert!(
        assets.len() >= 3,
        "expected scripts and styles, found {assets:?}"
    );
    for asset in &assets {
        assert!(
            !asset.starts_with("http") && !asset.starts_with("//"),
            "external asset {asset}"
        );
        let response = app
            .get(&format!("/docs/{}", asset.trim_start_matches("./")))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let body = response.text().await.expect("asset");
        assert!(!body.is_empty(), "{asset}");
        if asset.contains("initializer") {
            assert!(
                body.contains("/openapi.json"),
                "initializer points at our document: {body}"
            );
        }
    }
}

fn referenced_assets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attr) {
            rest = &rest[start + attr.len()..];
            if let Some(end) = rest.find('"') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

/// The served document of the binary's modules, compared with the checked-in
/// `tests/it/snapshots/openapi.json`: any change to the HTTP surface shows
/// up in review. `UPDATE_SNAPSHOTS=1` rewrites the file.
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = basalt_testkit::TestApp::spawn(basalt::modules()).await;
    let served: Value = app.get("/openapi.json").await.json().await.expect("json");
    let mut text = serde_json::to_string_pretty(&served).expect("serialises");
    text.push('\n');
    snapshot("openapi.json", &text);
}

/// Compares `text` with the checked-in `tests/it/snapshots/<name>`, or
/// rewrites the file when `UPDATE_SNAPSHOTS=1`.
pub fn snapshot(name: &str, text: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(name);
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(file.parent().expect("folder")).expect("create folder");
        std::fs::write(&file, text).expect("write snapshot");
        return;
    }
    let how = format!(
        "if the change is intended, rewrite it with \
         `UPDATE_SNAPSHOTS=1 cargo test -p basalt --test it snapshot` and commit {name}"
    );
    let saved = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {how}", file.display()));
    if saved != text {
        let line = saved
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| saved.lines().count().min(text.lines().count()))
            + 1;
        panic!(
            "{name} differs from {} from line {line}:\n  saved:  {}\n  now:    {}\n{how}",
            file.display(),
            saved.lines().nth(line - 1).unwrap_or("<end>"),
            text.lines().nth(line - 1).unwrap_or("<end>"),
        );
    }
}
