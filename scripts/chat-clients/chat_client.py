"""Basalt's chat protocol (docs/chat-protocol.md) spoken from outside the
codebase, with PyPI `websockets`, against a running server:

- versioning and authentication: the subprotocol echoed (400 for another),
  `ping` and only `auth` before authenticating, the `auth` frame, the
  `Authorization: Bearer` upgrade, the session cookie with and without an
  allowed Origin, no token in the URL, 4001 for a bad token and for none
  within 10 s;
- subscribe, send with `ack` offsets, `message` frames with the documented
  (camelCase) message object on another user's connection, threads,
  mentions, idempotent sends by nonce, unsubscribe;
- `edited`, `deleted` and `reaction` events; `typing` and `presence`
  (away, online, offline once the TTL runs out);
- `read` frames on the user's other connection, unread and mention counts
  that agree with REST, read positions that only move forward;
- error codes (UNAUTHENTICATED, NOT_FOUND, FORBIDDEN, BAD_USER_INPUT,
  RATE_LIMITED) and close codes (1003, 1008, 1009, 4001);
- resuming: a connection dropped in the middle of a burst of messages
  resubscribes with `since` and gets exactly the missed offsets, in order, no
  duplicate, each in its current state; a wrong epoch answers
  `recovered: false`;
- REST history paged forwards and backwards matches what the socket
  delivered, field by field.

Set-up goes through REST (sign-up with RealWorld's POST /api/users, rooms).
The server must allow the burst's sends per minute and run with a short
presence TTL (scripts/chat-clients.sh sets both).

Usage: python chat_client.py BASE_URL [BURST]
Exits 0 when every check passed, 1 at the first failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import datetime

from websockets.exceptions import InvalidStatus

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chatlib import WAIT, Api, Failed, Socket, check, consecutive  # noqa: E402

# The message object's fields on the socket (camelCase).
WIRE_FIELDS = {"id", "room", "offset", "author", "body", "bodyHtml", "replyTo", "createdAt",
               "editedAt", "deleted", "reactions", "mentions"}
# The same on REST (snake_case).
REST_NAMES = {"bodyHtml": "body_html", "replyTo": "reply_to", "createdAt": "created_at",
              "editedAt": "edited_at"}


def rfc3339(value, what):
    check(isinstance(value, str) and "T" in value, f"{what} is an RFC 3339 string", value)
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise Failed(f"{what} is an RFC 3339 string: {error}; got {value!r}") from None


def instant_ms(value: str) -> datetime:
    """An RFC 3339 time, to the millisecond."""
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def wire_message(frame: dict, what: str) -> dict:
    """Checks a `message` frame's shape; returns its message object."""
    check({"room", "offset", "epoch", "message"} <= set(frame), f"{what}: a `message` frame's fields",
          frame)
    m = frame["message"]
    check(WIRE_FIELDS <= set(m), f"{what}: the message object has {sorted(WIRE_FIELDS)}", m)
    check(m["offset"] == frame["offset"] and m["room"] == frame["room"],
          f"{what}: the object's offset and room are the frame's", frame)
    check({"id", "username"} <= set(m["author"]) and "image" in m["author"],
          f"{what}: author {{id, username, image}}", m["author"])
    rfc3339(m["createdAt"], f"{what}: createdAt")
    return m


class Run:
    def __init__(self, base: str, burst: int):
        self.base, self.burst = base.rstrip("/"), burst
        self.ws_url = self.base.replace("http", "ws", 1) + "/api/chat/ws"
        self.api = Api(self.base)
        self.notes: list[str] = []
        self.t0 = time.monotonic()

    def ok(self, section: str, what: str):
        print(f"ok   {section}: {what} [{time.monotonic() - self.t0:.1f} s]", flush=True)

    async def open(self, name: str, user: dict | None, **kwargs) -> Socket:
        return await Socket.open(self.ws_url, name, user["token"] if user else None, **kwargs)

    async def refused(self, what: str, status: int, **kwargs):
        try:
            sock = await Socket.open(self.ws_url, what, None, **kwargs)
        except InvalidStatus as e:
            got = e.response.status_code
            check(got == status, f"{what}: the upgrade is refused with {status}", got)
            return
        await sock.close()
        raise Failed(f"{what}: the upgrade was accepted, not refused with {status}")

    # --- set-up over REST --------------------------------------------------------------------
    async def setup(self):
        self.ann, self.bob, self.cat = [await self.api.sign_up(p) for p in ("ann", "bob", "cat")]
        api = self.api
        lobby = await api("POST", "/api/chat/rooms", {"name": "lobby", "kind": "public"},
                          self.ann["token"], want=201)
        self.lobby = lobby["room"]
        for user in (self.bob, self.cat):
            await api("POST", f"/api/chat/rooms/{self.lobby['id']}/join", None, user["token"], 200)
        burst = await api("POST", "/api/chat/rooms", {"name": "burst", "kind": "public"},
                          self.ann["token"], want=201)
        self.burst_room = burst["room"]
        await api("POST", f"/api/chat/rooms/{self.burst_room['id']}/join", None, self.bob["token"],
                  200)
        private = await api("POST", "/api/chat/rooms", {"name": "secret", "kind": "private"},
                            self.ann["token"], want=201)
        self.private = private["room"]
        self.ok("set-up", "3 users signed up with POST /api/users; rooms made and joined over REST")

    # --- versioning and authentication -------------------------------------------------------
    async def auth_timeout(self) -> float:
        sock = await self.open("silent", None)
        t = time.monotonic()
        code, _ = await sock.close_code(timeout=20)
        check(code == 4001, "a connection that never authenticates is closed with 4001", code)
        return time.monotonic() - t

    async def authentication(self):
        s = "auth"
        await self.refused("another protocol version", 400, subprotocols=("basalt.chat.v0",))
        plain = await self.open("no protocol offered", self.ann, subprotocols=())
        check(plain.ws.subprotocol is None, "no subprotocol offered: none chosen", plain.ws.subprotocol)
        await plain.close()
        a = await self.open("ann", None)
        check(a.ws.subprotocol == "basalt.chat.v1", "the server echoes basalt.chat.v1",
              a.ws.subprotocol)
        await a.send(type="ping")
        await a.expect_type("pong")
        await a.send(type="subscribe", id="early", room=self.lobby["id"])
        err = await a.expect_type("error", id="early")
        check(err.get("code") == "UNAUTHENTICATED", "a subscribe before `auth`: UNAUTHENTICATED", err)
        user = await a.auth(self.ann["token"])
        check(user["username"] == self.ann["username"], "`authenticated` names ann", user)
        self.ann["id"] = user["id"]
        self.a = a
        self.ok(s, "subprotocol echoed (400 for basalt.chat.v0), ping/pong and UNAUTHENTICATED "
                   "before auth, `auth` frame -> `authenticated`")

        bad = await self.open("bad token", None)
        await bad.send(type="auth", token="not-a-token")
        code, _ = await bad.close_code()
        check(code == 4001, "a bad token closes with 4001", code)
        forged = await self.open("forged token", None)
        await forged.send(type="auth", token=self.ann["token"][:-4] + "AAAA")
        code2, _ = await forged.close_code()
        check(code2 == 4001, "a token with a bad signature closes with 4001", code2)
        # A token in the URL is not a credential.
        in_url = await Socket.open(f"{self.ws_url}?token={self.ann['token']}", "token in URL")
        await in_url.send(type="subscribe", id=1, room=self.lobby["id"])
        err = await in_url.expect_type("error", id=1)
        check(err.get("code") == "UNAUTHENTICATED", "a token in the URL does not authenticate", err)
        await in_url.close()
        bearer = await self.open("bearer", None,
                                 headers={"Authorization": f"Bearer {self.bob['token']}"})
        sub = await bearer.subscribe(self.lobby["id"], 1)
        check(sub["type"] == "subscribed", "a Bearer upgrade subscribes without an `auth` frame", sub)
        await bearer.close()
        self.ok(s, "4001 for a bad and a forged token; no token in the URL; Bearer on the upgrade")

        # The session cookie: only with an allowed Origin.
        status, body, headers = await asyncio.to_thread(
            self.api.call, "POST", "/api/auth/login",
            {"email": self.cat["email"], "password": "Correct-Horse-Battery-9"})
        check(status == 200 and "set-cookie" in headers, "cookie sign-in", body)
        cookie = headers["set-cookie"].split(";", 1)[0]
        await self.refused("a cookie upgrade without Origin", 403, headers={"Cookie": cookie})
        await self.refused("a cookie upgrade from another site", 403, headers={"Cookie": cookie},
                           origin="https://evil.example")
        same = await self.open("cookie", None, headers={"Cookie": cookie}, origin=self.base)
        hello = await same.expect_type("authenticated")
        check(hello["user"]["username"] == self.cat["username"], "the cookie's user", hello)
        await same.close()
        self.ok(s, "session cookie: 403 without Origin and from another site, accepted from "
                   f"{self.base}")

    # --- messages ----------------------------------------------------------------------------
    async def messaging(self):
        s, room, a = "messages", self.lobby["id"], self.a
        self.b = b = await self.open("bob", self.bob)
        self.bob["id"] = b.user["id"]
        for sock, i in ((a, 1), (b, 2)):
            sub = await sock.subscribe(room, i)
            check(sub["type"] == "subscribed" and sub["room"] == room and sub["offset"] == 0
                  and isinstance(sub["epoch"], str) and sub["epoch"] == self.lobby["epoch"]
                  and sub["recovered"] is False,
                  "`subscribed` with the room, its epoch (the REST room's), offset 0 and "
                  "recovered false (no `since`)", sub)
        await a.send(type="send", id=10, room=room, body="Hello **world**")
        ack1 = await a.expect_type("ack", id=10)
        await a.send(type="send", id=11, room=room, body=f"Hi @{self.bob['username']}",
                     reply_to=ack1["message_id"])
        ack2 = await a.expect_type("ack", id=11)
        check(ack1["offset"] == 1 and ack2["offset"] == 2 and isinstance(ack1["message_id"], int),
              "acks carry offsets 1, 2 and the message ids", [ack1, ack2])
        await b.until("2 messages", lambda: len(b.offsets(room)) >= 2)
        m1, m2 = (wire_message(f, "bob's message") for f in b.messages[room][:2])
        check([m1["offset"], m2["offset"]] == [1, 2] and m1["id"] == ack1["message_id"],
              "bob receives offsets 1, 2 with the acked ids", [m1, m2])
        check(m1["author"]["username"] == self.ann["username"]
              and m1["author"]["id"] == self.ann["id"], "the author is ann", m1["author"])
        check(m1["body"] == "Hello **world**" and "<strong>world</strong>" in m1["bodyHtml"],
              "bodyHtml is the Markdown rendered", m1)
        check(m1["replyTo"] is None and m2["replyTo"] == ack1["message_id"],
              "replyTo: the thread's parent", m2)
        check(m2["mentions"] == [self.bob["username"]], "mentions names bob", m2)
        check(m1["deleted"] is False and m1["editedAt"] is None and m1["reactions"] == [],
              "a new message: not deleted, not edited, no reactions", m1)
        check(b.messages[room][0]["epoch"] == self.lobby["epoch"], "the frame's epoch", b.messages[room][0])
        await a.until("ann's own 2 messages", lambda: a.offsets(room) == [1, 2])
        self.ok(s, "subscribe, send -> ack offsets 1, 2; bob's `message` frames carry the documented "
                   "camelCase object (Markdown, thread, mention); the sender gets them too")

        # The same nonce twice: one message, the same offset.
        nonce = uuid.uuid4().hex
        await b.send(type="send", id=20, room=room, body="once", nonce=nonce)
        first = await b.expect_type("ack", id=20)
        await b.send(type="send", id=21, room=room, body="once", nonce=nonce)
        again = await b.expect_type("ack", id=21)
        check(first["offset"] == again["offset"] == 3 and first["message_id"] == again["message_id"],
              "the same nonce again acks the first message", [first, again])
        status, page, _ = await asyncio.to_thread(self.api.call, "POST",
                                                  f"/api/chat/rooms/{room}/messages",
                                                  {"body": "once", "nonce": nonce}, self.bob["token"])
        check(status in (200, 201) and page["message"]["offset"] == 3,
              "the nonce over REST returns the first message too", page)
        await b.send(type="send", id=22, room=room, body="twice")
        fourth = await b.expect_type("ack", id=22)
        check(fourth["offset"] == 4, "the next message is offset 4 (no copy was posted)", fourth)
        await a.until("offsets 1-4 for ann", lambda: len(a.offsets(room)) >= 4)
        await asyncio.sleep(0.3)
        check(a.offsets(room) == [1, 2, 3, 4], "ann receives 3 and 4 once each", a.offsets(room))
        self.ok(s, "a resent nonce (socket and REST) acks offset 3 again; nothing posted twice")

        # Edits, reactions, deletions: events, pushed to the room.
        mid = ack1["message_id"]
        api, token = self.api, self.ann["token"]
        await api("PATCH", f"/api/chat/rooms/{room}/messages/{mid}", {"body": "Hello *there*"}, token, 200)
        ed = await b.expect_type("edited", room=room)
        em = ed["message"]
        check(em["id"] == mid and em["body"] == "Hello *there*" and "<em>there</em>" in em["bodyHtml"]
              and em["editedAt"] is not None, "`edited` carries the new state, with editedAt", ed)
        await api("POST", f"/api/chat/rooms/{room}/messages/{mid}/reactions", {"emoji": "👍"},
                  self.bob["token"], 200)
        re_ = await a.expect_type("reaction", room=room)
        check(re_["message_id"] == mid and re_["emoji"] == "👍" and re_["added"] is True
              and re_["user"]["username"] == self.bob["username"], "`reaction` added by bob", re_)
        await api("DELETE", f"/api/chat/rooms/{room}/messages/{ack2['message_id']}", None, token, 204)
        de = await b.expect_type("deleted", room=room)
        check(de["message_id"] == ack2["message_id"] and de["offset"] == 2, "`deleted` with its offset", de)
        self.ok(s, "`edited` (new body, editedAt), `reaction` (emoji, user, added) and `deleted` "
                   "(id, offset) events")

        # Unsubscribe: no more of the room's messages.
        c = await self.open("cat", self.cat)
        sub = await c.subscribe(room, 1)
        check(sub["type"] == "subscribed" and sub["offset"] == 4, "cat subscribes at offset 4", sub)
        await c.send(type="unsubscribe", id=2, room=room)
        await b.send(type="send", id=23, room=room, body="after cat left")
        await b.expect_type("ack", id=23)
        await a.until("offset 5", lambda: 5 in a.offsets(room))
        await asyncio.sleep(0.3)
        check(c.offsets(room) == [], "no message after unsubscribe", c.offsets(room))
        self.c = c

    # --- typing and presence -----------------------------------------------------------------
    async def typing_presence(self):
        s, room, a, b, c = "typing/presence", self.lobby["id"], self.a, self.b, self.c
        await b.send(type="typing", room=room)
        t = await a.expect_type("typing", room=room)
        check(t["user"]["username"] == self.bob["username"], "ann sees bob typing", t)
        # Over the limit (30 per minute by default): RATE_LIMITED, the frame dropped.
        for i in range(40):
            await b.send(type="typing", id=f"t{i}", room=room)
        limited = await b.expect("a RATE_LIMITED error",
                                 lambda f: f["type"] == "error" and str(f.get("id", "")).startswith("t"))
        check(limited["code"] == "RATE_LIMITED", "typing over the limit: RATE_LIMITED", limited)
        await asyncio.sleep(0.5)
        refused = 1 + len(b.take("error", code="RATE_LIMITED"))
        heard = 1 + len(a.take("typing", room=room))
        check(heard + refused == 41 and heard <= 31, "each typing frame either relayed or refused "
              f"(relayed {heard}, refused {refused} of 41)")
        # Presence: away, then online again; offline once the TTL runs out.
        await b.send(type="presence", status="away")
        p = await a.expect("bob away", lambda f: f["type"] == "presence"
                           and f["user"]["username"] == self.bob["username"] and f["status"] == "away")
        check(p["user"]["id"] == self.bob["id"], "presence names the user", p)
        await b.send(type="presence", status="online")
        await a.expect("bob online", lambda f: f["type"] == "presence"
                       and f["user"]["username"] == self.bob["username"] and f["status"] == "online")
        await b.send(type="presence", id="p", status="asleep")
        err = await b.expect_type("error", id="p")
        check(err["code"] == "BAD_USER_INPUT", "an unknown status: BAD_USER_INPUT", err)
        gone = time.monotonic()
        await c.close()
        await a.expect("cat offline", lambda f: f["type"] == "presence"
                       and f["user"]["username"] == self.cat["username"] and f["status"] == "offline",
                       timeout=30)
        self.ok(s, f"typing relayed (then {refused} x RATE_LIMITED of 41, {heard} relayed); presence "
                   f"away/online; offline {time.monotonic() - gone:.1f} s after cat's last connection")

    # --- read state --------------------------------------------------------------------------
    async def read_state(self):
        s, room, a, b = "read", self.lobby["id"], self.a, self.b
        for i, body in ((30, f"@{self.ann['username']} look"), (31, "six"), (32, "seven")):
            await b.send(type="send", id=i, room=room, body=body)
            await b.expect_type("ack", id=i)
        unread = await self.api("GET", "/api/chat/unread", None, self.ann["token"], 200)
        mine = {r["room"]: r for r in unread["rooms"]}[room]
        # ann's own sends marked offset 2 read; 3..8 are bob's, one mentioning her.
        check(mine["last_offset"] == 8 and mine["read_offset"] == 2 and mine["unread"] == 6
              and mine["mentions"] == 1, "REST unread: 6 unread, 1 mention", mine)
        a2 = await self.open("ann's second connection", self.ann)
        a.take("read")
        await a2.send(type="read", room=room, offset=6)
        for sock in (a, a2):
            r = await sock.expect_type("read", room=room)
            check(r["offset"] == 6 and r["unread"] == 2 and r["mentions"] == 0,
                  f"{sock.name}: `read` offset 6, unread 2, mentions 0", r)
        await a2.send(type="read", room=room, offset=4)
        await asyncio.sleep(0.5)
        unread = await self.api("GET", "/api/chat/unread", None, self.ann["token"], 200)
        mine = {r["room"]: r for r in unread["rooms"]}[room]
        check(mine["read_offset"] == 6 and mine["unread"] == 2,
              "a lower read offset changes nothing", mine)
        await self.api("PUT", f"/api/chat/rooms/{room}/read", {"offset": 8}, self.ann["token"], 200)
        r = await a2.expect("`read` offset 8", lambda f: f["type"] == "read" and f["offset"] == 8)
        check(r["unread"] == 0, "REST read pushes `read` to the socket", r)
        await a2.close()
        self.ok(s, "REST unread 6 / 1 mention; `read` from one connection reaches both (offset 6, "
                   "unread 2, mentions 0); moving back changes nothing; REST PUT read pushes too")

    # --- errors and close codes --------------------------------------------------------------
    async def errors(self):
        s, room, b = "errors", self.lobby["id"], self.b
        cases = [
            ("NOT_FOUND", {"type": "subscribe", "room": str(uuid.uuid4())}),
            # A private room one is not in is not found (its existence is not told).
            ("NOT_FOUND", {"type": "subscribe", "room": self.private["id"]}),
            ("NOT_FOUND", {"type": "send", "room": self.private["id"], "body": "let me in"}),
            ("BAD_USER_INPUT", {"type": "subscribe", "room": "not-a-room-id"}),
            ("BAD_USER_INPUT", {"type": "send", "room": room, "body": ""}),
            ("BAD_USER_INPUT", {"type": "send", "room": room, "body": "x" * 4001}),
        ]
        got = []
        for i, (code, frame) in enumerate(cases):
            await b.send(id=f"e{i}", **frame)
            err = await b.expect_type("error", id=f"e{i}")
            check(err["code"] == code and isinstance(err.get("message"), str),
                  f"{frame['type']} ({code} expected)", err)
            got.append(code)
        # A muted member may read, not send.
        await self.api("PUT", f"/api/chat/rooms/{room}/members/{self.bob['username']}",
                       {"muted": True}, self.ann["token"], 200)
        await b.send(type="send", id="muted", room=room, body="can I speak?")
        err = await b.expect_type("error", id="muted")
        check(err["code"] == "FORBIDDEN", "a muted member's send: FORBIDDEN", err)
        await self.api("PUT", f"/api/chat/rooms/{room}/members/{self.bob['username']}",
                       {"muted": False}, self.ann["token"], 200)
        # A banned user may do neither.
        await self.api("POST", f"/api/chat/rooms/{room}/bans", {"username": self.cat["username"]},
                       self.ann["token"], 200)
        c = await self.open("cat (banned)", self.cat)
        for i, frame in enumerate(({"type": "subscribe", "room": room},
                                   {"type": "send", "room": room, "body": "still here?"})):
            await c.send(id=f"ban{i}", **frame)
            err = await c.expect_type("error", id=f"ban{i}")
            check(err["code"] == "FORBIDDEN", f"a banned user's {frame['type']}: FORBIDDEN", err)
        await c.close()
        self.ok(s, f"error frames with the frame's id: {', '.join(got)}; FORBIDDEN for a muted "
                   "member's send, a banned user's subscribe and send")

        # A frame that is not JSON, or of a type the server does not know: an
        # error frame, and the connection stays open.
        for what, data, id_ in (("not JSON", "{nope", None),
                                ("an unknown type", '{"type":"dance","id":"d"}', "d"),
                                ("a subscribe without its room", '{"type":"subscribe","id":"r"}', "r")):
            await b.send_raw(data)
            err = await b.expect_type("error", id=id_)
            check(err["code"] == "BAD_USER_INPUT", f"{what}: BAD_USER_INPUT", err)
        await b.send(type="ping")
        await b.expect_type("pong")
        closes = []
        for what, data, want in (("a binary frame", b"\x00\x01", 1003),
                                 ("a frame over 64 KiB", json.dumps({"type": "ping", "pad": "x" * 70000}),
                                  1009)):
            sock = await self.open(what, self.bob)
            await sock.send_raw(data)
            code, _ = await sock.close_code()
            check(code == want, f"{what} closes with {want}", code)
            closes.append(f"{what} {code}")
        self.ok(s, "not JSON, an unknown type, a missing field: BAD_USER_INPUT, still open; "
                   "close codes: " + ", ".join(closes))

    # --- the burst, the drop, the resume -----------------------------------------------------
    async def resume(self):
        s, room, a = "resume", self.burst_room["id"], self.a
        epoch, n = self.burst_room["epoch"], self.burst
        b = await self.open("bob (burst)", self.bob)
        for sock, i in ((a, 100), (b, 101)):
            sub = await sock.subscribe(room, i)
            check(sub["type"] == "subscribed" and sub["offset"] == 0, "subscribed to the burst room", sub)
        acks: dict[int, dict] = {}
        window = asyncio.Semaphore(64)  # sends in flight

        async def sender():
            for i in range(n):
                await window.acquire()
                await a.send(type="send", id=1000 + i, room=room, body=f"burst {i}",
                             nonce=f"burst-{i}")

        async def acker():
            while len(acks) < n:
                f = await a.expect("an ack", lambda f: f["type"] in ("ack", "error")
                                   and isinstance(f.get("id"), int) and f["id"] >= 1000, timeout=30)
                check(f["type"] == "ack", "every burst send is acked", f)
                acks[f["id"] - 1000] = f
                window.release()

        t0 = time.monotonic()
        sending = asyncio.gather(sender(), acker())
        drop_at = n // 5
        await b.until(f"{drop_at} burst messages for bob", lambda: len(b.offsets(room)) >= drop_at,
                      timeout=60)
        b.abort()
        kept = b.messages[room][:]
        last = kept[-1]
        check(consecutive([m["offset"] for m in kept], 1, last["offset"]) is None,
              "before the drop, bob had 1..last in order", consecutive(b.offsets(room), 1, last["offset"]))
        acked_at_drop = len(acks)
        # While bob is away: one missed message is deleted; the replay must show the tombstone.
        await a.until("the ack after bob's last", lambda: any(x["offset"] == last["offset"] + 1
                                                              for x in acks.values()), timeout=30)
        missed = next(x for x in acks.values() if x["offset"] == last["offset"] + 1)
        await self.api("DELETE", f"/api/chat/rooms/{room}/messages/{missed['message_id']}", None,
                       self.ann["token"], 204)
        b2 = await self.open("bob (resumed)", self.bob)
        since = {"offset": last["offset"], "epoch": last["epoch"]}
        sub = await b2.subscribe(room, 102, since)
        acked_at_resume = len(acks)
        check(sub["type"] == "subscribed" and sub["recovered"] is True and sub["epoch"] == epoch,
              "resuming with since: recovered true", sub)
        await sending
        burst_seconds = time.monotonic() - t0
        offsets = sorted(x["offset"] for x in acks.values())
        check(offsets == list(range(1, n + 1)), "the burst's acks are offsets 1..N", offsets[:10])
        await b2.until(f"offset {n} for the resumed bob", lambda: n in b2.offsets(room), timeout=60)
        await asyncio.sleep(0.5)
        got = b2.offsets(room)
        wrong = consecutive(got, last["offset"] + 1, n)
        check(wrong is None, f"after resuming: exactly {last['offset'] + 1}..{n}, in order", wrong)
        tomb = b2.messages[room][0]["message"]
        check(tomb["deleted"] is True and tomb["body"] == "" and tomb["bodyHtml"] == "",
              "the replayed message deleted meanwhile is a tombstone", tomb)
        for f in b2.messages[room]:
            wire_message(f, "a replayed message")
        await a.until(f"ann's {n} burst messages", lambda: len(a.offsets(room)) >= n, timeout=30)
        check(consecutive(a.offsets(room), 1, n) is None, "the sender's own subscription: 1..N once",
              consecutive(a.offsets(room), 1, n))
        bob_all = kept + b2.messages[room]
        self.ok(s, f"{n} messages sent ({burst_seconds:.1f} s, 64 in flight); bob dropped (no close "
                   f"frame) at offset {last['offset']} with {acked_at_drop} acked, resumed at "
                   f"{acked_at_resume} acked: recovered true, then exactly "
                   f"{last['offset'] + 1}..{n} in order, no duplicate; offset "
                   f"{missed['offset']} (deleted meanwhile) replayed as a tombstone")

        # A wrong epoch: recovered false, only what comes after the subscribed offset.
        b3 = await self.open("bob (wrong epoch)", self.bob)
        sub = await b3.subscribe(room, 103, {"offset": 5, "epoch": "not-the-epoch"})
        check(sub["type"] == "subscribed" and sub["recovered"] is False and sub["offset"] == n
              and sub["epoch"] == epoch, "a wrong epoch: recovered false at the newest offset", sub)
        await a.send(type="send", id=104, room=room, body="after the burst")
        await a.expect_type("ack", id=104)
        await b3.until("the next message", lambda: b3.offsets(room), timeout=WAIT)
        await asyncio.sleep(0.3)
        check(b3.offsets(room) == [n + 1], "then only the messages after it", b3.offsets(room)[:5])
        await b3.close()
        await b2.close()
        self.ok(s, f"a wrong epoch: recovered false at offset {n}, then only offset {n + 1}")
        await self.history(room, bob_all, n)

    async def history(self, room: str, delivered: list[dict], n: int):
        s = "history"
        token = self.bob["token"]
        forward, after, pages = [], 0, 0
        while True:
            page = await self.api("GET", f"/api/chat/rooms/{room}/messages?after={after}&limit=200",
                                  None, token, 200)
            pages += 1
            forward += page["messages"]
            check(page["epoch"] == self.burst_room["epoch"] and page["last_offset"] == n + 1,
                  "a page names the epoch and the newest offset", {k: page[k] for k in page if k != "messages"})
            if not page["has_more"]:
                break
            check(page["messages"], "a page with has_more is not empty", page)
            after = page["messages"][-1]["offset"]
        backward, before = [], n + 2
        while True:
            page = await self.api("GET", f"/api/chat/rooms/{room}/messages?before={before}&limit=150",
                                  None, token, 200)
            offs = [m["offset"] for m in page["messages"]]
            check(offs == sorted(offs) and (not offs or offs[-1] == before - 1),
                  "a backward page: oldest first, just below `before`", offs[:3] + offs[-3:])
            backward = page["messages"] + backward
            if not page["has_more"]:
                break
            before = offs[0]
        check([m["offset"] for m in forward] == list(range(1, n + 2)), "forward pages: 1..N+1 once",
              consecutive([m["offset"] for m in forward], 1, n + 1))
        check(backward == forward, "backward pages give the same messages as forward ones")
        mismatches = []
        for frame, rest in zip(delivered, forward):
            wire = frame["message"]
            for field in WIRE_FIELDS:
                w, r = wire.get(field), rest.get(REST_NAMES.get(field, field))
                if field in ("createdAt", "editedAt") and w and r:
                    # The socket writes milliseconds, REST the database's precision.
                    w, r = instant_ms(w), instant_ms(r)
                if w != r:
                    mismatches.append((wire["offset"], field, wire.get(field),
                                       rest.get(REST_NAMES.get(field, field))))
        check(len(delivered) == n, "bob's socket delivered N messages", len(delivered))
        check(not mismatches, "REST history (snake_case) equals what the socket delivered", mismatches[:3])
        self.ok(s, f"{pages} forward pages of 200 and backward pages of 150 give offsets 1..{n + 1}; "
                   f"every field of the {n} delivered messages matches REST (snake_case)")

    async def main(self) -> int:
        await self.setup()
        timeout_task = asyncio.create_task(self.auth_timeout())
        await self.authentication()
        await self.messaging()
        await self.typing_presence()
        await self.read_state()
        await self.errors()
        await self.resume()
        waited = await timeout_task
        self.ok("auth", f"a connection that never authenticated was closed with 4001 after {waited:.1f} s")
        await self.a.close()
        await self.b.close()
        return 0


async def run(base: str, burst: int) -> int:
    r = Run(base, burst)
    try:
        return await r.main()
    except Failed as e:
        print(f"FAIL {e}", flush=True)
        return 1


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    burst = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    t0 = time.monotonic()
    status = asyncio.run(run(sys.argv[1], burst))
    if status == 0:
        print(f"PASS chat protocol (websockets) in {time.monotonic() - t0:.1f} s", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
