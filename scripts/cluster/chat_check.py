"""The cluster test's chat check (scripts/cluster-test.sh): chat across nodes,
and a node killed with SIGKILL in the middle of a burst.

Run with the chat clients' virtual environment (PyPI websockets; the client
is scripts/chat-clients/chatlib.py, written from docs/chat-protocol.md).

- Set-up through the gateway (REST over TLS): two users, one public room.
- The sender and one receiver connect to the victim node directly, another
  receiver to a second node: they chat both ways (fan-out between nodes
  through Redis pub/sub).
- The sender sends a burst with a nonce per message, a window in flight; after
  a third of it is acknowledged, the victim is killed (SIGKILL). Its two
  clients reconnect through the nginx gateway (wss, to whichever node it
  picks, never sticky), the sender re-sends what was not acknowledged with the
  same nonce, the receiver resumes with `since` = the last message it had.
- Verdict: every receiver got offsets 1..N exactly once and in order, every
  message of the burst was acknowledged with a distinct offset, the room holds
  exactly N messages (none posted twice), and the gateway's access log shows
  the reconnects upgraded (101) on live nodes.

With --idle, the idle-socket check instead (see `idle`): it holds its sockets
until the file idle.stop appears in the state folder.

Usage: chat_check.py --victim-pid PID --victim node3 --other node1 [--count 1000]
       chat_check.py --idle [--max-idle SECONDS]
Prints one `PASS chat ...` or `FAIL chat ...` line; exits 0 or 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import time
import uuid
from collections import deque
from datetime import datetime, timezone

from websockets.exceptions import ConnectionClosed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "chat-clients"))
from chatlib import Api, Failed, Socket, check, consecutive  # noqa: E402
from load import ENV  # noqa: E402

WINDOW = 32  # sends in flight


class Chat:
    def __init__(self, args):
        self.args = args
        self.ctx = ssl.create_default_context(cafile=ENV.ca)
        self.api = Api(ENV.gateway, self.ctx, args.source)
        self.gateway_ws = ENV.gateway.replace("https", "wss", 1) + "/api/chat/ws"
        self.victim = ENV.nodes[int(args.victim.removeprefix("node")) - 1]
        self.other = ENV.nodes[int(args.other.removeprefix("node")) - 1]
        self.reconnects: list[str] = []  # X-Request-Ids of the upgrades through the gateway
        self.killed_at: float | None = None
        self.resent_bodies: set[str] = set()

    def direct(self, node: str) -> str:
        return f"ws://{node}/api/chat/ws"

    async def open_direct(self, node: str, name: str, user: dict) -> Socket:
        return await Socket.open(self.direct(node), name, user["token"], source=self.args.source)

    async def open_gateway(self, name: str, user: dict) -> Socket:
        """Through nginx, retried while it still finds the dead node (at most 15 s)."""
        deadline = time.monotonic() + 15
        while True:
            rid = f"chat-{uuid.uuid4().hex}"
            try:
                sock = await Socket.open(self.gateway_ws, name, user["token"], ssl=self.ctx,
                                         source=self.args.source, headers={"X-Request-Id": rid})
                self.reconnects.append(rid)
                return sock
            except Exception as e:  # refused, a 502, closed before `authenticated`
                if time.monotonic() > deadline:
                    raise Failed(f"{name} could not reconnect through the gateway: {e!r}")
                await asyncio.sleep(0.2)

    def kill(self):
        if self.killed_at is None:
            os.kill(self.args.victim_pid, signal.SIGKILL)
            self.killed_at, self.killed_wall = time.monotonic(), datetime.now(timezone.utc)
            with open(os.path.join(ENV.state, "chat-killed.at"), "w") as f:
                f.write(f"{time.time()}\n")

    # --- the sender: nonces, a window, re-sends after the kill ---------------------------------
    async def send_burst(self, sock: Socket, room: str, n: int, first_offset: int) -> dict:
        pending = deque(range(n))  # not yet acknowledged, in order
        in_flight: dict[int, int] = {}  # frame id -> message index
        acked: dict[int, dict] = {}
        next_id, resent, reconnected = 1, 0, 0
        while pending or in_flight:
            try:
                while pending and len(in_flight) < WINDOW:
                    i = pending.popleft()
                    in_flight[next_id] = i
                    await sock.send(type="send", id=next_id, room=room, body=f"burst {i}",
                                    nonce=f"{ENV.run}-chat-{i}")
                    next_id += 1
                f = await sock.expect("an ack", lambda f: f["type"] in ("ack", "error")
                                      and f.get("id") in in_flight, timeout=20)
                check(f["type"] == "ack", "every send is acknowledged", f)
                acked[in_flight.pop(f["id"])] = f
                if len(acked) >= n // 3:
                    self.kill()
            except (ConnectionClosed, Failed, OSError) as e:
                if sock.closed is None and not isinstance(e, (ConnectionClosed, OSError)):
                    raise  # a failed check, not a lost connection
                check(self.killed_at is not None, "the sender's connection closes only after the kill",
                      str(e))
                resent += len(in_flight)
                self.resent_bodies |= {f"burst {i}" for i in in_flight.values()}
                pending.extendleft(sorted(in_flight.values(), reverse=True))
                in_flight.clear()
                sock = await self.open_gateway("sender (reconnected)", self.ann)
                reconnected += 1
        offsets = sorted(a["offset"] for a in acked.values())
        check(offsets == list(range(first_offset, first_offset + n)),
              f"the {n} acks are distinct offsets {first_offset}..{first_offset + n - 1}",
              consecutive(offsets, first_offset, first_offset + n - 1))
        await sock.close()
        return {"resent": resent, "reconnected": reconnected}

    # --- a receiver that resumes through the gateway when its node dies ---------------------
    async def receive(self, sock: Socket, room: str, last: int, may_drop: bool) -> dict:
        frames: list[dict] = []
        resumed = []
        while True:
            await sock.until(f"offset {last}", lambda: last in sock.offsets(room) or sock.closed,
                             timeout=60, closed_ok=True)
            frames += sock.messages.get(room, [])
            if sock.closed is None:
                break
            check(may_drop and self.killed_at is not None,
                  f"{sock.name}: closed only by the kill", sock.closed)
            since = {"offset": frames[-1]["offset"], "epoch": frames[-1]["epoch"]}
            sock = await self.open_gateway(f"{sock.name} (resumed)", self.bob)
            sub = await sock.subscribe(room, 2, since)
            check(sub["type"] == "subscribed" and sub["recovered"] is True,
                  f"{sock.name}: resumed with since, recovered", sub)
            resumed.append(since["offset"])
        await sock.close()
        wrong = consecutive([f["offset"] for f in frames], 1, last)
        check(wrong is None, f"{sock.name}: offsets 1..{last} exactly once, in order", wrong)
        return {"resumed": resumed}

    async def run(self) -> str:
        n = self.args.count
        self.ann = await self.api.sign_up("chatann")
        self.bob = await self.api.sign_up("chatbob")
        room = (await self.api("POST", "/api/chat/rooms", {"name": "cluster", "kind": "public"},
                               self.ann["token"], want=201))["room"]["id"]
        await self.api("POST", f"/api/chat/rooms/{room}/join", None, self.bob["token"], 200)
        sender = await self.open_direct(self.victim, "sender", self.ann)
        near = await self.open_direct(self.victim, f"bob on {self.args.victim}", self.bob)
        far = self.far = await self.open_direct(self.other, f"bob on {self.args.other}", self.bob)
        for i, sock in enumerate((sender, near, far)):
            sub = await sock.subscribe(room, 1)
            check(sub["type"] == "subscribed", f"{sock.name} subscribed", sub)
        # Both ways between the two nodes.
        await far.send(type="send", id=1, room=room, body=f"hello from {self.args.other}")
        await far.expect_type("ack", id=1)
        await sender.until("the other node's message", lambda: sender.offsets(room) == [1])
        await sender.send(type="send", id=2, room=room, body=f"hello from {self.args.victim}")
        await sender.expect_type("ack", id=2)
        await far.until("the victim node's message", lambda: far.offsets(room) == [1, 2])
        t0 = time.monotonic()
        last = 2 + n
        sent, near_r, far_r = await asyncio.gather(
            self.send_burst(sender, room, n, 3),
            self.receive(near, room, last, may_drop=True),
            self.receive(far, room, last, may_drop=False))
        seconds = time.monotonic() - t0
        check(self.killed_at is not None, "the victim was killed during the burst")
        check(near_r["resumed"], "the victim's receiver had to resume")
        # Re-sent messages that had committed before the kill: their nonce
        # returned the first offset (the room's count below proves no copy).
        committed = sum(
            1 for m in self.far.messages[room] if m["message"]["body"] in self.resent_bodies
            and datetime.fromisoformat(m["message"]["createdAt"].replace("Z", "+00:00"))
            < self.killed_wall)
        # Nothing posted twice: the room holds exactly the messages acknowledged.
        rest = await self.api("GET", f"/api/chat/rooms/{room}/messages?after={last - 1}&limit=5",
                              None, self.bob["token"], 200)
        check(rest["last_offset"] == last and not rest["has_more"],
              f"the room's newest offset is {last}", {k: rest[k] for k in rest if k != "messages"})
        # The reconnects, upgraded by nginx on live nodes.
        await asyncio.sleep(1)
        entries = {}
        with open(ENV.access_log) as f:
            for line in f:
                e = json.loads(line)
                if e["request_id"] in self.reconnects:
                    entries[e["request_id"]] = e
        check(len(entries) == len(self.reconnects), "every gateway upgrade is in the access log",
              [len(entries), len(self.reconnects)])
        served = []
        for e in entries.values():
            upstream = e["upstream_addr"].split(",")[-1].strip()
            check(e["status"] == 101 and upstream != self.victim,
                  "a reconnect upgraded (101) on a live node", e)
            served.append(f"node{ENV.nodes.index(upstream) + 1}" if upstream in ENV.nodes else upstream)
        return (f"{self.args.victim} <-> {self.args.other} both ways; {n} messages "
                f"({seconds:.1f} s), {self.args.victim} SIGKILLed after {n // 3} acks: the sender "
                f"reconnected through the gateway ({sent['reconnected']}x) and re-sent "
                f"{sent['resent']} unacked with their nonces ({committed} of them had "
                f"committed before the kill) -> {n} distinct offsets, room at "
                f"{last}, none twice; bob on {self.args.victim} resumed through the gateway after "
                f"offset {near_r['resumed']} and bob on {self.args.other} stayed: each got 1..{last} "
                f"once, in order; upgrades 101 via {', '.join(sorted(served))}")


async def idle(args) -> str:
    """Sockets through the gateway that stay idle (no frame, no ping of their
    own) past nginx's 60 s proxy_read_timeout, kept open by the server's
    pings; then each still open receives a message. One socket per node
    (round-robin); the one on a node killed meanwhile may have closed, but
    only at the kill."""
    ctx = ssl.create_default_context(cafile=ENV.ca)
    api = Api(ENV.gateway, ctx, args.source)
    url = ENV.gateway.replace("https", "wss", 1) + "/api/chat/ws"
    user = await api.sign_up("idle")
    room = (await api("POST", "/api/chat/rooms", {"name": "idle", "kind": "public"},
                      user["token"], want=201))["room"]["id"]
    socks = []
    for i in range(3):
        sock = await Socket.open(url, f"idle socket {i + 1}", user["token"], ssl=ctx,
                                 source=args.source, ping_interval=None)
        sub = await sock.subscribe(room, 1)
        check(sub["type"] == "subscribed", "idle socket subscribed", sub)
        socks.append(sock)
    opened = time.time()
    closed_at: dict[int, float] = {}
    with open(os.path.join(ENV.state, "idle.ready"), "w") as f:
        f.write(f"{opened}\n")
    stop = os.path.join(ENV.state, "idle.stop")
    while not os.path.exists(stop) and time.time() - opened < args.max_idle:
        for i, sock in enumerate(socks):
            if sock.closed is not None and i not in closed_at:
                closed_at[i] = time.time()
        await asyncio.sleep(0.2)
    idle_for = time.time() - opened
    check(idle_for > 65, f"idle for more than 65 s (nginx's read timeout is 60 s), not {idle_for:.0f} s")
    kills = []
    for name in ("killed.at", "chat-killed.at"):
        path = os.path.join(ENV.state, name)
        if os.path.exists(path):
            kills.append(float(open(path).read()))
    for i, t in closed_at.items():
        check(any(-1 <= t - k < 3 for k in kills),
              f"idle socket {i + 1} closed {t - opened:.1f} s after opening, not at a node's kill "
              f"(kills at {[round(k - opened, 1) for k in kills]} s)", socks[i].closed)
    alive = [s for i, s in enumerate(socks) if i not in closed_at]
    check(alive, "at least one idle socket outlived the gateway's read timeout")
    await api("POST", f"/api/chat/rooms/{room}/messages", {"body": "still there?"}, user["token"],
              want=201)
    for sock in alive:
        await sock.until("the message after the idle time", lambda: sock.offsets(room) == [1])
        await sock.close()
    return (f"{len(alive)} of 3 sockets through the gateway idle for {idle_for:.0f} s (> nginx's "
            f"60 s read timeout; the server pings every presence_ttl/3), then got a message"
            + (f"; {len(closed_at)} closed at a node's kill" if closed_at else ""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idle", action="store_true", help="the idle-socket check instead")
    p.add_argument("--max-idle", type=float, default=240)
    p.add_argument("--victim-pid", type=int, default=0)
    p.add_argument("--victim", default="node3")
    p.add_argument("--other", default="node1")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--source", default="127.0.0.20")
    p.add_argument("--name", default="chat")
    args = p.parse_args()
    if not args.idle and args.victim_pid <= 0:
        p.error("--victim-pid PID is required (the node to kill)")
    t0 = time.monotonic()
    try:
        line = asyncio.run(idle(args) if args.idle else Chat(args).run())
    except Failed as e:
        print(f"FAIL {args.name}: {e}", flush=True)
        return 1
    except Exception as e:  # a crash of the check is a failure, with its cause
        import traceback
        traceback.print_exc()
        print(f"FAIL {args.name}: {type(e).__name__}: {e}", flush=True)
        return 1
    print(f"PASS {args.name}: {line} [{time.monotonic() - t0:.1f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
