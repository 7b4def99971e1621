#!/usr/bin/python3
"""Load generator of the cluster test (scripts/cluster-test.sh), Python 3 stdlib only.

Every request goes over TLS to the nginx gateway, verifying its certificate,
from a loopback source address of the caller's choosing (each check has its
own client address, so Basalt's per-IP rate limits of one check do not touch
another), with an `X-Request-Id` of our own so that the gateway's JSON access
log tells which node served it.

Subcommands (the gateway, CA and files come from the CLUSTER_* environment
variables set by cluster-test.sh; see `Env`):
  register N         N sign-ups (POST /api/auth/register) over C clients: each
                     enqueues one verification mail job
  publish N          N articles by one author (POST /api/articles) over C
                     clients, at a steady rate, writing the count done so far to
                     a progress file
  mixed SECONDS      the mixed read/write load (70 % reads, 30 % writes) over C
                     clients; records every acknowledged write and every failure
                     with its reason, then checks through the gateway that each
                     acknowledged write is there
Each writes a JSON summary (--out) that checks.py reads.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.client
import json
import os
import random
import ssl
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

PASSWORD = "Correct-Horse-Battery-9"


@dataclass
class Env:
    """The cluster as cluster-test.sh describes it in the environment."""

    gateway: str = os.environ.get("CLUSTER_GATEWAY", "")  # https://127.0.0.1:PORT
    http_gateway: str = os.environ.get("CLUSTER_HTTP_GATEWAY", "")  # http://127.0.0.1:PORT
    ca: str = os.environ.get("CLUSTER_CA", "")  # the gateway's self-signed certificate
    access_log: str = os.environ.get("CLUSTER_ACCESS_LOG", "")
    maildir: str = os.environ.get("CLUSTER_MAILDIR", "")
    state: str = os.environ.get("CLUSTER_STATE", "")  # folder for files between steps
    run: str = os.environ.get("CLUSTER_RUN", "run")  # unique per run: names, emails
    # Node addresses (host:port), in upstream order.
    nodes: list[str] = field(
        default_factory=lambda: [n for n in os.environ.get("CLUSTER_NODES", "").split(",") if n]
    )


ENV = Env()


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, request_id: str):
        self.status = status
        self.headers = headers
        self.body = body
        self.request_id = request_id

    def json(self):
        return json.loads(self.body.decode() or "null")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:200]!r}>"


class Client:
    """One keep-alive HTTPS connection to the gateway from `source` (one thread)."""

    def __init__(self, source: str = "127.0.0.1", tag: str = "c", base: str | None = None,
                 timeout: float = 30.0):
        url = urlsplit(base or ENV.gateway)
        self.scheme, self.host, self.port = url.scheme, url.hostname, url.port
        self.source, self.tag, self.timeout = source, tag, timeout
        self.ctx = None
        if self.scheme == "https":
            self.ctx = ssl.create_default_context(cafile=ENV.ca)
        self.conn: http.client.HTTPConnection | None = None
        self.token: str | None = None  # RealWorld JWT, sent as `Token`
        self.cookie: str | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.scheme == "https":
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.ctx, timeout=self.timeout,
                    source_address=(self.source, 0))
            else:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout, source_address=(self.source, 0))
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def new_request_id(self) -> str:
        return f"{self.tag}-{uuid.uuid4().hex}"

    def request(self, method: str, path: str, body=None, headers: dict | None = None,
                request_id: str | None = None, raw: bytes | None = None) -> Response:
        """Sends one request; raises OSError/HTTPException on a transport failure
        (after which the connection is dropped: the next request reconnects)."""
        rid = request_id or self.new_request_id()
        h = {"X-Request-Id": rid, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Token {self.token}"
        if self.cookie:
            h["Cookie"] = self.cookie
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update({k: v for k, v in headers.items() if v is not None})
            for k, v in headers.items():
                if v is None:
                    h.pop(k, None)
        try:
            conn = self._connect()
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if hdrs.get("connection", "").lower() == "close":
                self.close()
            return Response(r.status, hdrs, payload, rid)
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    # --- RealWorld helpers ---------------------------------------------------------
    def sign_up(self, username: str, email: str) -> dict:
        r = self.request("POST", "/api/users",
                         {"user": {"username": username, "email": email, "password": PASSWORD}})
        if r.status != 201:
            raise RuntimeError(f"sign-up of {username}: {r}")
        user = r.json()["user"]
        self.token = user["token"]
        return user

    def publish(self, title: str, tags=("cluster",), body="Body.") -> dict:
        r = self.request("POST", "/api/articles", {"article": {
            "title": title, "description": "cluster test", "body": body, "tagList": list(tags)}})
        if r.status != 201:
            raise RuntimeError(f"publishing {title!r}: {r}")
        return r.json()["article"]


def parallel(count: int, clients: int, make_client, work, progress=None):
    """Runs work(client, i) for i in range(count) over `clients` threads, each
    with its own Client; returns the results in order."""
    results: list = [None] * count
    lock = threading.Lock()
    next_i = [0]
    done = [0]

    def worker():
        client = make_client()
        try:
            while True:
                with lock:
                    i = next_i[0]
                    if i >= count:
                        return
                    next_i[0] += 1
                results[i] = work(client, i)
                with lock:
                    done[0] += 1
                    if progress:
                        progress(done[0])
        finally:
            client.close()

    with cf.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return results


def attempt(client: Client, method: str, path: str, body=None, **kw):
    """(status or None, reason, response or None): transport errors become a reason."""
    try:
        r = client.request(method, path, body, **kw)
        return r.status, "", r
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}", None


def write_json(path: str, data) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# --- register: N sign-ups, each enqueues one mail job ---------------------------------
def cmd_register(args) -> None:
    emails = [f"job-{ENV.run}-{i}@example.com" for i in range(args.count)]

    def work(client: Client, i: int):
        body = {"email": emails[i], "username": f"job{ENV.run}x{i}", "password": PASSWORD}
        status, reason, r = attempt(client, "POST", "/api/auth/register", body)
        return {"email": emails[i], "status": status, "reason": reason or (
            "" if status == 201 else repr(r)), "request_id": r.request_id if r else None}

    t0 = time.monotonic()
    results = parallel(args.count, args.clients,
                       lambda: Client(args.source, "register"), work)
    write_json(args.out, {"seconds": time.monotonic() - t0, "results": results})


# --- publish: N articles by one author ----------------------------------------------------
def cmd_publish(args) -> None:
    token = json.load(open(args.author))["token"]
    titles = [f"Event {ENV.run} number {i}" for i in range(args.count)]

    def make():
        c = Client(args.source, "publish")
        c.token = token
        return c

    start = time.monotonic() + 0.1

    def work(client: Client, i: int):
        # Paced (--rate per second), so that publishing goes on before, during
        # and after the broker's restart.
        if args.rate:
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # No retry: nothing should fail here (the nodes stay up while the broker
        # restarts), and a retried POST whose first try was in fact committed
        # would publish the title twice.
        status, reason, r = attempt(client, "POST", "/api/articles", {"article": {
            "title": titles[i], "description": "d", "body": "b", "tagList": ["events"]}})
        if status == 201:
            return {"title": titles[i], "slug": r.json()["article"]["slug"], "status": 201}
        return {"title": titles[i], "status": status, "reason": reason or repr(r)}

    def progress(done: int) -> None:
        if done % 10 == 0 or done == args.count:
            with open(f"{args.progress}.tmp", "w") as f:
                f.write(str(done))
            os.replace(f"{args.progress}.tmp", args.progress)

    t0 = time.monotonic()
    results = parallel(args.count, args.clients, make, work, progress)
    write_json(args.out, {"seconds": time.monotonic() - t0, "results": results})


# --- mixed: 70 % reads, 30 % writes, for a while ------------------------------------------
class Mixed:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop_at = 0.0
        self.t0 = 0.0
        self.slugs: list[str] = []  # acknowledged articles, readable by everyone
        self.acked_articles: list[dict] = []
        self.acked_comments: list[dict] = []
        self.requests = 0
        self.by_kind: dict[str, int] = {}
        self.failures: list[dict] = []
        self.per_second: dict[int, list[int]] = {}  # second -> [ok, failed]

    def record(self, kind: str, ok: bool, reason: str = "", rid: str = "", status=None):
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            sec = int(time.monotonic() - self.t0)
            slot = self.per_second.setdefault(sec, [0, 0])
            slot[0 if ok else 1] += 1
            if not ok:
                self.failures.append({"t": round(time.monotonic() - self.t0, 3), "kind": kind,
                                      "status": status, "reason": reason, "request_id": rid})

    def one(self, client: Client, rng: random.Random, writer_no: int):
        with self.lock:
            slug = rng.choice(self.slugs) if self.slugs else None
        roll = rng.random()
        if roll < 0.25 or slug is None and roll < 0.70:
            kind, method, path, body = "list", "GET", f"/api/articles?limit=10&offset={rng.randrange(0, 30)}", None
        elif roll < 0.50:
            kind, method, path, body = "article", "GET", f"/api/articles/{quote(slug)}", None
        elif roll < 0.70:
            kind, method, path, body = "tags", "GET", "/api/tags", None
        elif roll < 0.85 or slug is None:
            title = f"Load {ENV.run} w{writer_no} {uuid.uuid4().hex[:12]}"
            kind, method, path = "create_article", "POST", "/api/articles"
            body = {"article": {"title": title, "description": "load", "body": "Under load.",
                                "tagList": [f"load{rng.randrange(5)}"]}}
        else:
            text = f"comment {uuid.uuid4().hex}"
            kind, method, path = "comment", "POST", f"/api/articles/{quote(slug)}/comments"
            body = {"comment": {"body": text}}
        status, reason, r = attempt(client, method, path, body)
        rid = r.request_id if r else ""
        want = 201 if kind == "create_article" else 200
        if kind == "comment":
            ok = status in (200, 201)
        else:
            ok = status == want
        if not ok:
            if not reason:
                reason = f"HTTP {status}: {r.body[:160]!r}" if r else "no response"
            self.record(kind, False, reason, rid, status)
            return
        self.record(kind, True)
        if kind == "create_article":
            a = r.json()["article"]
            with self.lock:
                self.slugs.append(a["slug"])
                self.acked_articles.append({"slug": a["slug"], "title": a["title"]})
        elif kind == "comment":
            c = r.json()["comment"]
            with self.lock:
                self.acked_comments.append({"slug": slug, "id": c["id"], "body": c["body"]})

    def client_loop(self, n: int, token: str):
        client = Client(self.args.source, f"mixed{n}")
        client.token = token
        rng = random.Random(n * 7919 + int(time.time()))
        try:
            while time.monotonic() < self.stop_at:
                self.one(client, rng, n)
        finally:
            client.close()

    def run(self):
        writers = json.load(open(self.args.users))
        seed = json.load(open(self.args.seed))
        self.slugs = list(seed)
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.args.seconds
        with open(self.args.started, "w") as f:
            f.write(str(time.time()))
        with cf.ThreadPoolExecutor(self.args.clients) as pool:
            futures = [pool.submit(self.client_loop, n, writers[n % len(writers)]["token"])
                       for n in range(self.args.clients)]
            for f in futures:
                f.result()
        elapsed = time.monotonic() - self.t0
        lost_articles, lost_comments = self.verify()
        write_json(self.args.out, {
            "seconds": elapsed, "requests": self.requests, "by_kind": self.by_kind,
            "failed": len(self.failures), "failures": self.failures,
            "acked_articles": len(self.acked_articles), "acked_comments": len(self.acked_comments),
            "lost_articles": lost_articles, "lost_comments": lost_comments,
            "per_second": {str(k): v for k, v in sorted(self.per_second.items())},
        })

    def verify(self):
        """Reads back every acknowledged write through the gateway."""
        lost_articles: list = []
        lost_comments: list = []
        articles = self.acked_articles

        def check_article(client: Client, i: int):
            a = articles[i]
            for _ in range(3):
                status, reason, r = attempt(client, "GET", f"/api/articles/{quote(a['slug'])}")
                if status is not None:
                    break
                time.sleep(0.2)
            if status != 200 or r.json()["article"]["title"] != a["title"]:
                return {"slug": a["slug"], "status": status, "reason": reason}
            return None

        res = parallel(len(articles), 8, lambda: Client(self.args.source, "verify"), check_article)
        lost_articles = [x for x in res if x]
        by_slug: dict[str, set] = {}
        for c in self.acked_comments:
            by_slug.setdefault(c["slug"], set()).add(c["id"])
        slugs = sorted(by_slug)

        def check_comments(client: Client, i: int):
            slug = slugs[i]
            status, reason, r = attempt(client, "GET", f"/api/articles/{quote(slug)}/comments")
            if status != 200:
                return [{"slug": slug, "id": cid, "status": status, "reason": reason}
                        for cid in by_slug[slug]]
            have = {c["id"] for c in r.json()["comments"]}
            return [{"slug": slug, "id": cid} for cid in by_slug[slug] - have]

        for missing in parallel(len(slugs), 8, lambda: Client(self.args.source, "verify"),
                                check_comments):
            lost_comments.extend(missing)
        return lost_articles, lost_comments


def cmd_mixed(args) -> None:
    Mixed(args).run()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("register")
    r.add_argument("count", type=int)
    pb = sub.add_parser("publish")
    pb.add_argument("count", type=int)
    pb.add_argument("--author", required=True, help="JSON file with the author's token")
    pb.add_argument("--progress", required=True, help="file receiving the count done")
    pb.add_argument("--rate", type=float, default=0, help="articles per second (0: at once)")
    m = sub.add_parser("mixed")
    m.add_argument("seconds", type=float)
    m.add_argument("--users", required=True, help="JSON list of writers with tokens")
    m.add_argument("--seed", required=True, help="JSON list of existing slugs")
    m.add_argument("--started", required=True, help="file receiving the start time")
    for s in (r, pb, m):
        s.add_argument("--clients", type=int, default=8)
        s.add_argument("--source", default="127.0.0.1", help="loopback address to send from")
        s.add_argument("--out", required=True, help="JSON summary file")
    args = p.parse_args(argv)
    {"register": cmd_register, "publish": cmd_publish, "mixed": cmd_mixed}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
