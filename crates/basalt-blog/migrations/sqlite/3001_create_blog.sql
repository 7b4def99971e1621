-- The blog. Authors, followers and favouriting users are identity accounts,
-- referenced by id only: modules never join each other's tables.
-- Articles are listed newest first by id: UUIDv7 ids are time-ordered and
-- compare the same way in both databases.
CREATE TABLE blog_articles (
    id BLOB PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The sorted tag list as a JSON array (tags never change after creation);
    -- blog_article_tags holds the same tags for filtering.
    tag_list TEXT NOT NULL,
    author_id BLOB NOT NULL,
    favorites_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT blog_articles_slug_key UNIQUE (slug)
);
CREATE INDEX blog_articles_author_idx ON blog_articles (author_id, id);

CREATE TABLE blog_article_tags (
    article_id BLOB NOT NULL REFERENCES blog_articles (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (article_id, tag)
);
CREATE INDEX blog_article_tags_tag_idx ON blog_article_tags (tag, article_id);

CREATE TABLE blog_favorites (
    user_id BLOB NOT NULL,
    article_id BLOB NOT NULL REFERENCES blog_articles (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, article_id)
);
CREATE INDEX blog_favorites_article_idx ON blog_favorites (article_id);

CREATE TABLE blog_follows (
    follower_id BLOB NOT NULL,
    followee_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX blog_follows_followee_idx ON blog_follows (followee_id);

CREATE TABLE blog_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id BLOB NOT NULL REFERENCES blog_articles (id) ON DELETE CASCADE,
    author_id BLOB NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX blog_comments_article_idx ON blog_comments (article_id, id);
