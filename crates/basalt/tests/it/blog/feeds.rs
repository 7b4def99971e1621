//! Atom and RSS feeds, parsed back with a real feed parser.

use reqwest::StatusCode;

use super::*;

#[tokio::test]
async fn atom_and_rss_feeds_parse_and_filter() {
    let app = blog_app().await;
    let a = sign_up(&app).await;
    let b = sign_up(&app).await;
    a.publish(&app, "Dragons & <Knights>", &["fantasy"]).await;
    b.publish(&app, "Databases", &["db"]).await;

    for (path, content_type) in [
        ("/feeds/articles.atom", "application/atom+xml"),
        ("/feeds/articles.rss", "application/rss+xml"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(content_type)
        );
        let feed =
            feed_rs::parser::parse(r.bytes().await.expect("body").as_ref()).expect("a valid feed");
        assert_eq!(feed.entries.len(), 2, "{path}");
        assert_eq!(
            feed.entries[0].title.as_ref().expect("title").content,
            "Databases",
            "newest first"
        );
        assert_eq!(
            feed.entries[1].title.as_ref().expect("title").content,
            "Dragons & <Knights>"
        );

        let by_tag = feed_rs::parser::parse(
            app.get(&format!("{path}?tag=fantasy"))
                .await
                .bytes()
                .await
                .expect("body")
                .as_ref(),
        )
        .expect("feed");
        assert_eq!(by_tag.entries.len(), 1);
        let by_author = feed_rs::parser::parse(
            app.get(&format!("{path}?author={}", b.username))
                .await
                .bytes()
                .await
                .expect("body")
                .as_ref(),
        )
        .expect("feed");
        assert_eq!(by_author.entries.len(), 1);
        assert_eq!(
            by_author.entries[0].title.as_ref().expect("title").content,
            "Databases"
        );
    }
}
