//! GraphQL beside REST: the endpoint, its limits and credentials, the blog's
//! and the chat's schema against their REST answers, and subscriptions.

mod auth;
mod blog;
mod chat;
mod endpoint;
mod shop;
pub mod statements;
mod subscriptions;

use basalt_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `POST /graphql` with `query` and `variables`, and `token` as a bearer
/// token if any: the status and the JSON answer.
pub async fn post(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// The `data` of a query that must succeed.
pub async fn data(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let (status, body) = post(app, token, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no coded error in {body}"))
}
