//! The blog's rules at the service level, with no HTTP in between: what a
//! REST handler and a GraphQL resolver both get from [`Blog`].

use basalt_blog::error::BlogError;
use basalt_blog::service::Blog;
use basalt_blog::service::articles::{ArticleChanges, ArticleDraft};
use basalt_blog::slug::slugify;
use uuid::Uuid;

use super::{blog_app, sign_up};
use crate::identity::user_id;

fn draft(title: &str) -> ArticleDraft {
    ArticleDraft {
        title: title.to_owned(),
        description: "about it".to_owned(),
        body: "Text.".to_owned(),
        tags: None,
    }
}

fn retitle(title: &str) -> ArticleChanges {
    ArticleChanges {
        title: Some(title.to_owned()),
        ..ArticleChanges::default()
    }
}

async fn two_users(app: &basalt_testkit::TestApp) -> (Blog, Uuid, Uuid) {
    let blog = app
        .platform
        .services
        .get::<Blog>()
        .expect("the blog offers its service");
    let author = user_id(app, &sign_up(app).await.email).await;
    let other = user_id(app, &sign_up(app).await.email).await;
    (blog, author, other)
}

#[tokio::test]
async fn only_the_author_changes_an_article_or_a_comment_and_a_missing_one_is_404_first() {
    let app = blog_app().await;
    let (blog, author, other) = two_users(&app).await;
    let slug = blog
        .create_article(author, draft("Owned"))
        .await
        .expect("created")
        .slug;

    let refused = blog.update_article(other, &slug, retitle("Mine now")).await;
    assert!(matches!(refused, Err(BlogError::Forbidden)), "{refused:?}");
    let refused = blog.delete_article(other, &slug).await;
    assert!(matches!(refused, Err(BlogError::Forbidden)), "{refused:?}");
    let missing = blog.delete_article(other, "no-such-article").await;
    assert!(
        matches!(missing, Err(BlogError::NotFound("article"))),
        "{missing:?}"
    );

    let comment = blog
        .add_comment(author, &slug, "First.".to_owned())
        .await
        .expect("commented");
    let id = comment.id.to_string();
    let refused = blog.delete_comment(other, &slug, &id).await;
    assert!(matches!(refused, Err(BlogError::Forbidden)), "{refused:?}");
    let missing = blog.delete_comment(author, &slug, "not-a-number").await;
    assert!(
        matches!(missing, Err(BlogError::NotFound("comment"))),
        "{missing:?}"
    );
    blog.delete_comment(author, &slug, &id)
        .await
        .expect("the author deletes their comment");

    let updated = blog
        .update_article(author, &slug, retitle("Still mine"))
        .await
        .expect("the author edits");
    assert_eq!(updated.title, "Still mine");
    assert_eq!(updated.slug, slug, "an edit keeps the slug");
    blog.delete_article(author, &slug)
        .await
        .expect("the author deletes");
}

#[tokio::test]
async fn writers_racing_for_one_title_each_get_a_slug_of_their_own() {
    let app = blog_app().await;
    let (blog, author, other) = two_users(&app).await;
    let title = "A Title Everyone Wants";
    let writes = (0..8).map(|i| {
        let blog = blog.clone();
        let who = if i % 2 == 0 { author } else { other };
        tokio::spawn(async move { blog.create_article(who, draft(title)).await })
    });
    let mut slugs = Vec::new();
    for write in futures_util::future::join_all(writes).await {
        let article = write.expect("task").expect("every racer publishes");
        slugs.push(article.slug);
    }
    let base = slugify(title);
    assert_eq!(
        slugs.iter().filter(|s| **s == base).count(),
        1,
        "one takes the title's slug: {slugs:?}"
    );
    assert!(slugs.iter().all(|s| s.starts_with(&base)), "{slugs:?}");
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 8, "no two share a slug");

    // Regenerating a slug onto a taken one takes a suffixed one too.
    let mine = blog
        .create_article(author, draft("Something else"))
        .await
        .expect("created");
    let regenerated = blog
        .update_article(
            author,
            &mine.slug,
            ArticleChanges {
                regenerate_slug: true,
                ..retitle(title)
            },
        )
        .await
        .expect("updated");
    assert!(regenerated.slug.starts_with(&format!("{base}-")));
}

#[tokio::test]
async fn the_service_validates_every_field_before_writing() {
    let app = blog_app().await;
    let (blog, author, _) = two_users(&app).await;
    let bad = ArticleDraft {
        title: " ".to_owned(),
        description: "two\nlines".to_owned(),
        body: "Text.".to_owned(),
        tags: Some((0..21).map(|i| format!("tag{i}")).collect()),
    };
    match blog.create_article(author, bad).await {
        Err(BlogError::Invalid(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(fields, ["title", "description", "tagList"]);
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}
