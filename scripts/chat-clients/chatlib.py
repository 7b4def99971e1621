"""A small client of Basalt's chat, written from docs/chat-protocol.md alone,
over PyPI `websockets` (asyncio) and the standard library's http.client.

Shared by the chat client test (chat_client.py, one node) and the cluster
test's chat check (scripts/cluster/chat_check.py, through the nginx gateway).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl as ssl_module
import uuid
from collections import deque
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PASSWORD = "Correct-Horse-Battery-9"
SUBPROTOCOL = "basalt.chat.v1"
# How long any single expected frame may take to arrive.
WAIT = 10.0


class Failed(Exception):
    """A check that did not hold."""


def check(condition, what, got=None):
    if not condition:
        if got is None:
            raise Failed(what)
        raise Failed(f"{what}; got {json.dumps(got, default=str)[:600]}")


class Api:
    """REST over http.client: one connection per call (simple, and each call
    may land on another node behind a gateway)."""

    def __init__(self, base: str, ssl_context: ssl_module.SSLContext | None = None,
                 source: str | None = None):
        url = urlsplit(base)
        self.base, self.https = base.rstrip("/"), url.scheme == "https"
        self.host, self.port = url.hostname, url.port or (443 if self.https else 80)
        self.ssl_context, self.source = ssl_context, source

    def call(self, method: str, path: str, body=None, token: str | None = None,
             headers: dict | None = None) -> tuple[int, object, dict]:
        kwargs: dict = {"timeout": 30}
        if self.source:
            kwargs["source_address"] = (self.source, 0)
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ssl_context,
                                               **kwargs)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, **kwargs)
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = f"Token {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            raw = r.read()
            got_headers = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            payload = raw.decode(errors="replace")
        return r.status, payload, got_headers

    async def __call__(self, method: str, path: str, body=None, token: str | None = None,
                       want: int | tuple = (200, 201, 204), headers: dict | None = None):
        """The call, off the event loop (sockets keep being read meanwhile);
        fails unless the status is one of `want`."""
        status, payload, _ = await asyncio.to_thread(self.call, method, path, body, token, headers)
        wanted = want if isinstance(want, tuple) else (want,)
        check(status in wanted, f"{method} {path} answers {wanted}, not {status}", payload)
        return payload

    async def sign_up(self, prefix: str) -> dict:
        """A new account through the RealWorld API: {username, email, token}."""
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        user = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        body = await self("POST", "/api/users", {"user": user}, want=201)
        check(isinstance(body, dict) and body.get("user", {}).get("token"),
              "sign-up returns a token", body)
        return {"username": name, "email": user["email"], "token": body["user"]["token"]}


class Socket:
    """One chat connection. A reader task takes every frame as it comes:
    `message` frames go to `messages[room]` (in arrival order), all others to
    `inbox`, from which `expect` takes the first that matches."""

    def __init__(self, ws, name: str):
        self.ws, self.name = ws, name
        self.inbox: deque[dict] = deque()
        self.messages: dict[str, list[dict]] = {}
        self.closed: tuple[int | None, str] | None = None
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, name: str, token: str | None = None,
                   subprotocols=(SUBPROTOCOL,), headers: dict | None = None,
                   ssl: ssl_module.SSLContext | None = None, source: str | None = None,
                   origin: str | None = None, ping_interval: float | None = 20) -> "Socket":
        """Connects; with `token`, authenticates by the first frame and waits
        for `authenticated`. `ping_interval=None`: the client sends no pings
        of its own (it still answers the server's)."""
        kwargs = {}
        if source:
            kwargs["local_addr"] = (source, 0)
        if ssl is not None:
            kwargs["ssl"] = ssl
        ws = await connect(url, subprotocols=list(subprotocols) or None,
                           additional_headers=headers, origin=origin, proxy=None,
                           open_timeout=WAIT, max_size=None, ping_interval=ping_interval,
                           **kwargs)
        sock = cls(ws, name)
        if token is not None:
            sock.user = await sock.auth(token)
        return sock

    async def auth(self, token: str) -> dict:
        await self.send(type="auth", token=token)
        frame = await self.expect("authenticated", lambda f: f["type"] == "authenticated")
        user = frame.get("user") or {}
        check(isinstance(user.get("id"), str) and isinstance(user.get("username"), str),
              "`authenticated` names the user's id and username", frame)
        return user

    async def _read(self):
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    self.messages.setdefault(frame.get("room"), []).append(frame)
                else:
                    self.inbox.append(frame)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = (self.ws.close_code, self.ws.close_reason or "")
            self._arrived.set()

    async def send(self, **frame):
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, data):
        await self.ws.send(data)

    async def until(self, what: str, condition, timeout: float = WAIT, closed_ok=False):
        """Waits until condition() holds (re-checked at each frame)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = condition()
            if result:
                return result
            if self.closed is not None and not closed_ok:
                raise Failed(f"{self.name}: connection closed {self.closed} while waiting for "
                             f"{what}; last frames {list(self.inbox)[-3:]}")
            left = deadline - loop.time()
            if left <= 0:
                raise Failed(f"{self.name}: no {what} within {timeout:.0f} s; "
                             f"last frames {json.dumps(list(self.inbox)[-3:])[:600]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass

    async def expect(self, what: str, predicate, timeout: float = WAIT) -> dict:
        """Takes the first unread non-message frame that matches."""
        def find():
            for frame in self.inbox:
                if predicate(frame):
                    self.inbox.remove(frame)
                    return frame
            return None
        return await self.until(what, find, timeout)

    async def expect_type(self, kind: str, timeout: float = WAIT, **fields) -> dict:
        desc = f"`{kind}` frame" + (f" with {fields}" if fields else "")
        return await self.expect(
            desc, lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items()),
            timeout)

    def take(self, kind: str, **fields) -> list[dict]:
        """Removes and returns every unread frame of that kind (no waiting)."""
        out = [f for f in self.inbox
               if f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())]
        for f in out:
            self.inbox.remove(f)
        return out

    async def close_code(self, timeout: float = WAIT) -> tuple[int | None, str]:
        await self.until("the close", lambda: self.closed, timeout, closed_ok=True)
        return self.closed

    async def subscribe(self, room: str, id_, since: dict | None = None) -> dict:
        frame = {"type": "subscribe", "id": id_, "room": room}
        if since is not None:
            frame["since"] = since
        await self.send(**frame)
        return await self.expect(f"`subscribed` {id_}",
                                 lambda f: f.get("id") == id_ and f["type"] in ("subscribed", "error"))

    def offsets(self, room: str) -> list[int]:
        return [m["offset"] for m in self.messages.get(room, [])]

    async def close(self):
        await self.ws.close()
        await self._reader

    def abort(self):
        """Drops the connection the hard way (no close frame), as a lost network does."""
        self._reader.cancel()
        self.ws.transport.abort()


def consecutive(offsets: list[int], first: int, last: int) -> str | None:
    """None when offsets are exactly first..last in order, else what is wrong."""
    if offsets == list(range(first, last + 1)):
        return None
    seen, dups, order = set(), 0, 0
    for i, o in enumerate(offsets):
        dups += o in seen
        seen.add(o)
        order += i > 0 and o <= offsets[i - 1]
    missing = sorted(set(range(first, last + 1)) - seen)
    return (f"{len(offsets)} offsets for {first}..{last}: {len(missing)} missing "
            f"(first {missing[:5]}), {dups} duplicates, {order} out of order")
