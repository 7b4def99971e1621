//! The endpoint: methods, media types, limits, introspection, persisted
//! queries, GraphiQL, the SDL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{code, data, post};
use crate::blog::blog_app;

/// `GET /graphql?…` with `pairs`, form-encoded.
fn get_url(app: &basalt_testkit::TestApp, pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    app.url(&format!("/graphql?{query}"))
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = blog_app().await;
    let r = app
        .client
        .get(get_url(&app, &[("query", "{ tags }")]))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["tags"], json!([]), "{body}");

    let r = app
        .client
        .get(get_url(
            &app,
            &[("query", "mutation { deleteArticle(slug: \"x\") }")],
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.expect("json");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("present")
            .contains("POST")
    );
}

#[tokio::test]
async fn malformed_requests_get_coded_errors() {
    let app = blog_app().await;
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body("{ tags }")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(code(&body), "BAD_REQUEST");

    let (status, body) = post(&app, None, "{ tags", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED");

    let (status, body) = post(&app, None, "{ noSuchField }", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");

    let (status, body) = post(
        &app,
        None,
        "subscription { articlePublished { slug } }",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("present")
            .contains("WebSocket")
    );
}

/// `profile → articles → author → articles → …`, `levels` deep.
fn nested(levels: usize) -> String {
    let mut query = String::from("username");
    for _ in 0..levels {
        query = format!("articles {{ edges {{ node {{ author {{ {query} }} }} }} }}");
    }
    format!("{{ profile(username: \"nobody\") {{ {query} }} }}")
}

#[tokio::test]
async fn deep_wide_and_long_queries_are_refused_before_any_sql_runs() {
    let app = blog_app().await;
    let (statements, _recording) = super::statements::Statements::record();

    let (_, body) = post(&app, None, &nested(50), json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");

    let aliases: String = (0..1000).map(|i| format!("a{i}: tags ")).collect();
    let (_, body) = post(&app, None, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("present")
            .contains("1000 aliases")
    );

    let padding = " ".repeat(20_000);
    let (_, body) = post(&app, None, &format!("{{ tags {padding} }}"), json!({})).await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // A page of a hundred articles with a hundred comments each, each with
    // its author's hundred articles: a million nodes.
    let (_, body) = post(
        &app,
        None,
        "{ articles(first: 100) { edges { node { comments(first: 100) { edges { node { author { articles(first: 100) { totalCount } } } } } } } } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "QUERY_TOO_COMPLEX", "{body}");

    let run = statements.on(&["blog_", "users"]);
    assert!(run.is_empty(), "refused queries ran {run:?}");

    // A reasonable query nested a few levels runs.
    let data = data(&app, None, &nested(2), json!({})).await;
    assert_eq!(data["profile"], Value::Null);
    if basalt_testkit::backend_name() == "postgres" {
        assert!(
            !statements.on(&["users"]).is_empty(),
            "the recorder sees the statements of a query that runs"
        );
    }
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let query = "{ __schema { queryType { name } } }";
    let app = blog_app().await;
    assert_eq!(
        data(&app, None, query, json!({})).await["__schema"]["queryType"]["name"],
        "Query"
    );
    let app = crate::identity::identity_app()
        .env("BASALT_GRAPHQL__INTROSPECTION", "false")
        .spawn()
        .await;
    let (_, body) = post(&app, None, query, json!({})).await;
    assert_eq!(body["data"]["__schema"], Value::Null, "{body}");
    // Ordinary queries still run.
    assert_eq!(
        data(&app, None, "{ tags }", json!({})).await["tags"],
        json!([])
    );
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn persisted(app: &basalt_testkit::TestApp, query: Option<&str>, hash: &str) -> Value {
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let mut body = json!({ "extensions": extensions });
    if let Some(query) = query {
        body["query"] = json!(query);
    }
    app.client
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn persisted_queries_register_once_and_are_known_to_every_node() {
    let first = blog_app().await;
    let query = "{ tags }";
    let hash = sha256_hex(query);

    let body = persisted(&first, None, &hash).await;
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");

    let body = persisted(&first, Some("{ viewer { id } }"), &hash).await;
    assert_eq!(
        code(&body),
        "BAD_USER_INPUT",
        "a query under another's hash: {body}"
    );

    let body = persisted(&first, Some(query), &hash).await;
    assert_eq!(body["data"]["tags"], json!([]), "{body}");
    let body = persisted(&first, None, &hash).await;
    assert_eq!(body["data"]["tags"], json!([]), "{body}");

    // Over GET too, as Apollo clients send them.
    let r = first
        .client
        .get(get_url(
            &first,
            &[(
                "extensions",
                &json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string(),
            )],
        ))
        .send()
        .await
        .expect("answered");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["tags"], json!([]), "{body}");

    // A node sharing the cluster's Redis knows it too.
    if basalt_testkit::redis::shared_redis_url().is_some() {
        let second = crate::identity::identity_app()
            .node_of(&first)
            .spawn()
            .await;
        let body = persisted(&second, None, &hash).await;
        assert_eq!(body["data"]["tags"], json!([]), "{body}");
    }
}

#[tokio::test]
async fn graphiql_is_served_with_its_own_assets_only() {
    let app = blog_app().await;
    let page = app.get("/graphiql").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let host = app.addr.to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' ws://{host} wss://{host};")),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self';") && csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/graphiql/assets/"))
        .collect();
    assert!(assets.len() >= 4, "{html}");
    for asset in assets {
        let r = app.get(asset).await;
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .expect("present")
                .contains("immutable"),
            "{asset}"
        );
    }
}

#[test]
fn the_sdl_matches_its_snapshot() {
    crate::docs::snapshot("schema.graphql", &basalt::graphql::sdl());
}

#[tokio::test]
async fn operations_are_counted_by_type_and_outcome() {
    let app = blog_app().await;
    data(&app, None, "{ tags }", json!({})).await;
    post(
        &app,
        None,
        "mutation { deleteArticle(slug: \"x\") }",
        json!({}),
    )
    .await;
    post(&app, None, "{ tags", json!({})).await;
    let metrics = app.get("/metrics").await.text().await.expect("text");
    for (operation, outcome) in [
        ("query", "ok"),
        ("mutation", "error"),
        ("unknown", "refused"),
    ] {
        let line = format!(
            "basalt_graphql_operations_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
}

#[tokio::test]
async fn graphql_response_json_is_400_only_for_requests_that_did_not_run() {
    let app = blog_app().await;
    let ask = |query: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
    };
    let r = ask("{ noSuchField }").await.expect("answered");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers()["content-type"],
        "application/graphql-response+json"
    );
    // It ran: a resolver's error is in the answer, with 200.
    let r = ask("mutation { deleteArticle(slug: \"x\") }")
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(code(&body), "UNAUTHENTICATED");
}
