#!/usr/bin/env python3
"""Seeds Basalt's blog tables with a realistic, deterministic data set.

    python3 bench/seed/seed.py --sqlite DATA_DIR/basalt.db --hash-user NAME --info OUT.json
    python3 bench/seed/seed.py --postgres URL --psql PATH --work DIR --hash-user NAME --info OUT.json

The database must be migrated (`basalt migrate`) and must hold one account
created by Basalt itself (`basalt user create`), named by --hash-user: its
argon2id PHC hash is copied to every seeded account, so that each of them
signs in with that account's password.

Rows are written directly, in the exact form the server's own store code
writes them (crates/basalt-identity/src/store/users.rs,
crates/basalt-blog/src/store.rs), so the server cannot tell them apart:

- ids are UUIDv7 whose millisecond timestamp is the row's created_at, as
  `Uuid::now_v7()` makes them (16-byte BLOBs on SQLite, `uuid` on PostgreSQL);
- timestamps on SQLite are TEXT as sqlx writes a `DateTime<Utc>`
  (`to_rfc3339_opts(SecondsFormat::AutoSi, false)`, e.g.
  `2024-03-01T10:00:00.123456789+00:00`); on PostgreSQL `timestamptz` with
  microseconds (sqlx truncates to them);
- email_normalized / username_normalized are `trim().to_lowercase()`;
- slugs are `slugify(title)` (crates/basalt-blog/src/slug.rs), and a taken
  slug gets `-` and six characters of [a-z0-9], like `with_suffix`;
- tag_list is the sorted tags as compact JSON (serde_json), and
  blog_article_tags holds the same tags; favorites_count matches
  blog_favorites; comment ids follow their creation time.

Data set (defaults): 10,000 users; 100,000 articles over three years, by a
skewed set of authors (a few hundred prolific ones, a long tail with one or
two); Markdown bodies of 0.5-5 KB (log-uniform); 0-5 tags each from a
vocabulary of 500, Zipf-distributed; 200,000 comments and 50,000 favourites
on articles of heavy-tailed popularity; 100,000 follows. Among the users are
the benchmark's readers (bench-reader-NN, each following exactly 50 authors,
for the feed and the authenticated lists) and writers (bench-writer-NN, who
write no seeded article and whom nobody follows, for the create scenario).
Everything comes from one fixed random seed: the same data on every run and
on both backends. The seeded timeline ends on 2025-06-01, before anything
the server writes during the benchmark.
"""

import argparse
import bisect
import csv
import datetime
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid

SEED = 20261124
END = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
USERS_FROM = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
ARTICLES_FROM = datetime.datetime(2022, 6, 1, tzinfo=datetime.timezone.utc)
NS = 1_000_000_000
DAY_NS = 86_400 * NS
READERS_FOLLOW = 50

FIRST = """james mary robert patricia john jennifer michael linda david elizabeth william barbara
richard susan joseph jessica thomas sarah charles karen chris lisa daniel nancy matthew betty
anthony sandra mark margaret donald ashley steven kimberly paul emily andrew donna joshua michelle
kenneth carol kevin amanda brian melissa george deborah timothy stephanie ronald rebecca jason
sharon edward laura jeffrey cynthia ryan dorothy jacob amy gary kathleen nicholas angela eric
shirley jonathan emma stephen brenda larry pamela justin nicole scott anna brandon samantha benjamin
katherine samuel christine gregory debra alexander rachel frank carolyn patrick janet raymond maria
jack olivia dennis heather jerry helen tyler catherine aaron diane jose julie adam victoria nathan
joyce henry lauren zachary kelly douglas christina peter ruth kyle joan noah virginia ethan judith
jeremy evelyn walter hannah christian andrea keith megan roger cheryl terry jacqueline austin
martha sean madison gerald teresa carl kathryn harold sara dylan janice arthur julia lawrence
kayla jordan alexis jesse abigail bryan frances billy judy bruce grace gabriel amber joe alice
logan denise albert doris willie marilyn alan beverly eugene sophia russell danielle vincent
marie wayne diana roy brittany ralph natalie bobby isabella johnny charlotte louis rose philip
kenji yuki sofia mateo lucia hugo ines lars ingrid pieter anouk marek zofia tomasz olga ivan
elena dmitri aiko hiroshi mei wei li chen ravi priya arjun ananya omar fatima youssef amira""".split()
LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez
lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris
sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill
flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans
turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook rogers gutierrez
ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward richardson watson brooks
chavez wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long
ross foster jimenez powell jenkins perry russell sullivan bell coleman butler henderson barnes
fisher vasquez simmons romero jordan patterson alexander hamilton graham reynolds griffin wallace
moreno west cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro
marshall owens harrison fernandez mcdonald woods washington kennedy wells vargas henry chen freeman
webb tucker guzman burns crawford olson simpson porter hunter gordon mendez silva shaw snyder mason
dixon munoz hunt hicks holmes palmer wagner black robertson boyd rose stone salazar fox warren mills
meyer rice schmidt garza daniels ferguson nichols stephens soto weaver ryan gardner payne grant
dunn kelley spencer hawkins arnold pierce hansen peters santos hart bradley knight elliott
muller schneider fischer weber becker hoffmann schulz koch richter klein wolf dubois moreau laurent
rossi russo ferrari esposito bianchi romano colombo tanaka suzuki watanabe yamamoto nakamura
kowalski nowak wisniewski novak svoboda jensen nielsen hansen larsen berg lindqvist virtanen""".split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "post.example.org"]

WORDS = """the of and to in is that it for on with as was be by this are or from at an
not have but all they which one can their has more will if about there when so what out up into
than them some could these other its then would like time only new just first also over how
any most after should because where through each our those while well very those before must
system data code function value server request response client library module process thread
memory cache index query table database schema migration build test release version feature bug
error message type trait struct interface pattern design model service network latency throughput
performance benchmark profile deploy container cluster node queue event stream pipeline config
option parameter argument result state store session token user account article comment tag feed
page list item field column row key lock transaction commit rollback backup replica shard partition
simple fast small large better worse clear hard easy safe secure stable modern async concurrent
parallel blocking lazy eager strict loose explicit implicit generic concrete static dynamic
measure read write run start stop open close send receive parse render compile link ship learn
show explain compare choose keep drop split merge refactor rewrite debug trace log monitor scale
developer team project product user customer reader writer maintainer contributor reviewer
problem solution approach idea tradeoff detail example case reason goal limit cost benefit risk
we you i he she people everyone nobody something nothing everything often rarely always never
usually sometimes still already yet again almost quite rather really actually probably maybe
good great little big long short high low early late next last same different important possible
understand remember forget decide notice expect assume prove check verify handle avoid prefer need
want try use make take give find know think see look say tell ask work call feel become leave put
mean seem help talk turn move play live believe hold bring happen provide sit stand lose pay meet
include continue set change lead watch follow create speak allow add spend grow offer remain
consider appear buy wait serve die send build stay fall cut reach kill raise pass sell require""".split()

TECH = """Rust Go Python TypeScript JavaScript Kotlin Java Swift Elixir Haskell Zig C++ SQLite
PostgreSQL Redis Kafka Kubernetes Docker Linux WebAssembly GraphQL gRPC Tokio React Vue Svelte
Nginx Terraform Prometheus OpenTelemetry Axum Django Rails Spring Node.js Deno Bun""".split()

TAG_BASE = """javascript programming webdev python rust tutorial beginners react go devops
productivity career opensource typescript css html node database linux docker kubernetes aws cloud
security testing architecture performance sql postgres sqlite api backend frontend design ux
machinelearning ai datascience java kotlin swift ios android mobile gamedev algorithms
datastructures computerscience git github vscode vim terminal bash shell automation ci cd
microservices serverless graphql rest grpc websockets http networking dns tls cryptography privacy
webassembly wasm embedded iot hardware raspberrypi arduino electronics robotics blockchain web3
startup business marketing writing books learning motivation health remote freelancing interview
hiring management leadership agile scrum documentation refactoring cleancode functional oop
concurrency async parallelism memory compilers interpreters languages haskell elixir erlang
scala clojure ocaml zig cpp c csharp dotnet php laravel ruby rails django flask fastapi spring
angular vue svelte nextjs nuxt tailwind sass accessibility a11y i18n seo analytics observability
logging monitoring tracing sre reliability incident caching redis kafka rabbitmq messaging
streaming etl dataengineering bigdata spark hadoop pandas numpy jupyter statistics math physics
science research education opensource-maintenance community events conferences podcast video
showdev discuss news watercooler help explainlikeimfive todayilearned challenge hacktoberfest
beginner-friendly tips tools linux-kernel operating-systems distributed-systems consensus raft
databases-internals storage filesystems benchmarks profiling optimization rustlang golang nodejs
deno bun npm yarn pnpm webpack vite esbuild babel eslint prettier jest vitest cypress playwright
selenium qa tdd bdd ddd eventsourcing cqrs hexagonal cleanarchitecture monolith migration legacy
""".split()


def slugify(title):
    """crates/basalt-blog/src/slug.rs `slugify`, for ASCII titles."""
    out = []
    n = 0
    dash = False
    for c in title.lower():
        if c.isalnum():
            if dash and n:
                out.append("-")
                n += 1
            dash = False
            out.append(c)
            n += 1
        else:
            dash = True
        if n >= 80:
            break
    return "".join(out) if out else "article"


SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def ts_sqlite(ns):
    """sqlx-sqlite's encoding of a DateTime<Utc>: RFC 3339, `SecondsFormat::AutoSi`, `+00:00`."""
    secs, nanos = divmod(ns, NS)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        frac = ""
    elif nanos % 1_000_000 == 0:
        frac = ".%03d" % (nanos // 1_000_000)
    elif nanos % 1_000 == 0:
        frac = ".%06d" % (nanos // 1_000)
    else:
        frac = ".%09d" % nanos
    return base + frac + "+00:00"


def ts_pg(ns):
    """A timestamptz literal with microseconds (sqlx truncates to them)."""
    secs, nanos = divmod(ns, NS)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return "%s.%06d+00" % (base, nanos // 1000)


def to_ns(dt):
    return int(dt.timestamp()) * NS


def uuid7(ns, rng):
    """A UUIDv7 (RFC 9562) whose timestamp is `ns` truncated to milliseconds."""
    ms = ns // 1_000_000
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return value.to_bytes(16, "big")


def zipf_cum(n, s, offset=1.0):
    cum = []
    total = 0.0
    for r in range(n):
        total += 1.0 / (r + offset) ** s
        cum.append(total)
    return cum


def pick(rng, cum):
    return bisect.bisect_left(cum, rng.random() * cum[-1])


class Generator:
    def __init__(self, args):
        self.rng = random.Random(SEED)
        self.args = args

    # ------------------------------------------------------------ text ----
    def sentence(self, lo=6, hi=18, markup=True):
        rng = self.rng
        words = rng.choices(WORDS, k=rng.randint(lo, hi))
        if rng.random() < 0.35:
            words[rng.randrange(len(words))] = rng.choice(TECH)
        if markup and rng.random() < 0.25:
            i = rng.randrange(len(words))
            style = rng.random()
            if style < 0.4:
                words[i] = "`%s()`" % words[i].lower().replace(".", "_").replace("+", "p")
            elif style < 0.7:
                words[i] = "**%s**" % words[i]
            elif style < 0.85:
                words[i] = "*%s*" % words[i]
            else:
                words[i] = "[%s](https://example.com/%s/%d)" % (words[i], rng.choice(WORDS), rng.randrange(1000))
        s = " ".join(words)
        return s[0].upper() + s[1:] + rng.choice(".....?!")

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))

    def code_block(self):
        rng = self.rng
        lang = rng.choice(["rust", "js", "python", "sql", "bash", "go", "ts", ""])
        lines = []
        for _ in range(rng.randint(3, 14)):
            indent = "    " * rng.randint(0, 2)
            a, b, c = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
            lines.append(indent + rng.choice([
                "let %s = %s(%s);" % (a, b, c),
                "if %s > %d { return %s; }" % (a, rng.randrange(100), b),
                "for %s in %s.iter() {" % (a, b),
                "}",
                "// %s %s %s" % (a, b, c),
                "%s.%s(\"%s\")" % (a, b, c),
                "SELECT %s FROM %s WHERE %s = $1;" % (a, b, c),
                "const %s = await %s.%s();" % (a, b, c),
            ]))
        return "```%s\n%s\n```" % (lang, "\n".join(lines))

    def bullet_list(self):
        rng = self.rng
        marker = rng.choice(["-", "*", "1."])
        return "\n".join("%s %s" % (marker, self.sentence(3, 10)) for _ in range(rng.randint(3, 7)))

    def heading(self):
        words = self.rng.choices(WORDS, k=self.rng.randint(2, 6))
        return "#" * self.rng.choice([2, 2, 2, 3]) + " " + " ".join(words).capitalize()

    def build_pools(self):
        t = time.time()
        self.paragraphs = [self.paragraph() for _ in range(6000)]
        self.codes = [self.code_block() for _ in range(600)]
        self.lists = [self.bullet_list() for _ in range(1200)]
        self.quotes = ["> " + self.sentence() for _ in range(600)]
        self.headings = [self.heading() for _ in range(2000)]
        self.comment_sentences = [self.sentence(3, 16) for _ in range(8000)]
        self.log("text pools built in %.1f s" % (time.time() - t))

    def body(self):
        """Markdown of 500-5000 bytes, log-uniform."""
        rng = self.rng
        target = int(math.exp(rng.uniform(math.log(500), math.log(5000))))
        parts = [rng.choice(self.paragraphs)]
        size = len(parts[0])
        while size < target:
            r = rng.random()
            if r < 0.15:
                part = rng.choice(self.headings)
            elif r < 0.25:
                part = rng.choice(self.codes)
            elif r < 0.35:
                part = rng.choice(self.lists)
            elif r < 0.40:
                part = rng.choice(self.quotes)
            else:
                part = rng.choice(self.paragraphs)
            parts.append(part)
            size += len(part) + 2
        text = "\n\n".join(parts)
        if len(text) > target + 200:
            # Cut at a paragraph boundary near the target, keeping fences closed.
            cut = text.rfind("\n\n", 0, target + 200)
            if cut >= max(500, target - 300) and text[:cut].count("```") % 2 == 0:
                text = text[:cut]
        return text

    def title(self):
        rng = self.rng
        w = lambda: rng.choice(WORDS)
        tech = rng.choice(TECH)
        template = rng.randrange(10)
        if template == 0:
            t = "How to %s %s %s with %s" % (w(), w(), w(), tech)
        elif template == 1:
            t = "Why %s %s %s" % (tech, w(), w())
        elif template == 2:
            t = "%d lessons from %s %s in %s" % (rng.randint(3, 15), w(), w(), tech)
        elif template == 3:
            t = "%s: %s %s %s %s" % (tech, w(), w(), w(), w())
        elif template == 4:
            t = "The %s %s of %s %s" % (w(), w(), w(), tech)
        elif template == 5:
            t = "Understanding %s %s in %s" % (w(), w(), tech)
        elif template == 6:
            t = "%s vs %s: %s %s" % (tech, rng.choice(TECH), w(), w())
        elif template == 7:
            t = "A %s guide to %s %s" % (w(), w(), tech)
        elif template == 8:
            t = "What I %s about %s %s after %d years" % (w(), tech, w(), rng.randint(1, 12))
        else:
            t = "%s %s, %s %s and %s" % (w(), w(), w(), w(), tech)
        return t[0].upper() + t[1:]

    # ------------------------------------------------------------ data ----
    def log(self, msg):
        print("seed: " + msg, file=sys.stderr, flush=True)

    def generate(self):
        a = self.args
        rng = self.rng
        self.build_pools()
        t0 = time.time()

        # Users, oldest first (ids are time-ordered like the server's).
        n_users = a.users
        specials = ["bench-reader-%02d" % (i + 1) for i in range(a.readers)] + [
            "bench-writer-%02d" % (i + 1) for i in range(a.writers)
        ]
        n_regular = n_users - len(specials)
        names = set()
        usernames = []
        while len(usernames) < n_regular:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            style = rng.randrange(6)
            if style == 0:
                name = first + last
            elif style == 1:
                name = "%s.%s" % (first, last)
            elif style == 2:
                name = "%s_%s%d" % (first, last, rng.randrange(100))
            elif style == 3:
                name = "%s%s" % (first.capitalize(), last.capitalize())
            elif style == 4:
                name = "%s-%s" % (first[0], last)
            else:
                name = "%s%d" % (first, rng.randrange(10, 10000))
            name = name[:32]
            if name.lower() in names:
                continue
            names.add(name.lower())
            usernames.append(name)
        usernames += specials
        start, end = to_ns(USERS_FROM), to_ns(ARTICLES_FROM)
        times = sorted(rng.randrange(start, end) for _ in range(n_users))
        # Special accounts joined last.
        users = []
        for i, name in enumerate(usernames):
            created = times[i]
            special = name.startswith("bench-")
            if special:
                email = "%s@example.com" % name
            else:
                local = name.replace("_", ".").replace("-", ".")
                email = "%s@%s" % (local, rng.choice(DOMAINS))
                if rng.random() < 0.1:
                    email = email[0].upper() + email[1:]
            bio = None
            if not special and rng.random() < 0.4:
                bio = " ".join(self.sentence(4, 14, markup=False) for _ in range(rng.randint(1, 2)))
            image = None
            if not special and rng.random() < 0.3:
                image = "https://images.example.com/avatars/%d.jpg" % rng.randrange(1_000_000)
            verified = created + rng.randrange(60 * NS, 2 * DAY_NS) if rng.random() < 0.85 or special else None
            users.append({
                "id": uuid7(created, rng), "email": email, "username": name, "bio": bio, "image": image,
                "verified": verified, "created": created,
            })
        self.users = users
        readers = list(range(n_regular, n_regular + a.readers))
        writers = list(range(n_regular + a.readers, n_users))
        self.readers, self.writers = readers, writers

        # Authors: a random 70 % of the regular users, Zipf-weighted.
        candidates = list(range(n_regular))
        rng.shuffle(candidates)
        authors = candidates[: int(n_regular * 0.7)]
        author_cum = zipf_cum(len(authors), 1.05, offset=4.0)

        # Tags: the vocabulary in order of popularity.
        tags = []
        seen = set()
        for t in TAG_BASE:
            if t not in seen:
                seen.add(t)
                tags.append(t)
        while len(tags) < a.tags:
            t = "%s-%s" % (rng.choice(TAG_BASE), rng.choice(TAG_BASE))
            if t not in seen:
                seen.add(t)
                tags.append(t)
        tags = tags[: a.tags]
        tag_cum = zipf_cum(len(tags), 1.0, offset=1.0)

        # Articles, oldest first.
        n_articles = a.articles
        start, end = to_ns(ARTICLES_FROM), to_ns(END)
        times = sorted(rng.randrange(start, end) for _ in range(n_articles))
        articles = []
        slugs = set()
        last_ms = 0
        tag_counts = [0, 0.08, 0.25, 0.50, 0.72, 0.88, 1.0]
        for i in range(n_articles):
            created = times[i]
            # Strictly increasing milliseconds, so ids order like creation.
            if created // 1_000_000 <= last_ms:
                created = (last_ms + 1) * 1_000_000 + created % 1_000_000
            last_ms = created // 1_000_000
            title = self.title()
            slug = slugify(title)
            while slug in slugs:
                slug = slugify(title) + "-" + "".join(rng.choice(SUFFIX_ALPHABET) for _ in range(6))
            slugs.add(slug)
            k = bisect.bisect_right(tag_counts, rng.random()) - 1
            chosen = set()
            while len(chosen) < k:
                chosen.add(tags[pick(rng, tag_cum)])
            updated = created
            if rng.random() < 0.1:
                updated = created + rng.randrange(60 * NS, 30 * DAY_NS)
                if updated >= to_ns(END):
                    updated = created + rng.randrange(max(to_ns(END) - created, 2))
            articles.append({
                "id": uuid7(created, rng), "slug": slug, "title": title,
                "description": self.sentence(6, 24, markup=False),
                "body": self.body(), "tags": sorted(chosen),
                "author": authors[pick(rng, author_cum)], "created": created, "updated": updated,
                "favorites": 0,
            })
        self.articles = articles
        self.tags = tags
        self.log("users and articles generated in %.1f s" % (time.time() - t0))
        t0 = time.time()

        # Popularity: heavy-tailed, for comments and favourites.
        pop_cum = []
        total = 0.0
        for _ in range(n_articles):
            total += min(rng.paretovariate(1.3), 500.0)
            pop_cum.append(total)
        # Activity of users (commenting, favouriting, following): Zipf over a shuffle.
        active = list(range(n_users))
        rng.shuffle(active)
        active_cum = zipf_cum(n_users, 0.8, offset=10.0)
        end_ns = to_ns(END)

        # Comments.
        comments = []
        for _ in range(a.comments):
            ai = pick(rng, pop_cum)
            art = articles[ai]
            gap = int(rng.expovariate(1.0 / (3 * DAY_NS)))
            created = art["created"] + gap
            if created >= end_ns:
                created = art["created"] + rng.randrange(max(end_ns - art["created"], 2))
            body = " ".join(rng.choice(self.comment_sentences) for _ in range(rng.randint(1, 4)))
            comments.append((created, ai, active[pick(rng, active_cum)], body))
        comments.sort(key=lambda c: c[0])
        self.comments = comments

        # Favourites: distinct (user, article) pairs.
        favorites = {}
        while len(favorites) < a.favorites:
            ai = pick(rng, pop_cum)
            ui = active[pick(rng, active_cum)]
            if (ui, ai) in favorites:
                continue
            art = articles[ai]
            created = art["created"] + rng.randrange(max(min(60 * DAY_NS, end_ns - art["created"]), 2))
            favorites[(ui, ai)] = created
            art["favorites"] += 1
        self.favorites = favorites

        # Follows: the readers follow exactly READERS_FOLLOW authors each (the
        # feed's subjects, picked by popularity); the rest are random pairs,
        # followees weighted towards prolific authors. Writers are never followed.
        follows = {}
        excluded = set(writers)
        for r in readers:
            picked = set()
            while len(picked) < READERS_FOLLOW:
                picked.add(authors[pick(rng, author_cum)])
            for f in picked:
                follows[(r, f)] = None
        mix_cum = zipf_cum(len(authors), 0.9, offset=4.0)
        while len(follows) < a.follows:
            follower = active[pick(rng, active_cum)]
            if follower in readers:
                continue
            followee = authors[pick(rng, mix_cum)] if rng.random() < 0.8 else rng.randrange(n_users)
            if followee == follower or followee in excluded or (follower, followee) in follows:
                continue
            follows[(follower, followee)] = None
        for key in follows:
            after = max(users[key[0]]["created"], users[key[1]]["created"])
            follows[key] = after + rng.randrange(max(end_ns - after, 2))
        self.follows = follows
        self.log("comments, favourites and follows generated in %.1f s" % (time.time() - t0))

    # ----------------------------------------------------------- output ----
    def rows_users(self, ts, uid, hash_):
        for u in self.users:
            yield (
                uid(u["id"]), u["email"], u["email"].strip().lower(), u["username"],
                u["username"].strip().lower(), hash_, "user", u["bio"], u["image"],
                ts(u["verified"]) if u["verified"] is not None else None, 0, 0, None,
                ts(u["created"]), ts(u["created"]),
            )

    def rows_articles(self, ts, uid):
        users = self.users
        for art in self.articles:
            yield (
                uid(art["id"]), art["slug"], art["title"], art["description"], art["body"],
                json.dumps(art["tags"], separators=(",", ":"), ensure_ascii=False),
                uid(users[art["author"]]["id"]), art["favorites"], ts(art["created"]), ts(art["updated"]),
            )

    def rows_tags(self, uid):
        for art in self.articles:
            for t in art["tags"]:
                yield (uid(art["id"]), t)

    def rows_favorites(self, ts, uid):
        users, articles = self.users, self.articles
        for (ui, ai), created in sorted(self.favorites.items()):
            yield (uid(users[ui]["id"]), uid(articles[ai]["id"]), ts(created))

    def rows_follows(self, ts, uid):
        users = self.users
        for (a, b), created in sorted(self.follows.items()):
            yield (uid(users[a]["id"]), uid(users[b]["id"]), ts(created))

    def rows_comments(self, ts, uid):
        users, articles = self.users, self.articles
        for created, ai, ui, body in self.comments:
            yield (uid(articles[ai]["id"]), uid(users[ui]["id"]), body, ts(created), ts(created))


USER_COLS = ("id, email, email_normalized, username, username_normalized, password_hash, role, bio, image, "
             "email_verified_at, failed_logins, lock_level, locked_until, created_at, updated_at")
ARTICLE_COLS = "id, slug, title, description, body, tag_list, author_id, favorites_count, created_at, updated_at"
TABLES = [
    ("identity_users", USER_COLS),
    ("blog_articles", ARTICLE_COLS),
    ("blog_article_tags", "article_id, tag"),
    ("blog_favorites", "user_id, article_id, created_at"),
    ("blog_follows", "follower_id, followee_id, created_at"),
    ("blog_comments", "article_id, author_id, body, created_at, updated_at"),
]


def row_sources(gen, ts, uid, hash_):
    return {
        "identity_users": gen.rows_users(ts, uid, hash_),
        "blog_articles": gen.rows_articles(ts, uid),
        "blog_article_tags": gen.rows_tags(uid),
        "blog_favorites": gen.rows_favorites(ts, uid),
        "blog_follows": gen.rows_follows(ts, uid),
        "blog_comments": gen.rows_comments(ts, uid),
    }


def analyze_sqlite(path, log):
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    t = time.time()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log("ANALYZE in %.1f s (SQLite %s)" % (time.time() - t, sqlite3.sqlite_version))
    db.close()


def seed_sqlite(gen, path, hash_user, analyze):
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    row = db.execute("SELECT password_hash FROM identity_users WHERE username_normalized = ?",
                     (hash_user.lower(),)).fetchone()
    if not row:
        sys.exit("seed: no account %r to copy the password hash from" % hash_user)
    hash_ = row[0]
    existing = db.execute("SELECT count(*) FROM blog_articles").fetchone()[0]
    if existing:
        sys.exit("seed: the database already holds %d articles" % existing)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    t = time.time()
    db.execute("BEGIN")
    sources = row_sources(gen, ts_sqlite, bytes, hash_)
    counts = {}
    for table, cols in TABLES:
        marks = ", ".join("?" * len(cols.split(",")))
        cur = db.executemany("INSERT INTO %s (%s) VALUES (%s)" % (table, cols, marks), sources[table])
        counts[table] = cur.rowcount
    db.execute("COMMIT")
    gen.log("rows written in %.1f s: %s" % (time.time() - t, counts))
    t = time.time()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    gen.log("checkpoint in %.1f s" % (time.time() - t))
    db.close()
    if analyze:
        analyze_sqlite(path, gen.log)
    return counts


def seed_postgres(gen, url, psql, work, hash_user):
    def run_psql(*extra, input_=None):
        return subprocess.run([psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *extra], input=input_,
                              check=True, capture_output=True, text=True).stdout

    hash_ = run_psql("-Atc", "SELECT password_hash FROM identity_users WHERE username_normalized = '%s'"
                     % hash_user.lower().replace("'", "''")).strip()
    if not hash_:
        sys.exit("seed: no account %r to copy the password hash from" % hash_user)
    existing = int(run_psql("-Atc", "SELECT count(*) FROM blog_articles").strip())
    if existing:
        sys.exit("seed: the database already holds %d articles" % existing)
    t = time.time()
    os.makedirs(work, exist_ok=True)
    sources = row_sources(gen, ts_pg, lambda b: str(uuid.UUID(bytes=b)), hash_)
    script = ["BEGIN;"]
    counts = {}
    for table, cols in TABLES:
        path = os.path.join(work, table + ".csv")
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            for row in sources[table]:
                # NULL is an unquoted empty field in CSV; empty strings do not occur.
                w.writerow(["" if v is None else v for v in row])
                n += 1
        counts[table] = n
        script.append("\\copy %s (%s) FROM '%s' WITH (FORMAT csv)" % (table, cols, path))
    script.append("COMMIT;")
    gen.log("CSV written in %.1f s" % (time.time() - t))
    t = time.time()
    run_psql("-f", "-", input_="\n".join(script) + "\n")
    gen.log("rows copied in %.1f s: %s" % (time.time() - t, counts))
    t = time.time()
    # As autovacuum would leave it (and so that it does not run during the measurements).
    run_psql("-c", "VACUUM (ANALYZE)")
    gen.log("VACUUM (ANALYZE) in %.1f s" % (time.time() - t))
    for table, _ in TABLES:
        os.remove(os.path.join(work, table + ".csv"))
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", metavar="FILE", help="SQLite database file")
    target.add_argument("--postgres", metavar="URL", help="PostgreSQL URL")
    p.add_argument("--psql", default="psql", help="psql binary (PostgreSQL)")
    p.add_argument("--work", default="/tmp", help="folder for the CSV files (PostgreSQL)")
    p.add_argument("--hash-user", required=True, help="username whose password hash every account gets")
    p.add_argument("--info", help="where to write what the benchmark needs (JSON)")
    p.add_argument("--no-analyze", action="store_true", help="SQLite: leave ANALYZE out")
    p.add_argument("--analyze-only", action="store_true",
                   help="SQLite: only run ANALYZE on the (seeded) database, e.g. with another libsqlite3")
    p.add_argument("--slugs", type=int, default=10000, help="random article slugs listed in the info")
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--articles", type=int, default=100000)
    p.add_argument("--tags", type=int, default=500)
    p.add_argument("--comments", type=int, default=200000)
    p.add_argument("--favorites", type=int, default=50000)
    p.add_argument("--follows", type=int, default=100000)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--writers", type=int, default=4)
    args = p.parse_args()

    if args.analyze_only:
        if not args.sqlite:
            p.error("--analyze-only is for SQLite")
        analyze_sqlite(args.sqlite, lambda m: print("seed: " + m, file=sys.stderr, flush=True))
        return
    if not args.info:
        p.error("--info is required")
    started = time.time()
    gen = Generator(args)
    gen.generate()
    generated = time.time() - started
    if args.sqlite:
        counts = seed_sqlite(gen, args.sqlite, args.hash_user, not args.no_analyze)
    else:
        counts = seed_postgres(gen, args.postgres, args.psql, args.work, args.hash_user)
    total = time.time() - started

    # What the benchmark needs: accounts, a popular tag, a prolific author, slugs.
    arts = gen.articles
    per_tag = {}
    per_author = {}
    for art in arts:
        for t in art["tags"]:
            per_tag[t] = per_tag.get(t, 0) + 1
        per_author[art["author"]] = per_author.get(art["author"], 0) + 1
    popular_tag = max(per_tag, key=lambda t: per_tag[t])
    rare_tag = min(per_tag, key=lambda t: (per_tag[t], t))
    rare_author = min(per_author, key=lambda a: (per_author[a], a))
    prolific = max(per_author, key=lambda a: per_author[a])
    comment_counts = {}
    for _, ai, _, _ in gen.comments:
        comment_counts[ai] = comment_counts.get(ai, 0) + 1
    pick_rng = random.Random(SEED + 1)
    sample = pick_rng.sample(range(len(arts)), min(args.slugs, len(arts)))
    followed = [b for (a, b) in gen.follows if a == gen.readers[0]]
    feed_total = sum(per_author.get(b, 0) for b in followed)
    sizes = sorted(len(a["body"]) for a in arts)
    info = {
        "seed": SEED,
        "generate_seconds": round(generated, 1),
        "seed_seconds": round(total, 1),
        "rows": counts,
        "readers": [gen.users[i]["email"] for i in gen.readers],
        "writers": [gen.users[i]["email"] for i in gen.writers],
        "popular_tag": popular_tag,
        "popular_tag_articles": per_tag[popular_tag],
        "tags_in_use": len(per_tag),
        "prolific_author": gen.users[prolific]["username"],
        "prolific_author_articles": per_author[prolific],
        "rare_tag": rare_tag,
        "rare_tag_articles": per_tag[rare_tag],
        "rare_author": gen.users[rare_author]["username"],
        "rare_author_articles": per_author[rare_author],
        "authors": len(per_author),
        "reader_follows": READERS_FOLLOW,
        "reader_feed_articles": feed_total,
        "body_bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1],
                       "mean": round(sum(sizes) / len(sizes))},
        "comments_max_per_article": max(comment_counts.values()),
        "articles_with_comments": len(comment_counts),
        "sample_slugs": [arts[i]["slug"] for i in sample],
        "sample_comment_counts": [comment_counts.get(i, 0) for i in sample],
    }
    with open(args.info, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    gen.log("done in %.1f s (generation %.1f s)" % (total, generated))


if __name__ == "__main__":
    main()
