//! The reads that cache what used to reach the database on every request
//! (issue 14, part 3): the feed's total per reader, comment lists and
//! GraphQL's keyset pages, each fresh after every write that shows in it
//! and with every viewer's own flags; and an article's create, which
//! answers without reading the article back.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::graphql::data;

async fn get(app: &TestApp, who: Option<&Writer>, path: &str) -> Value {
    let r = match who {
        Some(w) => w
            .req(app, Method::GET, path)
            .send()
            .await
            .expect("answered"),
        None => app.get(path).await,
    };
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("json")
}

async fn send(app: &TestApp, who: &Writer, method: Method, path: &str) {
    let r = who.req(app, method, path).send().await.expect("answered");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// The feed's `articlesCount`, read twice (the second from the cache when
/// nothing changed); both must agree.
async fn feed_count(app: &TestApp, reader: &Writer) -> Value {
    let first = get(app, Some(reader), "/api/articles/feed").await["articlesCount"].clone();
    let again = get(app, Some(reader), "/api/articles/feed").await["articlesCount"].clone();
    assert_eq!(first, again);
    first
}

#[tokio::test]
async fn the_feeds_total_follows_every_follow_unfollow_and_article() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let reader = sign_up(&app).await;
    let slug = author.publish(&app, "Followed one", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    assert_eq!(feed_count(&app, &reader).await, 0);

    let profile = format!("/api/profiles/{}/follow", author.username);
    send(&app, &reader, Method::POST, &profile).await;
    assert_eq!(feed_count(&app, &reader).await, 1);
    author.publish(&app, "Followed two", &[]).await;
    assert_eq!(feed_count(&app, &reader).await, 2);
    send(&app, &reader, Method::DELETE, &profile).await;
    assert_eq!(feed_count(&app, &reader).await, 0);
    send(&app, &reader, Method::POST, &profile).await;
    assert_eq!(feed_count(&app, &reader).await, 2);
    send(
        &app,
        &author,
        Method::DELETE,
        &format!("/api/articles/{slug}"),
    )
    .await;
    assert_eq!(feed_count(&app, &reader).await, 1);

    // The page carries the reader's flags, fresh after a favourite.
    let page = get(&app, Some(&reader), "/api/articles/feed").await;
    assert_eq!(page["articles"][0]["favorited"], false);
    assert_eq!(page["articles"][0]["author"]["following"], true);
    let other = page["articles"][0]["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    send(
        &app,
        &reader,
        Method::POST,
        &format!("/api/articles/{other}/favorite"),
    )
    .await;
    let page = get(&app, Some(&reader), "/api/articles/feed").await;
    assert_eq!(page["articles"][0]["favorited"], true);
    assert_eq!(page["articles"][0]["favoritesCount"], 1);

    // GraphQL's feed shares the total.
    let feed = data(
        &app,
        Some(&reader.token),
        "{ feed(first: 5) { totalCount edges { node { slug } } } }",
        json!({}),
    )
    .await;
    assert_eq!(feed["feed"]["totalCount"], 1);
}

/// Each comment's body and whether the viewer follows its author.
fn comments_of(list: &Value) -> Vec<(String, bool, Value)> {
    list["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| {
            (
                c["body"].as_str().expect("body").to_owned(),
                c["author"]["following"].as_bool().expect("following"),
                c["author"]["bio"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cached_comments_are_fresh_after_every_write_with_each_viewers_flags() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let commenter = sign_up(&app).await;
    let fan = sign_up(&app).await;
    let slug = author.publish(&app, "Discussed", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let path = format!("/api/articles/{slug}/comments");
    assert_eq!(comments_of(&get(&app, None, &path).await), vec![]);

    let first = commenter
        .json_of(
            &app,
            Method::POST,
            &path,
            Some(json!({ "comment": { "body": "first" } })),
        )
        .await;
    let first_id = first["comment"]["id"].as_i64().expect("id");
    send(
        &app,
        &fan,
        Method::POST,
        &format!("/api/profiles/{}/follow", commenter.username),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            comments_of(&get(&app, None, &path).await),
            vec![("first".into(), false, Value::Null)]
        );
        assert_eq!(
            comments_of(&get(&app, Some(&fan), &path).await),
            vec![("first".into(), true, Value::Null)],
            "the fan follows the commenter"
        );
        assert_eq!(
            comments_of(&get(&app, Some(&author), &path).await),
            vec![("first".into(), false, Value::Null)]
        );
    }

    commenter
        .json_of(
            &app,
            Method::POST,
            &path,
            Some(json!({ "comment": { "body": "second" } })),
        )
        .await;
    assert_eq!(
        get(&app, None, &path).await["comments"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    send(
        &app,
        &commenter,
        Method::DELETE,
        &format!("{path}/{first_id}"),
    )
    .await;
    assert_eq!(
        comments_of(&get(&app, Some(&fan), &path).await),
        vec![("second".into(), true, Value::Null)]
    );
    // The author's profile, changed in the identity module.
    send_json(
        &app,
        &commenter,
        Method::PUT,
        "/api/user",
        json!({ "user": { "bio": "new bio" } }),
    )
    .await;
    assert_eq!(
        comments_of(&get(&app, None, &path).await),
        vec![("second".into(), false, json!("new bio"))]
    );
    // Gone with its article.
    send(
        &app,
        &author,
        Method::DELETE,
        &format!("/api/articles/{slug}"),
    )
    .await;
    let r = app.get(&path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn send_json(app: &TestApp, who: &Writer, method: Method, path: &str, body: Value) {
    let r = who
        .req(app, method, path)
        .json(&body)
        .send()
        .await
        .expect("answered");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

#[tokio::test]
async fn a_created_article_answers_what_reading_it_back_gives() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    for _ in 0..2 {
        // The second takes a suffixed slug: the insert finds the first's.
        let created = author
            .publish(&app, "Same title", &["zeta", "alpha", "zeta"])
            .await;
        let slug = created["slug"].as_str().expect("slug");
        let read = get(&app, Some(&author), &format!("/api/articles/{slug}")).await;
        assert_eq!(
            created, read["article"],
            "POST and GET answer the same article"
        );
        assert_eq!(created["tagList"], json!(["alpha", "zeta"]));
    }
    let list = get(&app, None, "/api/articles?tag=alpha").await;
    assert_eq!(list["articlesCount"], 2, "both tags were stored: {list}");
    let slugs: Vec<&str> = list["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs.len(), 2);
    assert_ne!(slugs[0], slugs[1]);
    assert!(
        slugs.iter().all(|s| s.starts_with("same-title")),
        "{slugs:?}"
    );
}

#[tokio::test]
async fn graphql_keyset_pages_are_shared_with_each_viewers_flags() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let reader = sign_up(&app).await;
    for i in 0..3 {
        author.publish(&app, &format!("Keyset {i}"), &[]).await;
    }
    const PAGE: &str = "query($after: String) { articles(first: 2, after: $after) { totalCount pageInfo { endCursor hasNextPage } edges { node { slug favorited favoritesCount author { username following } } } } }";
    let first = data(&app, None, PAGE, json!({ "after": null })).await;
    let cursor = first["articles"]["pageInfo"]["endCursor"].clone();
    let last_slug = {
        let second = data(&app, None, PAGE, json!({ "after": cursor })).await;
        assert_eq!(second["articles"]["pageInfo"]["hasNextPage"], false);
        second["articles"]["edges"][0]["node"]["slug"]
            .as_str()
            .expect("slug")
            .to_owned()
    };
    send(
        &app,
        &reader,
        Method::POST,
        &format!("/api/articles/{last_slug}/favorite"),
    )
    .await;
    send(
        &app,
        &reader,
        Method::POST,
        &format!("/api/profiles/{}/follow", author.username),
    )
    .await;
    for _ in 0..2 {
        let anonymous = data(&app, None, PAGE, json!({ "after": cursor })).await;
        let signed_in = data(&app, Some(&reader.token), PAGE, json!({ "after": cursor })).await;
        let node = |page: &Value| page["articles"]["edges"][0]["node"].clone();
        assert_eq!(node(&anonymous)["favoritesCount"], 1);
        assert_eq!(node(&anonymous)["favorited"], false);
        assert_eq!(node(&anonymous)["author"]["following"], false);
        assert_eq!(node(&signed_in)["favorited"], true);
        assert_eq!(node(&signed_in)["author"]["following"], true);
        assert_eq!(signed_in["articles"]["totalCount"], 3);
    }
    // A new article shows at once, on the first page.
    author.publish(&app, "Keyset new", &[]).await;
    let first = data(&app, None, PAGE, json!({ "after": null })).await;
    assert_eq!(first["articles"]["totalCount"], 4);
    assert_eq!(first["articles"]["edges"][0]["node"]["slug"], "keyset-new");
}
