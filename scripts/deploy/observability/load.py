#!/usr/bin/env python3
"""A short load on a real Basalt that touches every route family the Grafana
dashboards show, so that each panel's query has data: sign-up and sign-in
(RealWorld and identity), articles (writes, cached reads, 404s), a GraphQL
query, the chat REST API and its WebSocket, the probes, a connection the
server closes for a slow request head, and the jobs a sign-up enqueues.

Usage: load.py BASE_URL [USERS]   (standard library only; bounded in count)
"""

import base64
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

BASE = sys.argv[1].rstrip("/")
USERS = max(4, int(sys.argv[2])) if len(sys.argv) > 2 else 8
URL = urllib.parse.urlsplit(BASE)
HOST, PORT = URL.hostname, URL.port
sent = 0


def conn():
    return http.client.HTTPConnection(HOST, PORT, timeout=30)


C = conn()


def call(method, path, body=None, token=None, scheme="Token", expect=None):
    """One request on the kept-alive connection; returns (status, json or None)."""
    global C, sent
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    for attempt in range(2):
        try:
            C.request(method, path, body=data, headers=headers)
            r = C.getresponse()
            raw = r.read()
            break
        except (http.client.HTTPException, OSError):
            # The server may close a kept-alive connection: reconnect once.
            C.close()
            C = conn()
            if attempt:
                raise
    sent += 1
    if expect is not None and r.status not in expect:
        sys.exit(f"{method} {path}: {r.status} (expected {expect}): {raw[:300]!r}")
    try:
        return r.status, json.loads(raw) if raw else None
    except ValueError:
        return r.status, None


def slow_head():
    """A connection that sends no request: the server closes it after
    http.header_read_timeout_secs (basalt_http_connections_closed_total)."""
    s = socket.create_connection((HOST, PORT))
    s.settimeout(10)
    try:
        closed = s.recv(1) == b""
    except OSError:
        closed = True
    s.close()
    if not closed:
        sys.exit("the server did not close a connection that sent nothing")


def chat_socket(token):
    """A WebSocket on /api/chat/ws: authenticate with the first frame (see
    docs/chat-protocol.md), wait for `authenticated`, close cleanly."""
    s = socket.create_connection((HOST, PORT))
    s.settimeout(10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            "GET /api/chat/ws HTTP/1.1\r\n"
            f"Host: {HOST}:{PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("chat socket: closed during the upgrade")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        sys.exit(f"chat socket: no upgrade: {head[:200]!r}")
    buf = head.split(b"\r\n\r\n", 1)[1]

    def send(opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        else:
            header += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def frame():
        nonlocal buf
        while True:
            if len(buf) >= 2:
                n = buf[1] & 0x7F
                off = 2
                if n == 126:
                    n, off = int.from_bytes(buf[2:4], "big"), 4
                elif n == 127:
                    n, off = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) >= off + n:
                    op, payload, buf = buf[0] & 0x0F, buf[off : off + n], buf[off + n :]
                    return op, payload
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("chat socket: closed before `authenticated`")
            buf += chunk

    send(0x1, json.dumps({"type": "auth", "token": token}).encode())
    deadline = time.time() + 10
    while time.time() < deadline:
        op, payload = frame()
        if op == 0x1 and json.loads(payload).get("type") == "authenticated":
            break
    else:
        sys.exit("chat socket: no `authenticated` frame")
    send(0x8, (1000).to_bytes(2, "big"))  # close: normal
    try:
        while frame()[0] != 0x8:
            pass
    except (OSError, SystemExit):
        pass
    s.close()


def main():
    slow_head()
    call("GET", "/healthz", expect={200})
    call("GET", "/readyz", expect={200})
    tag = f"{int(time.time() * 1000) % 10**9}"
    users = []
    for i in range(USERS):
        name = f"obs{tag}u{i}"
        password = f"grafana-{tag}-panel-{i}-basalt"
        _, body = call(
            "POST",
            "/api/users",
            {"user": {"username": name, "email": f"{name}@example.com", "password": password}},
            expect={201},
        )
        users.append((name, password, body["user"]["token"]))
    # Identity's own sign-up (enqueues the verification mail job too).
    call(
        "POST",
        "/api/auth/register",
        {"email": f"obs{tag}id@example.com", "username": f"obs{tag}id", "password": f"identity-{tag}-basalt"},
        expect={201},
    )
    for name, password, _ in users:
        call("POST", "/api/users/login", {"user": {"email": f"{name}@example.com", "password": password}}, expect={200})
    call("POST", "/api/auth/login", {"email": f"obs{tag}id@example.com", "password": f"identity-{tag}-basalt"}, expect={200})
    # Failures a dashboard shows as 4xx.
    call("POST", "/api/users/login", {"user": {"email": f"{users[0][0]}@example.com", "password": "wrong-password-0"}}, expect={401, 403, 422})
    call("GET", "/api/user", expect={401})
    slugs = []
    for name, _, token in users:
        call("GET", "/api/user", token=token, expect={200})
        for j in range(2):
            _, body = call(
                "POST",
                "/api/articles",
                {"article": {"title": f"{name} on dashboards {j}", "description": "panels", "body": "Every panel has data.", "tagList": ["obs", f"t{j}"]}},
                token=token,
                expect={201},
            )
            slugs.append(body["article"]["slug"])
    token = users[0][2]
    for slug in slugs[:4]:
        call("POST", f"/api/articles/{slug}/favorite", token=users[1][2], expect={200})
        call("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "Seen on the dashboard."}}, token=token, expect={200, 201})
        call("GET", f"/api/articles/{slug}/comments", expect={200})
    # Reads, repeated so that the cache has hits as well as misses.
    for _ in range(12):
        call("GET", "/api/articles?limit=10", expect={200})
        call("GET", "/api/tags", expect={200})
        for slug in slugs[:6]:
            call("GET", f"/api/articles/{slug}", expect={200})
        call("GET", "/api/articles/no-such-article", expect={404})
        call("GET", "/api/profiles/" + users[2][0], expect={200})
    call("GET", "/api/articles/feed", token=token, expect={200})
    call("POST", f"/api/profiles/{users[3][0]}/follow", token=token, expect={200})
    # GraphQL: a query that runs, and one that does not parse.
    call("POST", "/graphql", {"query": "{ tags }"}, expect={200})
    call("POST", "/graphql", {"query": "{ tags"}, expect={200, 400})
    # Chat: a room, a message, and a socket.
    _, room = call("POST", "/api/chat/rooms", {"name": f"obs {tag}", "kind": "public"}, token=token, scheme="Bearer", expect={201})
    room_id = room["room"]["id"]
    call("POST", f"/api/chat/rooms/{room_id}/messages", {"body": "hello, Prometheus"}, token=token, scheme="Bearer", expect={200, 201})
    call("GET", f"/api/chat/rooms/{room_id}/messages", token=token, scheme="Bearer", expect={200})
    chat_socket(token)
    call("GET", "/readyz", expect={200})
    print(f"load: {sent} requests, {len(users) + 1} sign-ups, {len(slugs)} articles, 1 chat socket")


if __name__ == "__main__":
    main()
