//! The blog over GraphQL: the same answers as REST for the same reads, the
//! writes, their errors, keyset pages and the number of statements a page
//! costs.

use reqwest::Method;
use serde_json::{Value, json};

use super::statements::Statements;
use super::{code, data, post};
use crate::blog::{Writer, blog_app, sign_up};

const ARTICLE_FIELDS: &str = "slug title description tagList createdAt updatedAt favorited favoritesCount author { username bio image following }";

/// An article of a REST list, in the GraphQL selection's shape.
fn rest_article(a: &Value) -> Value {
    json!({
        "slug": a["slug"], "title": a["title"], "description": a["description"],
        "tagList": a["tagList"], "createdAt": a["createdAt"], "updatedAt": a["updatedAt"],
        "favorited": a["favorited"], "favoritesCount": a["favoritesCount"],
        "author": a["author"],
    })
}

fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Two authors, one reader who follows the first and favourites one of
/// their articles, and a few tagged, commented articles.
async fn scene(app: &basalt_testkit::TestApp) -> (Writer, Writer, Writer) {
    let first = sign_up(app).await;
    let second = sign_up(app).await;
    let reader = sign_up(app).await;
    for i in 0..3 {
        first
            .publish(app, &format!("First {i}"), &["rust", "x"])
            .await;
        second.publish(app, &format!("Second {i}"), &["go"]).await;
    }
    let slug = first.publish(app, "Favourite", &["rust"]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    reader
        .json_of(
            app,
            Method::POST,
            &format!("/api/articles/{slug}/favorite"),
            None,
        )
        .await;
    reader
        .json_of(
            app,
            Method::POST,
            &format!("/api/profiles/{}/follow", first.username),
            None,
        )
        .await;
    for text in ["one", "two", "three", "four"] {
        second
            .json_of(
                app,
                Method::POST,
                &format!("/api/articles/{slug}/comments"),
                Some(json!({ "comment": { "body": text } })),
            )
            .await;
    }
    (first, second, reader)
}

#[tokio::test]
async fn reads_give_the_same_answers_as_rest() {
    let app = blog_app().await;
    let (first, _, reader) = scene(&app).await;
    let token = Some(reader.token.as_str());

    for (rest, args) in [
        ("/api/articles", String::new()),
        ("/api/articles?tag=rust", "tag: \"rust\"".to_owned()),
        (
            &format!("/api/articles?author={}", first.username) as &str,
            format!("author: \"{}\"", first.username),
        ),
        (
            &format!("/api/articles?favorited={}", reader.username) as &str,
            format!("favoritedBy: \"{}\"", reader.username),
        ),
    ] {
        let rest = reader.json_of(&app, Method::GET, rest, None).await;
        let args = if args.is_empty() {
            args
        } else {
            format!("({args})")
        };
        let query = format!(
            "{{ articles{args} {{ totalCount edges {{ node {{ {ARTICLE_FIELDS} }} }} }} }}"
        );
        let graphql = data(&app, token, &query, json!({})).await;
        let expected: Vec<Value> = rest["articles"]
            .as_array()
            .expect("list")
            .iter()
            .map(rest_article)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(nodes(&graphql["articles"]), expected, "{args}");
        assert_eq!(
            graphql["articles"]["totalCount"], rest["articlesCount"],
            "{args}"
        );
    }

    let rest = reader
        .json_of(&app, Method::GET, "/api/articles/feed", None)
        .await;
    let graphql = data(
        &app,
        token,
        &format!("{{ feed {{ totalCount edges {{ node {{ {ARTICLE_FIELDS} }} }} }} }}"),
        json!({}),
    )
    .await;
    let expected: Vec<Value> = rest["articles"]
        .as_array()
        .expect("list")
        .iter()
        .map(rest_article)
        .collect();
    assert_eq!(nodes(&graphql["feed"]), expected);
    assert_eq!(graphql["feed"]["totalCount"], rest["articlesCount"]);

    let slug = expected[0]["slug"].as_str().expect("slug");
    let rest = reader
        .json_of(&app, Method::GET, &format!("/api/articles/{slug}"), None)
        .await;
    let graphql = data(
        &app,
        token,
        &format!("query($s: String!) {{ article(slug: $s) {{ {ARTICLE_FIELDS} body bodyHtml }} }}"),
        json!({ "s": slug }),
    )
    .await;
    let mut expected = rest_article(&rest["article"]);
    expected["body"] = rest["article"]["body"].clone();
    expected["bodyHtml"] = rest["article"]["bodyHtml"].clone();
    assert_eq!(graphql["article"], expected);

    let rest = reader
        .json_of(
            &app,
            Method::GET,
            &format!("/api/profiles/{}", first.username),
            None,
        )
        .await;
    let graphql = data(
        &app,
        token,
        "query($u: String!) { profile(username: $u) { username bio image following } }",
        json!({ "u": first.username }),
    )
    .await;
    assert_eq!(graphql["profile"], rest["profile"]);

    let rest = reader.json_of(&app, Method::GET, "/api/tags", None).await;
    assert_eq!(
        data(&app, token, "{ tags }", json!({})).await["tags"],
        rest["tags"]
    );

    let favourite = "favourite";
    let rest = reader
        .json_of(
            &app,
            Method::GET,
            &format!("/api/articles/{favourite}/comments"),
            None,
        )
        .await;
    let graphql = data(
        &app,
        token,
        "query($s: String!) { article(slug: $s) { comments { totalCount edges { node { id body createdAt updatedAt author { username bio image following } } } } } }",
        json!({ "s": favourite }),
    )
    .await;
    let expected: Vec<Value> = rest["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| json!({ "id": c["id"].to_string(), "body": c["body"], "createdAt": c["createdAt"], "updatedAt": c["updatedAt"], "author": c["author"] }))
        .collect();
    assert_eq!(nodes(&graphql["article"]["comments"]), expected);
    assert_eq!(graphql["article"]["comments"]["totalCount"], 4);

    // Unknown things are null, not errors.
    let none = data(
        &app,
        token,
        "{ article(slug: \"nope\") { slug } profile(username: \"nobody-here\") { username } }",
        json!({}),
    )
    .await;
    assert_eq!(none, json!({ "article": null, "profile": null }));
}

#[tokio::test]
async fn pages_chain_by_cursor_without_gaps() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    for i in 0..7 {
        author.publish(&app, &format!("Paged {i}"), &[]).await;
    }
    let query = "query($after: String) { articles(first: 3, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { title } } } }";
    let mut after = Value::Null;
    let mut titles = Vec::new();
    let mut pages = 0;
    loop {
        let page = data(&app, None, query, json!({ "after": after })).await["articles"].clone();
        pages += 1;
        assert_eq!(page["totalCount"], 7);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], pages > 1);
        for edge in page["edges"].as_array().expect("edges") {
            titles.push(edge["node"]["title"].as_str().expect("title").to_owned());
        }
        assert_eq!(
            page["pageInfo"]["endCursor"],
            page["edges"]
                .as_array()
                .expect("present")
                .last()
                .expect("present")["cursor"]
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).rev().map(|i| format!("Paged {i}")).collect();
    assert_eq!(titles, expected);

    let (_, body) = post(
        &app,
        None,
        "{ articles(after: \"garbage\") { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"], "after",
        "{body}"
    );
    let (_, body) = post(
        &app,
        None,
        "{ articles(first: 101) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
}

const CREATE: &str = "mutation($input: CreateArticleInput!) { createArticle(input: $input) { slug title tagList body bodyHtml author { username } } }";

#[tokio::test]
async fn writes_follow_the_rest_rules_with_coded_errors() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let other = sign_up(&app).await;
    let input = json!({ "input": { "title": "Over GraphQL", "description": "d", "body": "**b**", "tagList": ["z", "a"] } });
    let created =
        data(&app, Some(&author.token), CREATE, input.clone()).await["createArticle"].clone();
    assert_eq!(created["tagList"], json!(["a", "z"]));
    assert_eq!(created["bodyHtml"], "<p><strong>b</strong></p>\n");
    let slug = created["slug"].as_str().expect("slug").to_owned();
    // REST sees it.
    let rest = author
        .json_of(&app, Method::GET, &format!("/api/articles/{slug}"), None)
        .await;
    assert_eq!(rest["article"]["title"], "Over GraphQL");

    let (_, body) = post(
        &app,
        Some(&author.token),
        CREATE,
        json!({ "input": { "title": " ", "description": "d", "body": "b" } }),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"], "title",
        "{body}"
    );

    let update =
        "mutation($s: String!) { updateArticle(slug: $s, input: { title: \"Mine\" }) { title } }";
    let (_, body) = post(&app, Some(&other.token), update, json!({ "s": slug })).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let (_, body) = post(&app, Some(&other.token), update, json!({ "s": "no-such" })).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let updated = data(&app, Some(&author.token), update, json!({ "s": slug })).await;
    assert_eq!(updated["updateArticle"]["title"], "Mine");

    let favourite = data(
        &app,
        Some(&other.token),
        "mutation($s: String!) { favoriteArticle(slug: $s) { favorited favoritesCount } }",
        json!({ "s": slug }),
    )
    .await;
    assert_eq!(
        favourite["favoriteArticle"],
        json!({ "favorited": true, "favoritesCount": 1 })
    );
    let unfavourite = data(
        &app,
        Some(&other.token),
        "mutation($s: String!) { unfavoriteArticle(slug: $s) { favorited favoritesCount } }",
        json!({ "s": slug }),
    )
    .await;
    assert_eq!(
        unfavourite["unfavoriteArticle"],
        json!({ "favorited": false, "favoritesCount": 0 })
    );

    let follow = data(
        &app,
        Some(&other.token),
        "mutation($u: String!) { followProfile(username: $u) { following } }",
        json!({ "u": author.username }),
    )
    .await;
    assert_eq!(follow["followProfile"]["following"], true);
    let (_, body) = post(
        &app,
        Some(&author.token),
        "mutation($u: String!) { followProfile(username: $u) { following } }",
        json!({ "u": author.username }),
    )
    .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "following yourself: {body}");
    let unfollow = data(
        &app,
        Some(&other.token),
        "mutation($u: String!) { unfollowProfile(username: $u) { following } }",
        json!({ "u": author.username }),
    )
    .await;
    assert_eq!(unfollow["unfollowProfile"]["following"], false);

    let comment = data(&app, Some(&other.token), "mutation($s: String!) { addComment(slug: $s, body: \"Nice\") { id body author { username } } }", json!({ "s": slug })).await["addComment"].clone();
    assert_eq!(comment["body"], "Nice");
    assert_eq!(comment["author"]["username"], other.username.as_str());
    let delete_comment = "mutation($id: ID!) { deleteComment(id: $id) }";
    let (_, body) = post(
        &app,
        Some(&author.token),
        delete_comment,
        json!({ "id": comment["id"] }),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let (_, body) = post(
        &app,
        Some(&other.token),
        delete_comment,
        json!({ "id": "999999" }),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    assert_eq!(
        data(
            &app,
            Some(&other.token),
            delete_comment,
            json!({ "id": comment["id"] })
        )
        .await["deleteComment"],
        true
    );

    let delete = "mutation($s: String!) { deleteArticle(slug: $s) }";
    let (_, body) = post(&app, Some(&other.token), delete, json!({ "s": slug })).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    assert_eq!(
        data(&app, Some(&author.token), delete, json!({ "s": slug })).await["deleteArticle"],
        true
    );
    let gone = author
        .req(&app, Method::GET, &format!("/api/articles/{slug}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
}

/// The page the issue names: 20 articles with authors, tags, favourite
/// flags and their first three comments with authors.
const PAGE: &str = "query($n: Int!) { articles(first: $n) { totalCount edges { cursor node { slug title tagList favorited favoritesCount body author { username following } comments(first: 3) { totalCount edges { node { id body author { username following } } } } } } } }";

#[tokio::test]
async fn a_page_runs_a_fixed_number_of_statements_whatever_its_size() {
    let app = blog_app().await;
    if basalt_testkit::backend_name() != "postgres" {
        // Statements are counted from the driver's log (see `statements`).
        return;
    }
    let author = sign_up(&app).await;
    let commenter = sign_up(&app).await;
    for i in 0..20 {
        let slug = author.publish(&app, &format!("Counted {i}"), &["t"]).await["slug"]
            .as_str()
            .expect("slug")
            .to_owned();
        for text in ["a", "b", "c", "d"] {
            commenter
                .json_of(
                    &app,
                    Method::POST,
                    &format!("/api/articles/{slug}/comments"),
                    Some(json!({ "comment": { "body": text } })),
                )
                .await;
        }
    }
    let (statements, _recording) = Statements::record();
    let tables = ["blog_", "users"];
    let mut counts = Vec::new();
    for n in [2, 20] {
        // Warm the caches both sizes share (the total, the standing).
        data(&app, Some(&commenter.token), PAGE, json!({ "n": n })).await;
        statements.clear();
        let page = data(&app, Some(&commenter.token), PAGE, json!({ "n": n })).await;
        let edges = page["articles"]["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), n);
        assert_eq!(
            edges[0]["node"]["comments"]["edges"]
                .as_array()
                .expect("comments")
                .len(),
            3
        );
        counts.push(statements.on(&tables));
    }
    assert!(statements.all() > 0);
    assert_eq!(
        counts[0].len(),
        counts[1].len(),
        "2 articles: {:#?}\n20 articles: {:#?}",
        counts[0],
        counts[1]
    );
    assert!(counts[1].len() <= 8, "{:#?}", counts[1]);
}
