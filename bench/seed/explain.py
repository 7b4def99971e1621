#!/usr/bin/env python3
"""Plans and timings of the blog's real queries against the seeded database.

    python3 bench/seed/explain.py --sqlite FILE --info SEED.json > OUT.txt
    python3 bench/seed/explain.py --postgres URL --psql PATH --info SEED.json > OUT.txt

The SQL below is copied verbatim from crates/basalt-blog/src/store.rs and
crates/basalt-identity/src/store/users.rs (as their macros expand it, as of
2026-11-24 04:50 UTC: one statement per single filter, the generic
`($n IS NULL OR ...)` form for combined filters); keep it in step when they
change. Parameters are the benchmark's own: a reader
account, the most popular tag, the most prolific author, a sampled article.

SQLite: `EXPLAIN QUERY PLAN` and the median wall time of running the query
to completion (Python's sqlite3; run it with LD_LIBRARY_PATH pointing at a
libsqlite3 built from the same amalgamation as the server's, as
bench/blog.sh does, so that the planner is the server's).

PostgreSQL: each query is PREPAREd with the parameter types sqlx sends and
run through `EXPLAIN (ANALYZE, BUFFERS)` six times with the server's default
`plan_cache_mode` (the sixth run shows the plan a long-lived pooled
connection settles on, generic or custom), then once with
`force_generic_plan` and once with `force_custom_plan`; timings are
PostgreSQL's own "Execution Time", without the network.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import uuid

ARTICLE_COLUMNS = (
    "a.id, a.slug, a.title, a.description, {body}, a.tag_list, a.author_id, "
    "CAST(a.favorites_count AS BIGINT) AS favorites_count, a.created_at, a.updated_at, "
    "EXISTS (SELECT 1 FROM blog_favorites f WHERE f.article_id = a.id AND f.user_id = $1) AS favorited, "
    "EXISTS (SELECT 1 FROM blog_follows w WHERE w.followee_id = a.author_id AND w.follower_id = $1) AS following"
)
LIST_WHERE = (
    "WHERE ($2 IS NULL OR a.author_id = $2) "
    "AND ($3 IS NULL OR EXISTS (SELECT 1 FROM blog_article_tags t WHERE t.article_id = a.id AND t.tag = $3)) "
    "AND ($4 IS NULL OR EXISTS (SELECT 1 FROM blog_favorites fb WHERE fb.article_id = a.id AND fb.user_id = $4)) "
)
NO_BODY = ARTICLE_COLUMNS.format(body="'' AS body")
# Combined filters (and, before the single-filter statements, every list).
LIST = "SELECT " + NO_BODY + " FROM blog_articles a " + LIST_WHERE + "ORDER BY a.id DESC LIMIT $5 OFFSET $6"
COUNT = "SELECT CAST(count(*) AS BIGINT) FROM blog_articles a " + LIST_WHERE
# One statement per single filter: $1 viewer, $2 UUID key, $3 text key, $4 limit, $5 offset.
LIST_NONE = "SELECT " + NO_BODY + " FROM blog_articles a WHERE $2 IS NULL AND $3 IS NULL ORDER BY a.id DESC LIMIT $4 OFFSET $5"
LIST_AUTHOR = "SELECT " + NO_BODY + " FROM blog_articles a WHERE a.author_id = $2 AND $3 IS NULL " \
    "ORDER BY a.author_id DESC, a.id DESC LIMIT $4 OFFSET $5"
LIST_TAG = "SELECT " + NO_BODY + " FROM blog_article_tags t JOIN blog_articles a ON a.id = t.article_id " \
    "WHERE t.tag = $3 AND $2 IS NULL ORDER BY t.tag DESC, t.article_id DESC LIMIT $4 OFFSET $5"
# Counts of a single filter: $1 UUID key, $2 text key.
COUNT_NONE = "SELECT CAST(count(*) AS BIGINT) FROM blog_articles WHERE $1 IS NULL AND $2 IS NULL"
COUNT_AUTHOR = "SELECT CAST(count(*) AS BIGINT) FROM blog_articles WHERE author_id = $1 AND $2 IS NULL"
COUNT_TAG = "SELECT CAST(count(*) AS BIGINT) FROM blog_article_tags WHERE tag = $2 AND $1 IS NULL"
FEED = "SELECT " + ARTICLE_COLUMNS.format(body="'' AS body") + \
    " FROM blog_articles a WHERE a.author_id IN (SELECT followee_id FROM blog_follows WHERE follower_id = $1) " \
    "ORDER BY a.id DESC LIMIT $2 OFFSET $3"
FEED_COUNT = "SELECT count(*) FROM blog_articles a WHERE a.author_id IN " \
    "(SELECT followee_id FROM blog_follows WHERE follower_id = $1)"
BY_SLUG = "SELECT " + ARTICLE_COLUMNS.format(body="a.body") + " FROM blog_articles a WHERE a.slug = $2"
SLUG_TAKEN = "SELECT count(*) FROM blog_articles WHERE slug = $1"
TAGS = "SELECT DISTINCT tag FROM blog_article_tags ORDER BY tag LIMIT 1000"
COMMENTS = (
    "SELECT c.id, c.author_id, c.body, c.created_at, c.updated_at, "
    "EXISTS (SELECT 1 FROM blog_follows w WHERE w.followee_id = c.author_id AND w.follower_id = $1) AS following "
    "FROM blog_comments c WHERE c.article_id = $2 ORDER BY c.id"
)
SELECT_USER = "SELECT id, email, username, password_hash, role, bio, image, email_verified_at, locked_until, " \
    "created_at FROM identity_users WHERE "
USER_BY_ID = SELECT_USER + "id = $1"
USERS_BY_IDS = SELECT_USER + "id = ANY($1)"
USER_BY_USERNAME = SELECT_USER + "username_normalized = $1"

U, T, I = "uuid", "text", "bigint"


def cases(p):
    """(label, sql, [(type, value)], used by) for every query a scenario runs."""
    sp = lambda viewer, uuid_key, text_key, offset: [(U, viewer), (U, uuid_key), (T, text_key), (I, 20), (I, offset)]
    gp = lambda viewer, author, tag, offset: [(U, viewer), (U, author), (T, tag), (U, None), (I, 20), (I, offset)]
    cp = lambda uuid_key, text_key: [(U, uuid_key), (T, text_key)]
    gcp = lambda author, tag: [(U, None), (U, author), (T, tag), (U, None)]
    r, a, tag, art = p["reader"], p["author"], p["tag"], p["article"]
    return [
        ("list rows, no filter, anonymous", LIST_NONE, sp(None, None, None, 0), "list (cache miss)"),
        ("list rows, no filter, signed in", LIST_NONE, sp(r, None, None, 0), "list, authenticated"),
        ("list count, no filter", COUNT_NONE, cp(None, None), "list (count cache miss)"),
        ("list rows, tag=%s, signed in" % tag, LIST_TAG, sp(r, None, tag, 0), "list ?tag"),
        ("list count, tag=%s" % tag, COUNT_TAG, cp(None, tag), "list ?tag (count cache miss)"),
        ("list rows, author=%s, signed in" % p["author_name"], LIST_AUTHOR, sp(r, a, None, 0), "list ?author"),
        ("list count, author=%s" % p["author_name"], COUNT_AUTHOR, cp(a, None), "list ?author (count cache miss)"),
        ("list rows, offset=5000, signed in", LIST_NONE, sp(r, None, None, 5000), "list ?offset=5000"),
        ("list rows, rare tag=%s (%d articles), signed in" % (p["rare_tag"], p["rare_tag_n"]), LIST_TAG,
         sp(r, None, p["rare_tag"], 0), "not measured: a rare tag"),
        ("list rows, author=%s (%d article(s)), signed in" % (p["rare_author_name"], p["rare_author_n"]), LIST_AUTHOR,
         sp(r, p["rare_author"], None, 0), "not measured: a rare author"),
        ("combined-filter form: rows, tag=%s" % tag, LIST, gp(r, None, tag, 0),
         "combined filters only (before: every list)"),
        ("combined-filter form: count, tag=%s" % tag, COUNT, gcp(None, tag),
         "combined filters only (before: every list)"),
        ("combined-filter form: rows, rare author %s" % p["rare_author_name"], LIST, gp(r, p["rare_author"], None, 0),
         "combined filters only (before: every list)"),
        ("feed rows (reader follows 50 authors)", FEED, [(U, r), (I, 20), (I, 0)], "feed"),
        ("feed count", FEED_COUNT, [(U, r)], "feed"),
        ("article by slug, signed in", BY_SLUG, [(U, r), (T, p["slug"])], "one article; comments (to find the id)"),
        ("comments of an article", COMMENTS, [(U, None), (U, art)], "comments"),
        ("account by id (SQLite: once per distinct author on a page)", USER_BY_ID, [(U, r)], "every page of articles or comments"),
        ("accounts by ids (PostgreSQL: one query per page)", USERS_BY_IDS, [("uuid[]", [r, a])], "every page of articles or comments"),
        ("account by username", USER_BY_USERNAME, [(T, p["author_name"].lower())], "list ?author (cache miss or signed in)"),
        ("tags", TAGS, [], "tags (cache miss)"),
        ("slug taken?", SLUG_TAKEN, [(T, p["slug"])], "create"),
    ]


# ------------------------------------------------------------------ SQLite ----
def run_sqlite(path, info):
    import sqlite3

    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    one = lambda sql, *args: db.execute(sql, args).fetchone()
    reader = one("SELECT id FROM identity_users WHERE email_normalized = ?", info["readers"][0])[0]
    author = one("SELECT id FROM identity_users WHERE username_normalized = ?", info["prolific_author"].lower())[0]
    rare = one("SELECT id FROM identity_users WHERE username_normalized = ?", info["rare_author"].lower())[0]
    slug = info["sample_slugs"][0]
    article = one("SELECT id FROM blog_articles WHERE slug = ?", slug)[0]
    p = {"reader": reader, "author": author, "author_name": info["prolific_author"], "tag": info["popular_tag"],
         "slug": slug, "article": article, "rare_tag": info["rare_tag"], "rare_tag_n": info["rare_tag_articles"],
         "rare_author": rare, "rare_author_name": info["rare_author"], "rare_author_n": info["rare_author_articles"]}
    print("SQLite %s, %s" % (sqlite3.sqlite_version, path))
    stats = one("SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")[0]
    print("statistics tables (ANALYZE): %d; page size %d, pages %d, cache_size %d, mmap_size %d" % (
        stats, one("PRAGMA page_size")[0], one("PRAGMA page_count")[0], one("PRAGMA cache_size")[0],
        one("PRAGMA mmap_size")[0]))
    print()
    for label, sql, params, used_by in cases(p):
        if "ANY(" in sql:
            continue
        args = {str(i + 1): v for i, (_, v) in enumerate(params)}
        plan = db.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
        times = []
        rows = 0
        deadline = time.perf_counter() + 2.0
        while len(times) < 30 and (len(times) < 3 or time.perf_counter() < deadline):
            t = time.perf_counter()
            rows = len(db.execute(sql, args).fetchall())
            times.append((time.perf_counter() - t) * 1000)
        print("== %s  [%s]" % (label, used_by))
        print("   median %.3f ms (min %.3f, %d runs), %d row(s)" % (statistics.median(times), min(times), len(times), rows))
        for row in plan:
            depth = 0
            parent = row[1]
            ids = {r[0]: r[1] for r in plan}
            while parent:
                depth += 1
                parent = ids.get(parent, 0)
            print("   " + "  " * depth + row[3])
        print()


# -------------------------------------------------------------- PostgreSQL ----
def literal(typ, value):
    if value is None:
        return "NULL::%s" % typ
    if isinstance(value, list):
        return "ARRAY[%s]::uuid[]" % ", ".join("'%s'" % v for v in value)
    if typ == "bigint":
        return str(value)
    return "'%s'::%s" % (str(value).replace("'", "''"), typ)


def run_postgres(url, psql, info):
    def q(sql, input_=None):
        args = [psql, url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        if input_ is None:
            args += ["-c", sql]
        else:
            args += ["-f", "-"]
        return subprocess.run(args, input=input_, check=True, capture_output=True, text=True).stdout.strip()

    reader = q("SELECT id FROM identity_users WHERE email_normalized = '%s'" % info["readers"][0])
    author = q("SELECT id FROM identity_users WHERE username_normalized = '%s'" % info["prolific_author"].lower())
    rare = q("SELECT id FROM identity_users WHERE username_normalized = '%s'" % info["rare_author"].lower())
    slug = info["sample_slugs"][0]
    article = q("SELECT id FROM blog_articles WHERE slug = '%s'" % slug)
    p = {"reader": reader, "author": author, "author_name": info["prolific_author"], "tag": info["popular_tag"],
         "slug": slug, "article": article, "rare_tag": info["rare_tag"], "rare_tag_n": info["rare_tag_articles"],
         "rare_author": rare, "rare_author_name": info["rare_author"], "rare_author_n": info["rare_author_articles"]}
    print(q("SELECT version()"))
    print(q("SELECT 'shared_buffers ' || current_setting('shared_buffers') || ', work_mem ' || "
            "current_setting('work_mem') || ', blog_articles ' || pg_size_pretty(pg_total_relation_size('blog_articles'))"))
    print()
    for label, sql, params, used_by in cases(p):
        if "ANY(" not in sql and "id = $1" in sql and "identity_users" in sql:
            continue
        types = ", ".join(t for t, _ in params)
        values = ", ".join(literal(t, v) for t, v in params)
        execute = "EXECUTE q(%s)" % values if params else "EXECUTE q"
        prepare = "PREPARE q(%s) AS %s;" % (types, sql) if params else "PREPARE q AS %s;" % sql
        explain = "EXPLAIN (ANALYZE, BUFFERS) " + execute + ";"
        script = "\n".join([prepare] + [explain] * 6 + [
            "SET plan_cache_mode = force_generic_plan;", explain,
            "SET plan_cache_mode = force_custom_plan;", explain, ""])
        out = q(None, input_=script)
        # Split on "Execution Time" lines: one block per EXPLAIN.
        blocks = []
        current = []
        for line in out.splitlines():
            current.append(line)
            if line.strip().startswith("Execution Time"):
                blocks.append(current)
                current = []
        exec_ms = lambda b: float(re.search(r"Execution Time: ([\d.]+)", b[-1]).group(1))
        auto = blocks[:6]
        print("== %s  [%s]" % (label, used_by))
        print("   default plan_cache_mode, runs 1-6: %s ms" % " / ".join("%.3f" % exec_ms(b) for b in auto))
        print("   forced generic plan: %.3f ms; forced custom plan: %.3f ms" % (exec_ms(blocks[6]), exec_ms(blocks[7])))
        print("   -- plan of run 6 (default mode):")
        for line in auto[5]:
            print("   " + line)
        if [l.split("(")[0] for l in blocks[6]] != [l.split("(")[0] for l in auto[5]]:
            print("   -- forced generic plan:")
            for line in blocks[6]:
                print("   " + line)
        if [l.split("(")[0] for l in blocks[7]] != [l.split("(")[0] for l in auto[5]]:
            print("   -- forced custom plan:")
            for line in blocks[7]:
                print("   " + line)
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--sqlite", metavar="FILE")
    g.add_argument("--postgres", metavar="URL")
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--info", required=True)
    a = ap.parse_args()
    with open(a.info, encoding="utf-8") as f:
        info = json.load(f)
    if a.sqlite:
        run_sqlite(a.sqlite, info)
    else:
        run_postgres(a.postgres, a.psql, info)


if __name__ == "__main__":
    main()
