#!/usr/bin/python3
"""The checks of the cluster test (scripts/cluster-test.sh), Python 3 stdlib only.

Each subcommand checks one property of the running cluster *through the nginx
gateway* and prints one line, `PASS name: numbers` or `FAIL name: numbers`
(then details), exiting 0 or 1. Which node served a request is read from the
gateway's JSON access log, by the request's X-Request-Id. cluster-test.sh
starts and stops the processes (kill -9, broker restart, Redis outage); the
steps that need that are split in two subcommands (setup, then verify).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import email
import email.policy
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import ENV, PASSWORD, Client, attempt, cmd_register, parallel, write_json  # noqa: E402

STATE = ENV.state


class Failed(Exception):
    pass


def ensure(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# --- the gateway's access log -----------------------------------------------------------
def access_log() -> dict[str, dict]:
    """request id -> its access log entry (every line must be valid JSON)."""
    entries = {}
    with open(ENV.access_log) as f:
        for n, line in enumerate(f, 1):
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                raise Failed(f"access log line {n} is not JSON ({err}): {line[:200]}")
            entries[e["request_id"]] = e
    return entries


def node_name(addr: str) -> str:
    addr = addr.strip()
    if addr in ENV.nodes:
        return f"node{ENV.nodes.index(addr) + 1}"
    return addr or "-"


def served_by(rids, log=None) -> list[str]:
    """The node that answered each request (the last one tried), in order.
    nginx writes the log line just after the response, so a line may lag a
    moment behind the answer: waits up to 3 s for missing ones."""
    rids = list(rids)
    deadline = time.monotonic() + 3
    log = log if log is not None else access_log()
    while any(rid not in log for rid in rids) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = access_log()
    out = []
    for rid in rids:
        e = log.get(rid)
        out.append(node_name(e["upstream_addr"].split(",")[-1]) if e else "?")
    return out


def spread(nodes: list[str]) -> str:
    c = collections.Counter(nodes)
    return " ".join(f"{k}={c[k]}" for k in sorted(c))


# --- the SMTP sink's Maildir ---------------------------------------------------------------
_mail_cache: dict[str, tuple] = {}


def mails() -> list[tuple[str, str, str]]:
    """(to, subject, body) of every message aiosmtpd stored (files are renamed
    into new/ complete). Parsed once per file."""
    out = []
    for sub in ("new", "cur"):
        folder = os.path.join(ENV.maildir, sub)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if path not in _mail_cache:
                with open(path, "rb") as f:
                    msg = email.message_from_binary_file(f, policy=email.policy.default)
                body = msg.get_body(("plain",))
                _mail_cache[path] = (str(msg["To"] or "").lower(), str(msg["Subject"] or ""),
                                     body.get_content() if body else "")
            out.append(_mail_cache[path])
    return out


def wait_for_mail(predicate, want: int, timeout: float) -> list[tuple[str, str, str]]:
    """Polls until `want` distinct matching messages arrived (or timeout),
    then a little longer so that a duplicate would have time to show up."""
    deadline = time.monotonic() + timeout
    while True:
        got = [m for m in mails() if predicate(m)]
        if len({(m[0], m[1]) for m in got}) >= want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(3)
    return [m for m in mails() if predicate(m)]


def verification_token(address: str, timeout: float = 30) -> str:
    got = wait_for_mail(lambda m: address in m[0] and "Confirm" in m[1], 1, timeout)
    ensure(got, f"no verification mail for {address} within {timeout:.0f} s")
    match = re.search(r"verify-email: (\S+)", got[0][2])
    ensure(match is not None, f"no token in the verification mail: {got[0][2][:300]}")
    return match.group(1)


# --- nodes, directly (only for /readyz and /metrics, which are per node) -------------------
def node_get(addr: str, path: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def mail_jobs_run(addr: str) -> int:
    _, text = node_get(addr, "/metrics")
    total = 0
    for m in re.finditer(r'^basalt_job_run_seconds_count\{([^}]*)\} (\S+)', text, re.M):
        if 'kind="platform.send_email"' in m.group(1) and 'outcome="succeeded"' in m.group(1):
            total += int(float(m.group(2)))
    return total


# --- helpers ---------------------------------------------------------------------------------
def registered(client: Client, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{ENV.run}{uuid.uuid4().hex[:6]}"
    address = f"{name}@example.com"
    r = client.request("POST", "/api/auth/register",
                       {"email": address, "username": name, "password": PASSWORD})
    ensure(r.status == 201, f"registration of {address}: {r}")
    return name, address


def cookie_of(r) -> str:
    set_cookie = r.header("set-cookie") or ""
    return set_cookie.split(";", 1)[0]


# === gateway: what nginx itself does =========================================================
def check_gateway(args) -> str:
    c = Client(args.source, "gw")
    notes = []
    # TLS with a verified certificate (the CA is the test's self-signed cert).
    r = c.request("GET", "/healthz")
    ensure(r.status == 200, f"GET /healthz through the gateway: {r}")
    ensure(r.header("x-request-id") == r.request_id, "our X-Request-Id was not passed through")
    # A malformed id is replaced by nginx's own (32 hex digits), the one Basalt echoes.
    r2 = c.request("GET", "/healthz", request_id="not a valid id!")
    rid = r2.header("x-request-id") or ""
    ensure(re.fullmatch(r"[0-9a-f]{32}", rid) is not None, f"malformed id not replaced: {rid!r}")
    notes.append("request ids passed through and generated")
    # Plain HTTP redirects to HTTPS, keeping the path (308 keeps the method).
    plain = Client(args.source, "gw", base=ENV.http_gateway)
    r3 = plain.request("POST", "/api/articles?x=1", {"a": 1})
    want = f"{ENV.gateway}/api/articles?x=1"
    ensure(r3.status == 308 and r3.header("location") == want,
           f"HTTP is not redirected to HTTPS: {r3.status} {r3.header('location')}")
    notes.append("http->https 308")
    # Body limit at the edge: 413 as a problem document, never sent to a node.
    r4 = c.request("POST", "/api/articles", raw=b"x" * (1024 * 1024 + 1),
                   headers={"Content-Type": "application/json"})
    ensure(r4.status == 413 and "problem+json" in (r4.header("content-type") or ""),
           f"oversized body: {r4.status} {r4.header('content-type')}")
    # /metrics is not exposed at the edge.
    r5 = c.request("GET", "/metrics")
    ensure(r5.status == 404, f"/metrics through the gateway: {r5.status}")
    log = access_log()
    ensure(log.get(r4.request_id, {}).get("upstream_addr", "x") == "",
           "the oversized body reached a node")
    notes.append("413 at the edge, /metrics 404")
    # The edge rate limit: a burst from an address that is not exempt.
    statuses = collections.Counter()

    def burst(client: Client, i: int):
        s, _, r = attempt(client, "GET", "/healthz")
        statuses[s] += 1
        return r.header("retry-after") if r is not None and s == 429 else None

    retry_after = parallel(200, 10, lambda: Client(args.limited_source, "edge"), burst)
    ensure(statuses[429] > 0 and statuses[200] >= 60,
           f"edge limit from {args.limited_source}: {dict(statuses)}")
    ensure(any(retry_after), "429 from the edge without Retry-After")
    exempt = collections.Counter()

    def burst_exempt(client: Client, i: int):
        exempt[attempt(client, "GET", "/healthz")[0]] += 1

    parallel(200, 10, lambda: Client(args.source, "edge"), burst_exempt)
    ensure(exempt == {200: 200}, f"exempt address was limited: {dict(exempt)}")
    notes.append(f"edge limit: {statuses[200]} ok / {statuses[429]} x 429 from "
                 f"{args.limited_source}, 200/200 ok from an exempt address")
    entry = access_log()[r.request_id]
    ensure(entry["tls"].startswith("TLS"), f"no TLS in the access log: {entry}")
    notes.append(f"{entry['tls']}, JSON access log")
    return "; ".join(notes)


# === 1. sessions: one sign-in, every node ===================================================
def check_sessions(args) -> str:
    c = Client(args.source, "sess")
    _, address = registered(c, "sess")
    # A spoofed X-Forwarded-For must not become the client address.
    r = c.request("POST", "/api/auth/login", {"email": address, "password": PASSWORD},
                  headers={"X-Forwarded-For": "203.0.113.66"})
    ensure(r.status == 200, f"sign-in: {r}")
    cookie, csrf = cookie_of(r), r.json()["csrf_token"]
    ensure(cookie.startswith("__Host-basalt_session="),
           f"not the HTTPS cookie (X-Forwarded-Proto lost?): {cookie[:40]}")
    login_node = served_by([r.request_id])[0]
    c.cookie = cookie
    me = [c.request("GET", "/api/me") for _ in range(6)]
    nodes_ok = served_by([x.request_id for x in me])
    ensure(all(x.status == 200 for x in me),
           f"/api/me after sign-in: {[x.status for x in me]} on {nodes_ok}")
    ensure(len(set(nodes_ok)) == 3, f"requests did not reach all three nodes: {nodes_ok}")
    sessions = c.request("GET", "/api/auth/sessions").json()["sessions"]
    ips = {s["ip"] for s in sessions}
    ensure(ips == {args.source}, f"session recorded client address {ips}, not {args.source}")
    out = c.request("POST", "/api/auth/logout",
                    headers={"X-CSRF-Token": csrf, "Origin": ENV.gateway})
    ensure(out.status == 204, f"sign-out: {out}")
    logout_node = served_by([out.request_id])[0]
    after = [c.request("GET", "/api/me") for _ in range(6)]
    nodes_after = served_by([x.request_id for x in after])
    ensure(all(x.status == 401 for x in after),
           f"/api/me after sign-out: {[x.status for x in after]} on {nodes_after}")
    ensure(len(set(nodes_after)) == 3, f"requests did not reach all three nodes: {nodes_after}")
    return (f"signed in on {login_node}, session valid on {len(set(nodes_ok))}/3 nodes "
            f"({spread(nodes_ok)}); client address {args.source} recorded; signed out on "
            f"{logout_node}, 401 on {len(set(nodes_after))}/3 nodes ({spread(nodes_after)})")


# === 2. rate limits: N per minute across the nodes ==========================================
def sign_in_burst(source: str, count: int) -> tuple[collections.Counter, dict, float]:
    """`count` sign-ins at once from `source`, each for its own unknown account
    (the per-account limit stays out of the way), each with a spoofed
    X-Forwarded-For that the gateway must overwrite. -> statuses, allowed per
    node, seconds taken."""
    results = []
    lock = threading.Lock()
    tag = uuid.uuid4().hex[:6]

    def one(i: int):
        c = Client(source, "rl")
        try:
            spoof = f"198.51.100.{random.randrange(1, 255)}"
            s, reason, r = attempt(c, "POST", "/api/auth/token",
                                   {"email": f"rl{tag}{i}@example.com", "password": "wrong-password"},
                                   headers={"X-Forwarded-For": spoof})
            with lock:
                results.append((s, r.request_id if r else None, reason))
        finally:
            c.close()

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(min(count, 32)) as pool:
        list(pool.map(one, range(count)))
    seconds = time.monotonic() - t0
    statuses = collections.Counter(s for s, _, _ in results)
    answered = [(s, rid) for s, rid, _ in results if rid]
    nodes = served_by([rid for _, rid in answered])
    allowed: dict[str, int] = collections.Counter(
        node for (s, _), node in zip(answered, nodes) if s == 401)
    all_nodes = collections.Counter(nodes)
    return statuses, {"allowed": dict(allowed), "all": dict(all_nodes)}, seconds


def check_ratelimit(args) -> str:
    n = args.limit
    count = n + 5
    statuses, per_node, seconds = sign_in_burst(args.source, count)
    ensure(set(statuses) <= {401, 429}, f"unexpected answers: {dict(statuses)}")
    ensure(len(per_node["all"]) == 3, f"attempts did not reach all three nodes: {per_node}")
    # GCRA refills one per 60/N s: the burst must be quicker for exactness.
    ensure(seconds < 60 / n, f"the burst took {seconds:.1f} s, more than one refill interval")
    ensure(statuses[401] == n and statuses[429] == count - n,
           f"expected exactly {n} allowed and {count - n} refused, got {statuses[401]} allowed, "
           f"{statuses[429]} refused; per node {per_node}")
    return (f"limit {n}/min per client IP: {count} sign-ins from {args.source} spread over the "
            f"nodes ({spread_dict(per_node['all'])}) -> {statuses[401]} allowed, "
            f"{statuses[429]} x 429 (spoofed X-Forwarded-For ignored; {seconds:.1f} s)")


def spread_dict(d: dict) -> str:
    return " ".join(f"{k}={d[k]}" for k in sorted(d))


# === 3. cache: a write through one node is read fresh through every other ===================
def check_cache(args) -> str:
    c = Client(args.source, "cache")
    name = f"cache{ENV.run}{uuid.uuid4().hex[:6]}"
    c.sign_up(name, f"{name}@example.com")
    article = c.publish("Fresh 0", tags=[f"t{name}"])
    slug = article["slug"]
    reader = Client(args.source, "cache")
    list_path = f"/api/articles?author={name}"

    def read_all(expected: str) -> tuple[list[str], list[str], int]:
        nodes, stale = [], []
        for _ in range(3):
            for path, pick in ((list_path, lambda j: j["articles"][0]["title"]),
                               (f"/api/articles/{slug}", lambda j: j["article"]["title"])):
                r = reader.request("GET", path)
                nodes.append(r.request_id)
                title = pick(r.json()) if r.status == 200 else f"HTTP {r.status}"
                if title != expected:
                    stale.append(f"{path}: {title!r}")
        return served_by(nodes), stale, len(nodes)

    nodes, stale, _ = read_all("Fresh 0")  # every node caches the pages
    ensure(not stale and len(set(nodes)) == 3, f"warm-up: {stale} {nodes}")
    rounds, reads, write_nodes, read_nodes = 10, 0, [], collections.Counter()
    for i in range(1, rounds + 1):
        r = c.request("PUT", f"/api/articles/{slug}", {"article": {"title": f"Fresh {i}"}})
        ensure(r.status == 200, f"update {i}: {r}")
        write_nodes.append(served_by([r.request_id])[0])
        nodes, stale, n = read_all(f"Fresh {i}")
        reads += n
        read_nodes.update(nodes)
        ensure(not stale, f"round {i} (written on {write_nodes[-1]}): stale reads {stale}")
        ensure(len(set(nodes)) == 3, f"round {i}: reads did not reach all nodes: {nodes}")
    # Tags: a new tag shows on every node at once.
    tags_before = [reader.request("GET", "/api/tags") for _ in range(3)]
    ensure(all(r.status == 200 for r in tags_before), "GET /api/tags")
    c.publish("Another", tags=[f"n{name}"])
    tags = [reader.request("GET", "/api/tags") for _ in range(3)]
    tag_nodes = served_by([r.request_id for r in tags])
    missing = [n for r, n in zip(tags, tag_nodes) if f"n{name}" not in r.json()["tags"]]
    ensure(not missing, f"new tag missing on {missing}")
    return (f"{rounds} updates (written on {spread(write_nodes)}), {reads} reads right after "
            f"them on {spread_dict(read_nodes)}: 0 stale; new tag seen on 3/3 nodes")


# === 4. jobs: 1,000 enqueued across nodes, 1,000 effects, none twice ========================
def check_jobs(args) -> str:
    before = {a: mail_jobs_run(a) for a in ENV.nodes}
    out = os.path.join(STATE, "register.json")
    cmd_register(argparse.Namespace(count=args.count, clients=args.clients, source=args.source,
                                    out=out))
    summary = json.load(open(out))
    results = summary["results"]
    ok = [x for x in results if x["status"] == 201]
    failed = [x for x in results if x["status"] != 201]
    enq_nodes = served_by([x["request_id"] for x in ok])
    wanted = {x["email"] for x in ok}
    t0 = time.monotonic()
    got = wait_for_mail(lambda m: m[0] in wanted, len(wanted), args.timeout)
    waited = time.monotonic() - t0
    per_address = collections.Counter(m[0] for m in got)
    duplicates = sum(n - 1 for n in per_address.values() if n > 1)
    missing = len(wanted - set(per_address))
    after = {a: mail_jobs_run(a) for a in ENV.nodes}
    ran = " ".join(f"{node_name(a)}={after[a] - before[a]}" for a in ENV.nodes)
    line = (f"{len(ok)} enqueued ({args.count} sign-ups via {spread(enq_nodes)} in "
            f"{summary['seconds']:.1f} s), {len(per_address)} delivered, {duplicates} duplicates, "
            f"{missing} missing (mail jobs run: {ran}; last mail {waited:.1f} s after the sign-ups)")
    ensure(not failed, f"{line}; failed sign-ups: {failed[:5]}")
    ensure(len(ok) == args.count and len(per_address) == args.count and duplicates == 0
           and missing == 0, line)
    return line


# === 5. events: 1,000 domain events, broker restarted in the middle ==========================
def check_events_setup(args) -> str:
    author = Client(args.source, "ev")
    a_name = f"author{ENV.run}"
    author.sign_up(a_name, f"{a_name}@example.com")
    follower = Client(args.source, "ev")
    f_name = f"follower{ENV.run}"
    f_user = follower.sign_up(f_name, f"{f_name}@example.com")
    token = verification_token(f_user["email"])
    r = follower.request("POST", "/api/auth/verify-email", {"token": token})
    ensure(r.status == 200, f"verification: {r}")
    r = follower.request("POST", f"/api/profiles/{a_name}/follow")
    ensure(r.status == 200 and r.json()["profile"]["following"], f"follow: {r}")
    write_json(os.path.join(STATE, "author.json"), {"username": a_name, "token": author.token})
    write_json(os.path.join(STATE, "follower.json"), {"username": f_name, "email": f_user["email"]})
    return f"author {a_name}, verified follower {f_name}"


def check_events(args) -> str:
    summary = json.load(open(os.path.join(STATE, "publish.json")))
    follower = json.load(open(os.path.join(STATE, "follower.json")))
    author = json.load(open(os.path.join(STATE, "author.json")))["username"]
    ok = [x for x in summary["results"] if x["status"] == 201]
    failed = [x for x in summary["results"] if x["status"] != 201]
    subjects = {f"New article by {author}: {x['title']}" for x in ok}
    address = follower["email"].lower()
    t0 = time.monotonic()
    got = wait_for_mail(lambda m: address in m[0] and m[1] in subjects, len(subjects),
                        args.timeout)
    waited = time.monotonic() - t0
    per_subject = collections.Counter(m[1] for m in got)
    duplicates = sum(n - 1 for n in per_subject.values() if n > 1)
    missing = len(subjects - set(per_subject))
    line = (f"{len(ok)} articles published ({summary['seconds']:.1f} s; broker stopped after "
            f"{args.restarted_after}, down {args.down_seconds} s, {args.held} events held in the "
            f"outbox), {len(per_subject)} notifications "
            f"to the follower, {duplicates} duplicates, {missing} missing "
            f"(last {waited:.1f} s after publishing ended)")
    ensure(not failed, f"{line}; failed publications: {failed[:5]}")
    ensure(len(ok) == args.count and len(per_subject) == args.count and duplicates == 0
           and missing == 0, line)
    return line


# === 6. kill -9 of a node under mixed load ===================================================
def check_kill_setup(args) -> str:
    writers = []
    for i in range(4):
        c = Client(args.source, "kill")
        name = f"load{ENV.run}w{i}"
        c.sign_up(name, f"{name}@example.com")
        writers.append({"username": name, "token": c.token})
    seed_client = Client(args.source, "kill")
    seed_client.token = writers[0]["token"]
    seed = [seed_client.publish(f"Seed {ENV.run} {i}", tags=["seed"])["slug"] for i in range(20)]
    write_json(os.path.join(STATE, "writers.json"), writers)
    write_json(os.path.join(STATE, "seed.json"), seed)
    return f"{len(writers)} writers, {len(seed)} seed articles"


def check_kill(args) -> str:
    s = json.load(open(os.path.join(STATE, "mixed.json")))
    started = float(open(os.path.join(STATE, "mixed.started")).read())
    killed_at = float(open(os.path.join(STATE, "killed.at")).read()) - started
    restarted_at = float(open(os.path.join(STATE, "restarted.at")).read()) - started
    victim = args.victim
    ratio = s["failed"] / max(s["requests"], 1)
    # Did the gateway send traffic to the restarted node again?
    entries = []
    with open(ENV.access_log) as f:
        for line in f:
            e = json.loads(line)
            if e["request_id"].startswith("mixed"):
                entries.append(e)
    back = [e for e in entries if e["msec"] - started > restarted_at
            and node_name(e["upstream_addr"].split(",")[-1]) == victim
            and e["upstream_status"].split(",")[-1].strip().startswith(("2", "4"))]
    retried = [e for e in entries if "," in e["upstream_addr"]]
    # Where and when each failure happened, from the access log.
    by_id = {e["request_id"]: e for e in entries}
    reasons = collections.Counter()
    for f in s["failures"]:
        e = by_id.get(f["request_id"])
        where = node_name(e["upstream_addr"].split(",")[-1]) if e else "no answer"
        reasons[f"{f['kind']} {f['status'] or f['reason'][:60]} from {where}"] += 1
    times = [f["t"] for f in s["failures"]]
    kinds = " ".join(f"{k}={v}" for k, v in sorted(s["by_kind"].items()))
    line = (f"{s['requests']} requests in {s['seconds']:.0f} s ({kinds}); {victim} killed "
            f"at {killed_at:.1f} s, restarted at {restarted_at:.1f} s; {s['failed']} failed "
            f"({ratio:.3%} < 0.1%), {len(retried)} retried on another node by the gateway; "
            f"{s['acked_articles']} acknowledged articles + {s['acked_comments']} comments, "
            f"{len(s['lost_articles'])} + {len(s['lost_comments'])} lost; {victim} served "
            f"{len(back)} requests after its restart")
    detail = ""
    if reasons:
        detail = (f"; failures at t={min(times):.1f}-{max(times):.1f} s: "
                  + ", ".join(f"{k} x{v}" for k, v in reasons.most_common(5)))
    ensure(s["requests"] > 1000, f"too little load to judge: {line}")
    ensure(not s["lost_articles"] and not s["lost_comments"],
           f"{line}; lost: {s['lost_articles'][:5]} {s['lost_comments'][:5]}")
    ensure(ratio < 0.001, line + detail)
    ensure(len(back) > 0, f"{line}; the restarted node got no traffic back")
    return line + detail


# === 7. Redis stopped, then back =============================================================
def readiness(addr: str) -> tuple[int, dict]:
    status, text = node_get(addr, "/readyz")
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, {"raw": text}


def check_redis_down(args) -> str:
    notes = []
    # Readiness on every node: 200 "degraded", redis down, database up.
    for addr in ENV.nodes:
        deadline = time.monotonic() + 10
        while True:
            status, body = readiness(addr)
            checks = {c["name"]: c["status"] for c in body.get("checks", [])}
            if status == 200 and body.get("status") == "degraded" and checks.get("redis") == "down":
                break
            ensure(time.monotonic() < deadline,
                   f"{node_name(addr)} /readyz while Redis is down: {status} {body}")
            time.sleep(0.5)
        ensure(checks.get("database") == "up", f"{node_name(addr)}: {body}")
    notes.append("/readyz 200 degraded (redis down, database up) on 3/3 nodes")
    # Reads are still served (from the database).
    reader = Client(args.source, "rd")
    reads = [reader.request("GET", p) for p in ("/api/articles", "/api/tags",
                                                "/api/articles?limit=5") * 4]
    nodes = served_by([r.request_id for r in reads])
    ensure(all(r.status == 200 for r in reads), f"reads: {[r.status for r in reads]}")
    ensure(len(set(nodes)) == 3, f"reads did not reach all nodes: {nodes}")
    notes.append(f"{len(reads)} reads 200 ({spread(nodes)})")
    # Writes are read fresh everywhere, even without the shared cache.
    w = Client(args.source, "rd")
    name = f"redis{ENV.run}"
    w.sign_up(name, f"{name}@example.com")
    slug = w.publish("Written while Redis is down")["slug"]
    r = w.request("PUT", f"/api/articles/{slug}", {"article": {"title": "Updated while Redis is down"}})
    ensure(r.status == 200, f"update without Redis: {r}")
    titles = [reader.request("GET", f"/api/articles?author={name}").json()["articles"][0]["title"]
              for _ in range(3)]
    ensure(set(titles) == {"Updated while Redis is down"}, f"stale without Redis: {titles}")
    write_json(os.path.join(STATE, "redis-writer.json"), {"username": name, "token": w.token,
                                                           "slug": slug})
    notes.append("write read fresh on 3/3 nodes")
    # Rate limits in the `local` fail mode: each node limits on its own.
    n = args.limit
    statuses, per_node, seconds = sign_in_burst(args.limit_source, 3 * n + 15)
    allowed = per_node["allowed"]
    ensure(set(statuses) <= {401, 429}, f"unexpected answers: {dict(statuses)}")
    ensure(sorted(allowed.values()) == [n, n, n] and statuses[401] == 3 * n,
           f"fail mode local: expected {n} allowed on each node, got {allowed} "
           f"({dict(statuses)}, sent per node {per_node['all']})")
    notes.append(f"fail mode local: {3 * n + 15} sign-ins -> {n} allowed on each node "
                 f"({spread_dict(allowed)}), {statuses[429]} x 429")
    return "; ".join(notes)


def check_redis_back(args) -> str:
    ensure(not args.gone.strip(), f"nodes gone or restarted during the outage: {args.gone}")
    t0 = time.monotonic()
    pending = set(ENV.nodes)
    while pending and time.monotonic() - t0 < args.timeout:
        for addr in list(pending):
            status, body = readiness(addr)
            if status == 200 and body.get("status") == "ready":
                pending.discard(addr)
        time.sleep(0.2)
    ensure(not pending, f"still not ready {args.timeout} s after Redis returned: "
           f"{[(node_name(a), readiness(a)) for a in pending]}")
    ready_after = time.monotonic() - t0
    # The cache works again and stays coherent: cached on all nodes, then written.
    info = json.load(open(os.path.join(STATE, "redis-writer.json")))
    w = Client(args.source, "rb")
    w.token = info["token"]
    reader = Client(args.source, "rb")
    path = f"/api/articles?author={info['username']}"
    for _ in range(3):
        reader.request("GET", path)
    r = w.request("PUT", f"/api/articles/{info['slug']}", {"article": {"title": "After Redis returned"}})
    ensure(r.status == 200, f"update after recovery: {r}")
    reads = [reader.request("GET", path) for _ in range(3)]
    titles = [x.json()["articles"][0]["title"] for x in reads]
    ensure(set(titles) == {"After Redis returned"}, f"stale after recovery: {titles}")
    # Shared rate limits again: exactly N across the three nodes.
    n = args.limit
    statuses, per_node, seconds = sign_in_burst(args.limit_source, n + 5)
    ensure(statuses[401] == n and statuses[429] == 5,
           f"shared limit after recovery: {dict(statuses)} per node {per_node}")
    return (f"/readyz ready on 3/3 nodes {ready_after:.1f} s after Redis returned, same "
            f"processes (no restart); "
            f"cache coherent again (3/3 fresh after a write); shared limit again: "
            f"{n + 5} sign-ins -> {statuses[401]} allowed, {statuses[429]} x 429")


CHECKS = {
    "gateway": check_gateway,
    "sessions": check_sessions,
    "ratelimit": check_ratelimit,
    "cache": check_cache,
    "jobs": check_jobs,
    "events-setup": check_events_setup,
    "events": check_events,
    "kill-setup": check_kill_setup,
    "kill": check_kill,
    "redis-down": check_redis_down,
    "redis-back": check_redis_back,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("check", choices=CHECKS)
    p.add_argument("--name", help="name on the PASS/FAIL line (default: the check)")
    p.add_argument("--source", default="127.0.0.1", help="loopback address to send from")
    p.add_argument("--limited-source", default="127.0.1.1")
    p.add_argument("--limit-source", default="127.0.0.1")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--victim", default="node2")
    p.add_argument("--restarted-after", default="?")
    p.add_argument("--down-seconds", default="?")
    p.add_argument("--held", default="?")
    p.add_argument("--gone", default="", help="nodes that died or were restarted")
    args = p.parse_args()
    name = args.name or args.check
    t0 = time.monotonic()
    try:
        line = CHECKS[args.check](args)
    except Failed as e:
        print(f"FAIL {name}: {e}", flush=True)
        return 1
    except Exception as e:  # a crash of the check is a failure, with its cause
        import traceback
        traceback.print_exc()
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return 1
    print(f"PASS {name}: {line} [{time.monotonic() - t0:.1f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
