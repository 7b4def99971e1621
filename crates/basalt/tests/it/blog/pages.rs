//! Keyset pages at the service level, as the GraphQL resolvers call them:
//! cursors, page sizes, filters and the feed against the REST lists, comment
//! pages of several articles at once, bodies, and reads and deletions by id.

use std::collections::HashMap;

use basalt_blog::error::BlogError;
use basalt_blog::model::Article;
use basalt_blog::service::Blog;
use basalt_blog::service::articles::{ArticleDraft, ListFilter, Paging};
use basalt_blog::service::connections::{Cursor, MAX_FIRST, Page, PageRequest};
use basalt_testkit::TestApp;
use serde_json::Value;
use uuid::Uuid;

use super::{blog_app, sign_up};
use crate::identity::user_id;

/// A signed-up account: id and username.
struct Account {
    id: Uuid,
    username: String,
}

async fn accounts(app: &TestApp, n: usize) -> (Blog, Vec<Account>) {
    let blog = app
        .platform
        .services
        .get::<Blog>()
        .expect("the blog offers its service");
    let mut out = Vec::new();
    for _ in 0..n {
        let writer = sign_up(app).await;
        out.push(Account {
            id: user_id(app, &writer.email).await,
            username: writer.username,
        });
    }
    (blog, out)
}

async fn publish(blog: &Blog, author: Uuid, title: &str, tags: &[&str]) -> Article {
    blog.create_article(
        author,
        ArticleDraft {
            title: title.to_owned(),
            description: "about it".to_owned(),
            body: format!("# {title}\n\nText."),
            tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
        },
    )
    .await
    .expect("published")
}

fn request(first: i64, after: Option<&str>) -> PageRequest {
    PageRequest::parse(Some(first), after).expect("a valid request")
}

/// The messages of a 422, by field.
fn invalid<T: std::fmt::Debug>(result: Result<T, BlogError>) -> Vec<(String, String)> {
    match result {
        Err(BlogError::Invalid(errors)) => errors,
        other => panic!("expected a 422, got {other:?}"),
    }
}

fn ids<T>(page: &Page<T>, id: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    page.edges.iter().map(|(_, item)| id(item)).collect()
}

/// Every page of a list of articles, following the cursors from the start.
async fn every_page<F, Fut>(first: i64, mut fetch: F) -> Vec<Page<Article>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<Article>, BlogError>>,
{
    let mut pages: Vec<Page<Article>> = Vec::new();
    loop {
        let after = pages.last().map(|p| {
            p.edges
                .last()
                .expect("a page before the last is full")
                .0
                .clone()
        });
        let page = fetch(request(first, after.as_deref()))
            .await
            .expect("a page");
        assert_eq!(page.has_previous_page, after.is_some());
        let more = page.has_next_page;
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < 100, "the cursors advance");
    }
}

/// `(slug, favorited, following)` of each article of a REST list's JSON,
/// and its `articlesCount`.
fn rest_list(json: &[u8]) -> (Vec<(String, bool, bool)>, i64) {
    let json: Value = serde_json::from_slice(json).expect("JSON");
    let articles = json["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| {
            (
                a["slug"].as_str().expect("slug").to_owned(),
                a["favorited"].as_bool().expect("favorited"),
                a["author"]["following"].as_bool().expect("following"),
            )
        })
        .collect();
    (articles, json["articlesCount"].as_i64().expect("count"))
}

fn flat(pages: &[Page<Article>]) -> Vec<(String, bool, bool)> {
    pages
        .iter()
        .flat_map(|p| &p.edges)
        .map(|(_, a)| (a.slug.clone(), a.favorited, a.author.following))
        .collect()
}

#[tokio::test]
async fn forty_five_articles_page_as_20_20_5_and_one_published_meanwhile_neither_repeats_nor_skips()
{
    let app = blog_app().await;
    let (blog, users) = accounts(&app, 1).await;
    let author = users[0].id;
    let mut created = Vec::new();
    for i in 0..45 {
        created.push(
            publish(&blog, author, &format!("Article {i}"), &[])
                .await
                .id,
        );
    }
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();
    let list = |page| blog.article_page(None, ListFilter::default(), page);

    let first = list(request(20, None)).await.expect("page 1");
    assert_eq!(ids(&first, |a| a.id), newest_first[..20]);
    assert!(first.has_next_page && !first.has_previous_page);
    assert_eq!(first.total_count, 45);
    for (cursor, article) in &first.edges {
        assert_eq!(
            Cursor::decode(cursor).expect("decodes"),
            Cursor::Article(article.id)
        );
        assert!(article.body.is_none(), "lists carry no body");
    }

    let latecomer = publish(&blog, author, "Latecomer", &[]).await.id;
    let second = list(request(20, Some(&first.edges[19].0)))
        .await
        .expect("page 2");
    assert_eq!(ids(&second, |a| a.id), newest_first[20..40]);
    assert!(second.has_next_page && second.has_previous_page);
    assert_eq!(second.total_count, 46, "the total counts the latecomer");
    let third = list(request(20, Some(&second.edges[19].0)))
        .await
        .expect("page 3");
    assert_eq!(ids(&third, |a| a.id), newest_first[40..]);
    assert!(!third.has_next_page && third.has_previous_page);
    let past_the_end = list(request(20, Some(&third.edges[4].0)))
        .await
        .expect("after the last");
    assert!(past_the_end.edges.is_empty() && !past_the_end.has_next_page);

    let restart = list(request(1, None)).await.expect("from the top");
    assert_eq!(ids(&restart, |a| a.id), [latecomer]);
    let default = blog
        .article_page(
            None,
            ListFilter::default(),
            PageRequest::parse(None, None).expect("ok"),
        )
        .await
        .expect("default size");
    assert_eq!(default.edges.len(), 20);
}

#[tokio::test]
async fn each_filter_and_the_feed_page_through_the_rows_of_the_rest_lists() {
    let app = blog_app().await;
    let (blog, users) = accounts(&app, 3).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let mut slugs = Vec::new();
    for i in 0..5 {
        let tags: &[&str] = if i % 2 == 0 { &["rust"] } else { &["go"] };
        slugs.push(
            publish(&blog, alice.id, &format!("Alice {i}"), tags)
                .await
                .slug,
        );
        slugs.push(
            publish(&blog, bob.id, &format!("Bob {i}"), &["rust", "go"])
                .await
                .slug,
        );
    }
    for slug in [&slugs[0], &slugs[3], &slugs[6]] {
        blog.favorite(carol.id, slug).await.expect("favourited");
    }
    blog.follow(carol.id, &bob.username)
        .await
        .expect("followed");

    let filters = [
        ListFilter::default(),
        ListFilter {
            tag: Some("rust".into()),
            ..ListFilter::default()
        },
        ListFilter {
            author: Some(alice.username.clone()),
            ..ListFilter::default()
        },
        ListFilter {
            favorited: Some(carol.username.clone()),
            ..ListFilter::default()
        },
        ListFilter {
            tag: Some("go".into()),
            author: Some(alice.username.clone()),
            ..ListFilter::default()
        },
    ];
    for filter in filters {
        let all = Paging {
            limit: 100,
            offset: 0,
        };
        let (rest, rest_count) = rest_list(
            &blog
                .list_articles(Some(carol.id), filter.clone(), all)
                .await
                .expect("REST list"),
        );
        let pages = every_page(2, |page| {
            blog.article_page(Some(carol.id), filter.clone(), page)
        })
        .await;
        assert_eq!(flat(&pages), rest, "{filter:?}");
        assert!(
            pages.iter().all(|p| p.total_count == rest_count),
            "{filter:?}"
        );
        assert!(!rest.is_empty(), "{filter:?} matches something");
    }
    let favourites = blog
        .article_page(
            Some(carol.id),
            ListFilter {
                favorited: Some(carol.username.clone()),
                ..ListFilter::default()
            },
            request(10, None),
        )
        .await
        .expect("favourites");
    assert_eq!(favourites.total_count, 3);
    assert!(favourites.edges.iter().all(|(_, a)| a.favorited));

    for unknown in [
        ListFilter {
            author: Some("nobody-at-all".into()),
            ..ListFilter::default()
        },
        ListFilter {
            favorited: Some("nobody-at-all".into()),
            ..ListFilter::default()
        },
    ] {
        let page = blog
            .article_page(None, unknown, request(10, None))
            .await
            .expect("a page");
        assert!(page.edges.is_empty() && page.total_count == 0 && !page.has_next_page);
    }

    let (rest_feed, _) = {
        let feed = blog
            .feed(
                carol.id,
                Paging {
                    limit: 100,
                    offset: 0,
                },
            )
            .await
            .expect("REST feed");
        (
            feed.articles
                .iter()
                .map(|a| (a.slug.clone(), a.favorited, a.author.following))
                .collect::<Vec<_>>(),
            feed.articles_count,
        )
    };
    let feed = every_page(2, |page| blog.feed_page(carol.id, page)).await;
    assert_eq!(feed.len(), 3, "five of bob's articles, two a page");
    assert_eq!(flat(&feed), rest_feed);
    assert!(feed.iter().all(|p| p.total_count == 5));
    assert!(flat(&feed).iter().all(|(_, _, following)| *following));
}

#[tokio::test]
async fn bad_sizes_bad_cursors_and_cursors_of_the_other_list_are_422s_on_their_field() {
    for first in [0, -1, MAX_FIRST + 1] {
        let errors = invalid(PageRequest::parse(Some(first), None));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "first");
        assert!(errors[0].1.contains("1 to 100"), "{errors:?}");
    }
    for bad in ["not a cursor", "YTpub3Q", "eDox"] {
        let errors = invalid(PageRequest::parse(None, Some(bad)));
        assert_eq!(
            errors,
            [("after".into(), "is not a valid cursor".into())],
            "{bad}"
        );
    }

    let app = blog_app().await;
    let (blog, users) = accounts(&app, 1).await;
    let article = publish(&blog, users[0].id, "Only", &[]).await;
    let comment_cursor = Cursor::Comment(1).encode();
    let article_cursor = Cursor::Article(article.id).encode();
    let wrong_kind = [(
        "after".to_owned(),
        "is not a cursor of this list".to_owned(),
    )];
    let on_articles = blog
        .article_page(
            None,
            ListFilter::default(),
            request(5, Some(&comment_cursor)),
        )
        .await;
    assert_eq!(invalid(on_articles), wrong_kind);
    let on_feed = blog
        .feed_page(users[0].id, request(5, Some(&comment_cursor)))
        .await;
    assert_eq!(invalid(on_feed), wrong_kind);
    let on_comments = blog
        .comment_pages(None, &[article.id], &request(5, Some(&article_cursor)))
        .await;
    assert_eq!(invalid(on_comments), wrong_kind);
}

#[tokio::test]
async fn comment_pages_of_several_articles_come_at_once_each_after_the_cursor() {
    let app = blog_app().await;
    let (blog, users) = accounts(&app, 3).await;
    let (author, commenter, viewer) = (&users[0], &users[1], &users[2]);
    let a = publish(&blog, author.id, "A", &[]).await;
    let b = publish(&blog, author.id, "B", &[]).await;
    let c = publish(&blog, author.id, "C", &[]).await;
    blog.follow(viewer.id, &commenter.username)
        .await
        .expect("followed");
    // Interleaved, so that one cursor falls between another article's comments.
    let mut ids: HashMap<&str, i64> = HashMap::new();
    for (name, article, who) in [
        ("A1", &a, author),
        ("A2", &a, commenter),
        ("B1", &b, commenter),
        ("A3", &a, author),
        ("B2", &b, author),
        ("A4", &a, commenter),
        ("A5", &a, author),
    ] {
        let comment = blog
            .add_comment(who.id, &article.slug, name.to_owned())
            .await
            .expect("commented");
        assert_eq!(comment.article_id, article.id);
        assert_eq!(comment.author.username, who.username);
        ids.insert(name, comment.id);
    }
    let bodies = |page: &Page<basalt_blog::model::Comment>| -> Vec<String> {
        page.edges.iter().map(|(_, c)| c.body.clone()).collect()
    };
    let missing = Uuid::now_v7();
    let articles = [a.id, b.id, c.id, missing, a.id];

    let pages = blog
        .comment_pages(Some(viewer.id), &articles, &request(2, None))
        .await
        .expect("pages");
    assert_eq!(pages.len(), 4, "one page per distinct article");
    let (on_a, on_b) = (&pages[&a.id], &pages[&b.id]);
    assert_eq!(bodies(on_a), ["A1", "A2"]);
    assert!(on_a.has_next_page && !on_a.has_previous_page);
    assert_eq!(on_a.total_count, 5);
    assert_eq!(bodies(on_b), ["B1", "B2"]);
    assert!(!on_b.has_next_page);
    assert_eq!(on_b.total_count, 2);
    for empty in [&pages[&c.id], &pages[&missing]] {
        assert!(empty.edges.is_empty() && !empty.has_next_page && empty.total_count == 0);
    }
    for (cursor, comment) in on_a.edges.iter().chain(&on_b.edges) {
        assert_eq!(
            Cursor::decode(cursor).expect("decodes"),
            Cursor::Comment(comment.id)
        );
        let by_commenter = comment.author.username == commenter.username;
        assert_eq!(comment.author.following, by_commenter, "{}", comment.body);
    }
    let rest: Vec<i64> = blog
        .list_comments(None, &a.slug)
        .await
        .expect("REST list")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(rest[..2], [ids["A1"], ids["A2"]], "the REST order");

    let after_a2 = blog
        .comment_pages(None, &articles, &request(2, Some(&on_a.edges[1].0)))
        .await
        .expect("pages");
    assert_eq!(bodies(&after_a2[&a.id]), ["A3", "A4"]);
    assert!(after_a2[&a.id].has_next_page && after_a2[&a.id].has_previous_page);
    assert_eq!(
        bodies(&after_a2[&b.id]),
        ["B1", "B2"],
        "both are newer than A2"
    );
    let after_a4 = blog
        .comment_pages(
            None,
            &articles,
            &request(2, Some(&after_a2[&a.id].edges[1].0)),
        )
        .await
        .expect("pages");
    assert_eq!(bodies(&after_a4[&a.id]), ["A5"]);
    assert!(!after_a4[&a.id].has_next_page);
    assert!(after_a4[&b.id].edges.is_empty(), "B's are older than A4");
    assert_eq!(
        after_a4[&b.id].total_count, 2,
        "the total ignores the cursor"
    );

    let none = blog
        .comment_pages(None, &[], &request(2, None))
        .await
        .expect("nothing asked");
    assert!(none.is_empty());
}

#[tokio::test]
async fn bodies_come_rendered_and_sanitised_for_the_articles_that_exist() {
    let app = blog_app().await;
    let (blog, users) = accounts(&app, 1).await;
    let plain = publish(&blog, users[0].id, "Plain", &[]).await;
    let sneaky = blog
        .create_article(
            users[0].id,
            ArticleDraft {
                title: "Sneaky".into(),
                description: "about it".into(),
                body: "**bold** <script>alert(1)</script>".into(),
                tags: None,
            },
        )
        .await
        .expect("published");
    let bodies = blog
        .article_bodies(&[plain.id, sneaky.id, Uuid::now_v7(), plain.id])
        .await
        .expect("bodies");
    assert_eq!(bodies.len(), 2);
    let (markdown, html) = &bodies[&plain.id];
    assert_eq!(markdown, "# Plain\n\nText.");
    assert!(html.contains("<h1>Plain</h1>"), "{html}");
    let (markdown, html) = &bodies[&sneaky.id];
    assert!(markdown.contains("<script>"));
    assert!(
        html.contains("<strong>bold</strong>") && !html.contains("<script"),
        "{html}"
    );
    assert_eq!(
        Some(html),
        sneaky.body_html.as_ref(),
        "the same HTML as REST"
    );
    assert!(blog.article_bodies(&[]).await.expect("none").is_empty());
}

#[tokio::test]
async fn articles_and_comments_by_id_and_deleting_a_comment_by_id_alone() {
    let app = blog_app().await;
    let (blog, users) = accounts(&app, 2).await;
    let (author, other) = (&users[0], &users[1]);
    let article = publish(&blog, author.id, "By id", &["x"]).await;
    let elsewhere = publish(&blog, author.id, "Elsewhere", &[]).await;
    blog.favorite(other.id, &article.slug)
        .await
        .expect("favourited");

    let seen = blog
        .article_by_id(Some(other.id), article.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (seen.id, seen.slug.as_str()),
        (article.id, article.slug.as_str())
    );
    assert!(seen.favorited && seen.favorites_count == 1);
    assert_eq!(seen.body.as_deref(), Some("# By id\n\nText."));
    assert!(seen.body_html.is_some());
    let anonymous = blog
        .article_by_id(None, article.id)
        .await
        .expect("read")
        .expect("exists");
    assert!(!anonymous.favorited);
    assert!(
        blog.article_by_id(None, Uuid::now_v7())
            .await
            .expect("read")
            .is_none()
    );

    let comment = blog
        .add_comment(author.id, &article.slug, "Mine.".into())
        .await
        .expect("commented");
    let read = blog
        .comment_by_id(Some(other.id), comment.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!((read.id, read.article_id), (comment.id, article.id));
    assert_eq!(
        (read.body.as_str(), read.author.username.as_str()),
        ("Mine.", author.username.as_str())
    );
    assert!(
        blog.comment_by_id(None, comment.id + 1000)
            .await
            .expect("read")
            .is_none()
    );

    let id = comment.id.to_string();
    for missing in ["not-a-number", "999999"] {
        let result = blog.delete_comment_by_id(author.id, missing).await;
        assert!(
            matches!(result, Err(BlogError::NotFound("comment"))),
            "{missing}: {result:?}"
        );
    }
    let refused = blog.delete_comment_by_id(other.id, &id).await;
    assert!(matches!(refused, Err(BlogError::Forbidden)), "{refused:?}");
    // The REST route names an article: the comment must be one of its own.
    let wrong_article = blog.delete_comment(author.id, &elsewhere.slug, &id).await;
    assert!(
        matches!(wrong_article, Err(BlogError::NotFound("comment"))),
        "{wrong_article:?}"
    );
    blog.delete_comment_by_id(author.id, &id)
        .await
        .expect("the author deletes it");
    assert!(
        blog.comment_by_id(None, comment.id)
            .await
            .expect("read")
            .is_none()
    );
    let again = blog.delete_comment_by_id(author.id, &id).await;
    assert!(
        matches!(again, Err(BlogError::NotFound("comment"))),
        "{again:?}"
    );

    blog.delete_article(author.id, &article.slug)
        .await
        .expect("deleted");
    assert!(
        blog.article_by_id(None, article.id)
            .await
            .expect("read")
            .is_none()
    );
}
