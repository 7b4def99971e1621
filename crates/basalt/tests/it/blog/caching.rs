//! Caching of anonymous pages: hits, and never stale after a write.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

/// Lookups with `result`, summed over the layers that answered.
pub fn cache_count(metrics: &str, result: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("basalt_cache_lookups_total{{result=\"{result}\"")))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn anonymous_pages_are_served_from_the_cache() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    w.publish(&app, "Cached", &["c"]).await;
    let first: Value = app.get("/api/articles").await.json().await.expect("json");
    let before = app.get("/metrics").await.text().await.expect("metrics");
    let second: Value = app.get("/api/articles").await.json().await.expect("json");
    let tags1: Value = app.get("/api/tags").await.json().await.expect("json");
    let tags2: Value = app.get("/api/tags").await.json().await.expect("json");
    let after = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(first, second);
    assert_eq!(tags1, tags2);
    assert!(
        cache_count(&after, "hit") >= cache_count(&before, "hit") + 2.0,
        "{after}"
    );
}

#[tokio::test]
async fn a_reader_never_sees_a_page_older_than_the_last_write() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let fan = sign_up(&app).await;
    let list = || async {
        app.get("/api/articles")
            .await
            .json::<Value>()
            .await
            .expect("json")
    };

    let slug = w.publish(&app, "First", &["one"]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    assert_eq!(list().await["articlesCount"], 1);
    assert_eq!(list().await["articlesCount"], 1);

    // New article.
    w.publish(&app, "Second", &["two"]).await;
    assert_eq!(list().await["articlesCount"], 2);
    let tags: Value = app.get("/api/tags").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!(["one", "two"]));

    // Favourite count.
    fan.req(
        &app,
        Method::POST,
        &format!("/api/articles/{slug}/favorite"),
    )
    .send()
    .await
    .expect("answered");
    let page = list().await;
    let first = page["articles"]
        .as_array()
        .expect("a")
        .iter()
        .find(|a| a["slug"] == slug.as_str())
        .expect("listed")
        .clone();
    assert_eq!(first["favoritesCount"], 1);
    assert_eq!(
        first["favorited"], false,
        "anonymous readers see no personal flags"
    );

    // Edit.
    w.req(&app, Method::PUT, &format!("/api/articles/{slug}"))
        .json(&json!({ "article": { "description": "edited" } }))
        .send()
        .await
        .expect("answered");
    assert!(
        list().await["articles"]
            .as_array()
            .expect("a")
            .iter()
            .any(|a| a["description"] == "edited")
    );

    // The author's profile, changed in the identity module.
    w.req(&app, Method::PUT, "/api/user")
        .json(&json!({ "user": { "bio": "new bio" } }))
        .send()
        .await
        .expect("answered");
    assert!(
        list().await["articles"]
            .as_array()
            .expect("a")
            .iter()
            .all(|a| a["author"]["bio"] == "new bio")
    );

    // Delete.
    let r = w
        .req(&app, Method::DELETE, &format!("/api/articles/{slug}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(list().await["articlesCount"], 1);
}

#[tokio::test]
async fn personal_flags_are_right_for_every_viewer() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let fan = sign_up(&app).await;
    let follower = sign_up(&app).await;
    let slug = author.publish(&app, "Flags", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    fan.req(
        &app,
        Method::POST,
        &format!("/api/articles/{slug}/favorite"),
    )
    .send()
    .await
    .expect("answered");
    follower
        .req(
            &app,
            Method::POST,
            &format!("/api/profiles/{}/follow", author.username),
        )
        .send()
        .await
        .expect("answered");
    let _ = app.get("/api/articles").await; // warm the anonymous cache
    let seen_by = |w: &Writer| w.req(&app, Method::GET, "/api/articles").send();
    let by_fan: Value = seen_by(&fan)
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let by_follower: Value = seen_by(&follower)
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let anon: Value = app.get("/api/articles").await.json().await.expect("json");
    assert_eq!(
        (
            by_fan["articles"][0]["favorited"].clone(),
            by_fan["articles"][0]["author"]["following"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(
        (
            by_follower["articles"][0]["favorited"].clone(),
            by_follower["articles"][0]["author"]["following"].clone()
        ),
        (json!(false), json!(true))
    );
    assert_eq!(
        (
            anon["articles"][0]["favorited"].clone(),
            anon["articles"][0]["author"]["following"].clone()
        ),
        (json!(false), json!(false))
    );
}

/// GET `path` (as `who`, or anonymously), which must answer 200 with JSON.
async fn get_json(app: &TestApp, who: Option<&Writer>, path: String) -> Value {
    let r = match who {
        Some(w) => w
            .req(app, Method::GET, &path)
            .send()
            .await
            .expect("answered"),
        None => app.get(&path).await,
    };
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json::<Value>().await.expect("json")
}

/// `favorited` and `author.following` of each article on a signed-in page,
/// by slug.
fn flags_by_slug(page: &Value) -> std::collections::BTreeMap<String, (bool, bool)> {
    page["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| {
            (
                a["slug"].as_str().expect("slug").to_owned(),
                (
                    a["favorited"].as_bool().expect("favorited"),
                    a["author"]["following"].as_bool().expect("following"),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn signed_in_readers_share_the_cached_pages_each_with_their_own_flags() {
    let app = blog_app().await;
    let (alice, bob, fan) = (
        sign_up(&app).await,
        sign_up(&app).await,
        sign_up(&app).await,
    );
    let slug = |v: Value| v["slug"].as_str().expect("slug").to_owned();
    let a1 = slug(alice.publish(&app, "Alice one", &[]).await);
    let b1 = slug(bob.publish(&app, "Bob one", &[]).await);
    let a2 = slug(alice.publish(&app, "Alice two", &[]).await);
    let post = |path: String| fan.req(&app, Method::POST, &path).send();
    post(format!("/api/articles/{b1}/favorite"))
        .await
        .expect("answered");
    post(format!("/api/profiles/{}/follow", alice.username))
        .await
        .expect("answered");

    let expected: std::collections::BTreeMap<_, _> = [
        (a1.clone(), (false, true)),
        (b1.clone(), (true, false)),
        (a2.clone(), (false, true)),
    ]
    .into();
    let _ = get_json(&app, None, "/api/articles".into()).await; // cached now
    let before = app.get("/metrics").await.text().await.expect("metrics");
    let page = get_json(&app, Some(&fan), "/api/articles".into()).await;
    let after = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        cache_count(&after, "hit") > cache_count(&before, "hit"),
        "the signed-in page came from the cache"
    );
    assert_eq!(flags_by_slug(&page), expected);
    assert_eq!(page["articlesCount"], 3);
    let anon = flags_by_slug(&get_json(&app, None, "/api/articles".into()).await);
    assert!(anon.values().all(|f| *f == (false, false)), "{anon:?}");
    let by_alice = flags_by_slug(&get_json(&app, Some(&alice), "/api/articles".into()).await);
    assert!(
        by_alice.values().all(|f| *f == (false, false)),
        "{by_alice:?}"
    );

    // One article, cached too: the same flags, and the body with its HTML.
    for (slug, flags) in &expected {
        let path = format!("/api/articles/{slug}");
        for _ in 0..2 {
            let seen = get_json(&app, Some(&fan), path.clone()).await["article"].clone();
            assert_eq!(
                (
                    seen["favorited"].as_bool(),
                    seen["author"]["following"].as_bool()
                ),
                (Some(flags.0), Some(flags.1)),
                "{slug}"
            );
            assert_eq!(seen["body"], "# Hello\n\nText.");
            assert!(
                seen["bodyHtml"]
                    .as_str()
                    .expect("html")
                    .contains("<h1>Hello</h1>")
            );
            let anon = get_json(&app, None, path.clone()).await["article"].clone();
            assert_eq!(
                (
                    anon["favorited"].clone(),
                    anon["author"]["following"].clone()
                ),
                (json!(false), json!(false))
            );
        }
    }

    // A change of flags shows at once, on the list and on the article.
    fan.req(
        &app,
        Method::DELETE,
        &format!("/api/articles/{b1}/favorite"),
    )
    .send()
    .await
    .expect("answered");
    fan.req(
        &app,
        Method::DELETE,
        &format!("/api/profiles/{}/follow", alice.username),
    )
    .send()
    .await
    .expect("answered");
    let page = flags_by_slug(&get_json(&app, Some(&fan), "/api/articles".into()).await);
    assert!(page.values().all(|f| *f == (false, false)), "{page:?}");
    let article = get_json(&app, Some(&fan), format!("/api/articles/{b1}")).await;
    assert_eq!(article["article"]["favorited"], false);
    assert_eq!(article["article"]["favoritesCount"], 0);
    let missing = app.get("/api/articles/no-such-article").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
