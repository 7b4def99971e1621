"""The PyPI GraphQL client gql against a running Basalt, with the example
operations of docs/graphql/ (so the examples are proven to run, not only to
validate).

Over HTTP (gql's AIOHTTPTransport, which fetches the schema by
introspection and validates every request against it before sending):
tags, viewer, pages of articles with their nested authors and comments,
the feed, profiles, and every mutation. Over WebSocket (gql's
WebsocketsTransport): `articlePublished` on graphql-transport-ws with the
token in the connection_init payload, `commentAdded` on the legacy
graphql-ws with the token in the upgrade's Authorization header; each must
deliver an event caused after it subscribed, by another client. Errors:
`extensions.code` of a mutation and of the feed without a token
(UNAUTHENTICATED), of another user's comment (FORBIDDEN), of an unknown
slug (NOT_FOUND). The chat: a room, messages sent by one user heard by the
other's `messageAdded` (graphql-transport-ws) in offset order, history,
read state, reactions, edits, members, direct rooms and refusals' codes.

Usage: python gql_client.py BASE_URL [DOCS_DIR]
Exits 0 when every check passed, 1 at the first failure (with what was
expected and what came).
"""

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import OperationDefinitionNode, parse

PASSWORD = "Correct-Horse-Battery-9"
# How long a subscriber may take to hear an event, and how many events are
# caused before giving up (the server subscribes asynchronously: an event
# caused before its subscription is live is rightly not delivered).
HEAR_WITHIN = 3.0
ATTEMPTS = 5


class Failed(Exception):
    """A check that did not hold."""


def check(condition, what, got=None):
    if not condition:
        raise Failed(f"{what}; got {json.dumps(got, default=str)}" if got is not None else what)


def rfc3339(value, what):
    check(isinstance(value, str) and "T" in value, f"{what} is an RFC 3339 string", value)
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise Failed(f"{what} is an RFC 3339 string: {error}; got {value!r}") from None


def load_operations(docs):
    """Each named operation of docs/graphql/, as the text of its whole file
    (which holds its fragments)."""
    operations = {}
    for path in sorted(Path(docs).glob("*.graphql")):
        text = path.read_text()
        for definition in parse(text).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name:
                operations[definition.name.value] = text
    return operations


class Api:
    """One caller of the GraphQL API: a gql session over HTTP."""

    def __init__(self, base, operations, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base, self.operations, self.token = base, operations, token
        self.client = Client(
            transport=AIOHTTPTransport(url=f"{base}/graphql", headers=headers),
            fetch_schema_from_transport=True,
        )
        self.session = None

    async def __aenter__(self):
        self.session = await self.client.connect_async()
        return self

    async def __aexit__(self, *exc):
        await self.client.close_async()

    def request(self, name, /, **variables):
        return GraphQLRequest(
            self.operations[name], operation_name=name, variable_values=variables or None
        )

    async def run(self, name, /, **variables):
        """The data of operation `name` of the examples."""
        return await self.session.execute(self.request(name, **variables))

    async def error_code(self, name, /, **variables):
        """The `extensions.code` of the error operation `name` must give."""
        try:
            data = await self.run(name, **variables)
        except TransportQueryError as error:
            errors = error.errors or []
            check(len(errors) == 1, f"{name} gives one error", errors)
            return (errors[0].get("extensions") or {}).get("code")
        raise Failed(f"{name} with {variables} should have failed; got {json.dumps(data)}")


async def sign_up(http, base, name):
    """A new user through REST (RealWorld's POST /api/users): its token."""
    stamp = time.time_ns()
    user = {"email": f"{name}{stamp}@example.com", "username": f"{name}{stamp}", "password": PASSWORD}
    async with http.post(f"{base}/api/users", json={"user": user}) as response:
        body = await response.json()
        check(response.status == 201, f"sign-up of {name} answers 201", body)
    return body["user"]["username"], body["user"]["token"]


class Subscriber:
    """One subscription over a WebSocket, read into a queue by a task."""

    def __init__(self, base, schema, request, subprotocol, token, in_payload):
        auth = {"Authorization": f"Bearer {token}"}
        self.transport = WebsocketsTransport(
            url=base.replace("http", "ws", 1) + "/graphql",
            subprotocols=[subprotocol],
            init_payload=auth if in_payload else None,
            headers=None if in_payload else auth,
        )
        self.expected_subprotocol = subprotocol
        self.client = Client(transport=self.transport, schema=schema)
        self.request = request
        self.events = asyncio.Queue()
        self.task = None

    async def __aenter__(self):
        self.session = await self.client.connect_async()
        check(
            self.transport.subprotocol == self.expected_subprotocol,
            f"the server speaks {self.expected_subprotocol}",
            self.transport.subprotocol,
        )
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for data in self.session.subscribe(self.request):
                await self.events.put(data)
        except Exception as error:  # noqa: BLE001 - handed to the test
            await self.events.put(error)

    async def __aexit__(self, *exc):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close_async()

    async def hear(self, cause, what):
        """Causes events (`cause()`, an awaitable giving what it caused) until
        one is heard; returns (event, everything caused)."""
        caused = []
        for _ in range(ATTEMPTS):
            caused.append(await cause())
            try:
                event = await asyncio.wait_for(self.events.get(), HEAR_WITHIN)
            except asyncio.TimeoutError:
                continue
            if isinstance(event, Exception):
                raise Failed(f"{what}: the subscription failed: {event!r}")
            return event, caused
        raise Failed(f"{what}: nothing heard after {ATTEMPTS} events caused, {HEAR_WITHIN} s each")


async def chat(base, alice, bob, anonymous, writer, reader, reader_token):
    """The chat: a room, messages sent by one user and heard in offset order
    by the other's `messageAdded` (graphql-transport-ws), history, read
    state, reactions, moderation and the codes of refusals."""
    room = (await alice.run("CreateChatRoom", name="gql lobby", kind="PUBLIC"))["createChatRoom"]
    check(room["kind"] == "PUBLIC" and room["membership"]["role"] == "OWNER", "createChatRoom", room)
    rfc3339(room["createdAt"], "createChatRoom.createdAt")
    room_id = room["id"]
    code = await bob.error_code("SendChatMessage", room=room_id, body="not yet")
    check(code == "FORBIDDEN", "sending before joining gives FORBIDDEN", code)
    joined = (await bob.run("JoinChatRoom", room=room_id))["joinChatRoom"]
    check(joined["membership"]["state"] == "JOINED", "joinChatRoom", joined)
    first = (await alice.run("SendChatMessage", room=room_id, body="first, *before* subscribing"))["sendChatMessage"]
    check(first["offset"] == 1 and "<em>before</em>" in first["bodyHtml"], "sendChatMessage", first)

    sent = []

    async def send():
        message = (await alice.run("SendChatMessage", room=room_id, body=f"live {len(sent) + 1}"))["sendChatMessage"]
        sent.append(message)
        return message["offset"]

    request = bob.request("MessageAdded", room=room_id, after=0)
    async with Subscriber(
        base, bob.client.schema, request, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, reader_token, True
    ) as sub:
        resumed = await asyncio.wait_for(sub.events.get(), HEAR_WITHIN * 2)
        check(not isinstance(resumed, Exception), "messageAdded after 0 starts", resumed)
        check(resumed["messageAdded"]["id"] == first["id"], "messageAdded after 0 gives the first message from history", resumed)
        event, offsets = await sub.hear(send, "messageAdded")
        heard = [event["messageAdded"]["offset"]]
        while len(heard) < len(offsets):
            more = await asyncio.wait_for(sub.events.get(), HEAR_WITHIN)
            heard.append(more["messageAdded"]["offset"])
        check(heard == offsets == list(range(2, 2 + len(offsets))), "messageAdded in offset order, each once", heard)
        check(event["messageAdded"]["author"]["username"] == writer, "the message heard is the writer's", event)

    page = (await bob.run("ChatMessages", room=room_id, limit=50))["chatMessages"]
    check([m["offset"] for m in page["messages"]] == list(range(1, 2 + len(sent))), "chatMessages, oldest first", page)
    check(page["lastOffset"] == 1 + len(sent) and page["hasMore"] is False, "chatMessages' page", page)
    code = await bob.error_code("ChatMessages", room=room_id, limit=500)
    check(code == "BAD_USER_INPUT", "a page of 500 gives BAD_USER_INPUT", code)
    unread = (await bob.run("ChatUnread"))["chatUnread"]
    mine = [u for u in unread if u["room"] == room_id]
    check(len(mine) == 1 and mine[0]["unread"] == 1 + len(sent), "chatUnread counts every message", unread)
    marked = (await bob.run("MarkChatRead", room=room_id, offset=page["lastOffset"]))["markChatRead"]
    check(marked["unread"] == 0 and marked["readOffset"] == page["lastOffset"], "markChatRead", marked)

    reacted = (await bob.run("ReactToChatMessage", room=room_id, message=first["id"], emoji="👍"))["reactToChatMessage"]
    check(reacted["reactions"] == [{"emoji": "👍", "count": 1}], "reactToChatMessage", reacted)
    code = await bob.error_code("EditChatMessage", room=room_id, message=first["id"], body="mine now")
    check(code == "FORBIDDEN", "editing another user's message gives FORBIDDEN", code)
    edited = (await alice.run("EditChatMessage", room=room_id, message=first["id"], body="first, edited"))["editChatMessage"]
    check(edited["body"] == "first, edited" and edited["editedAt"], "editChatMessage", edited)
    members = (await alice.run("ChatMembers", room=room_id))["chatMembers"]
    check([m["user"]["username"] for m in members] == [writer, reader], "chatMembers, owner first", members)
    rooms = (await bob.run("ChatRooms"))["chatRooms"]
    check(any(r["id"] == room_id for r in rooms), "chatRooms lists the room", rooms)
    dm = (await bob.run("DirectChatRoom", username=writer))["directChatRoom"]
    check(dm["kind"] == "DIRECT", "directChatRoom", dm)
    check((await alice.run("ChatRoom", id=dm["id"]))["chatRoom"]["id"] == dm["id"], "chatRoom of the direct room")
    code = await alice.error_code("ChatMembers", room="00000000-0000-7000-8000-000000000000")
    check(code == "NOT_FOUND", "an unknown room gives NOT_FOUND", code)
    code = await anonymous.error_code("ChatRooms")
    check(code == "UNAUTHENTICATED", "chatRooms signed out gives UNAUTHENTICATED", code)
    check((await bob.run("LeaveChatRoom", room=room_id))["leaveChatRoom"] is True, "leaveChatRoom")


async def main(base, docs):
    operations = load_operations(docs)
    check(len(operations) >= 10, "docs/graphql/ has at least 10 operations", sorted(operations))
    async with aiohttp.ClientSession() as http:
        writer, writer_token = await sign_up(http, base, "gqlw")
        reader, reader_token = await sign_up(http, base, "gqlr")
    tag = f"gql{time.time_ns()}"

    async with (
        Api(base, operations) as anonymous,
        Api(base, operations, writer_token) as alice,
        Api(base, operations, reader_token) as bob,
    ):
        # Queries, signed out and signed in.
        tags = (await anonymous.run("Tags"))["tags"]
        check(isinstance(tags, list) and all(isinstance(t, str) for t in tags), "tags is a list of strings", tags)
        check((await anonymous.run("Viewer"))["viewer"] is None, "viewer is null signed out")
        viewer = (await alice.run("Viewer"))["viewer"]
        check(viewer["username"] == writer and viewer["email"].startswith(writer), "viewer is the writer", viewer)
        check(viewer["role"] == "user" and viewer["emailVerified"] is False, "a new user's role and flag", viewer)
        rfc3339(viewer["createdAt"], "viewer.createdAt")

        # Without a token a mutation, and the feed, are refused.
        draft = {"title": "Refused", "description": "d", "body": "b", "tagList": [tag]}
        code = await anonymous.error_code("CreateArticle", input=draft)
        check(code == "UNAUTHENTICATED", "createArticle signed out gives UNAUTHENTICATED", code)
        code = await anonymous.error_code("Feed")
        check(code == "UNAUTHENTICATED", "feed signed out gives UNAUTHENTICATED", code)

        # One article before anyone subscribes: no subscriber may hear it.
        before = (await alice.run("CreateArticle", input={**draft, "title": "Before subscribing"}))["createArticle"]

        # articlePublished over graphql-transport-ws, token in connection_init.
        published = []

        async def publish():
            n = len(published) + 1
            article = (
                await alice.run(
                    "CreateArticle",
                    input={
                        "title": f"Dragons {n}",
                        "description": "Ever wonder how?",
                        "body": "You have to **believe**",
                        "tagList": ["training", tag],
                    },
                )
            )["createArticle"]
            published.append(article)
            return article["slug"]

        request = bob.request("ArticlePublished", tag=tag)
        async with Subscriber(
            base, bob.client.schema, request, WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, reader_token, True
        ) as sub:
            event, slugs = await sub.hear(publish, "articlePublished")
            heard = event["articlePublished"]
            check(heard["slug"] in slugs and heard["slug"] != before["slug"], "the article heard was published after subscribing", heard)
            check(heard["author"]["username"] == writer and tag in heard["tagList"], "the article heard is the writer's", heard)
            rfc3339(heard["createdAt"], "articlePublished.createdAt")
            # A query on the same connection, as graphql-transport-ws allows.
            over_ws = await sub.session.execute(bob.request("Tags"))
            check(tag in over_ws["tags"], "tags over the WebSocket include the new tag", over_ws)

        article = published[0]
        check(article["author"]["username"] == writer, "createArticle's author", article)
        check(article["tagList"] == sorted(["training", tag]), "createArticle's tags, sorted", article)
        check(article["favorited"] is False and article["favoritesCount"] == 0, "a new article is nobody's favourite", article)
        check("<strong>believe</strong>" in article["bodyHtml"], "bodyHtml is the rendered Markdown", article)
        rfc3339(article["updatedAt"], "createArticle.updatedAt")
        slug = article["slug"]

        # commentAdded over the legacy graphql-ws, token in the upgrade's header.
        comments = []

        async def comment():
            added = (await bob.run("AddComment", slug=slug, body=f"Thank you {len(comments) + 1}!"))["addComment"]
            comments.append(added)
            return added["id"]

        request = alice.request("CommentAdded", slug=slug)
        async with Subscriber(
            base, alice.client.schema, request, WebsocketsTransport.APOLLO_SUBPROTOCOL, writer_token, False
        ) as sub:
            event, ids = await sub.hear(comment, "commentAdded")
            heard = event["commentAdded"]
            check(heard["id"] in ids and heard["author"]["username"] == reader, "the comment heard is the reader's", heard)
        added = comments[0]
        check(added["author"]["username"] == reader and added["body"] == "Thank you 1!", "addComment's answer", added)
        rfc3339(added["createdAt"], "addComment.createdAt")

        # Pages of the writer's articles, with nested authors and comments
        # (one more article, so that there are at least three: two pages).
        last = (await alice.run("CreateArticle", input={**draft, "title": "After subscribing"}))["createArticle"]
        total = 2 + len(published)
        first = (await anonymous.run("ArticlesPage", first=2, author=writer))["articles"]
        check(first["totalCount"] == total and len(first["edges"]) == 2, f"{total} articles by the writer, 2 a page", first)
        check(first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"], "the first page's pageInfo", first["pageInfo"])
        check(first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"], "endCursor is the last edge's cursor", first)
        nodes = [e["node"] for e in first["edges"]]
        after = first["pageInfo"]["endCursor"]
        while after:
            page = (await anonymous.run("ArticlesPage", first=2, author=writer, after=after))["articles"]
            check(page["pageInfo"]["hasPreviousPage"], "a page after a cursor has hasPreviousPage", page["pageInfo"])
            nodes += [e["node"] for e in page["edges"]]
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        expected = [last["slug"]] + [a["slug"] for a in reversed(published)] + [before["slug"]]
        check([n["slug"] for n in nodes] == expected, "the pages hold every article once, newest first", nodes)
        for node in nodes:
            check(node["author"]["username"] == writer, "each node's nested author", node)
            count = len(comments) if node["slug"] == slug else 0
            check(node["comments"]["totalCount"] == count, "each node's nested comments", node)
            names = {e["node"]["author"]["username"] for e in node["comments"]["edges"]}
            check(names <= {reader} and len(node["comments"]["edges"]) == min(count, 3), "the nested comments' authors", node)
        one = (await anonymous.run("ArticleBySlug", slug=slug))["article"]
        check(one["author"]["username"] == writer and one["body"] == "You have to **believe**", "article by slug", one)
        thread = one["comments"]
        check(thread["totalCount"] == len(comments), "its comments, all counted", thread)
        check([e["node"]["id"] for e in thread["edges"]] == [c["id"] for c in comments], "its comments, oldest first", thread)
        check(all(e["node"]["author"]["username"] == reader for e in thread["edges"]), "the comments' nested author", thread)

        # Favourites, follows, the feed, profiles.
        fav = (await bob.run("FavoriteArticle", slug=slug))["favoriteArticle"]
        check(fav["favorited"] and fav["favoritesCount"] == 1, "favoriteArticle", fav)
        faved = (await anonymous.run("ArticlesPage", favoritedBy=reader))["articles"]
        check([e["node"]["slug"] for e in faved["edges"]] == [slug], "articles favourited by the reader", faved)
        unfav = (await bob.run("UnfavoriteArticle", slug=slug))["unfavoriteArticle"]
        check(not unfav["favorited"] and unfav["favoritesCount"] == 0, "unfavoriteArticle", unfav)
        followed = (await bob.run("FollowProfile", username=writer))["followProfile"]
        check(followed == {"username": writer, "following": True}, "followProfile", followed)
        feed = (await bob.run("Feed", first=20))["feed"]
        check(feed["totalCount"] == total, "the reader's feed has the writer's articles", feed)
        check(all(e["node"]["author"]["following"] for e in feed["edges"]), "the feed's authors are followed", feed)
        profile = (await bob.run("ProfilePage", username=writer, first=1))["profile"]
        check(profile["following"] and profile["articles"]["totalCount"] == total, "the writer's profile", profile)
        unfollowed = (await bob.run("UnfollowProfile", username=writer))["unfollowProfile"]
        check(unfollowed["following"] is False, "unfollowProfile", unfollowed)
        check((await anonymous.run("ProfilePage", username=f"nobody{tag}"))["profile"] is None, "an unknown profile is null")

        # Changes and deletions, and the codes of refusals.
        changed = (await alice.run("UpdateArticle", slug=slug, input={"title": "Trained dragons", "regenerateSlug": True}))["updateArticle"]
        check(changed["title"] == "Trained dragons" and changed["slug"] != slug, "updateArticle with a new slug", changed)
        check(changed["body"] == "You have to **believe**", "updateArticle keeps the body", changed)
        slug = changed["slug"]
        code = await alice.error_code("DeleteComment", id=comments[0]["id"])
        check(code == "FORBIDDEN", "deleting another user's comment gives FORBIDDEN", code)
        check((await bob.run("DeleteComment", id=comments[0]["id"]))["deleteComment"] is True, "deleteComment")
        left = (await anonymous.run("ArticleComments", slug=slug))["article"]["comments"]
        check(left["totalCount"] == len(comments) - 1, "one comment fewer", left)
        check((await alice.run("DeleteArticle", slug=slug))["deleteArticle"] is True, "deleteArticle")
        check((await anonymous.run("ArticleBySlug", slug=slug))["article"] is None, "a deleted article is null")
        code = await bob.error_code("FavoriteArticle", slug=slug)
        check(code == "NOT_FOUND", "favouriting a deleted article gives NOT_FOUND", code)

        await chat(base, alice, bob, anonymous, writer, reader, reader_token)

    print(
        f"gql: {len(operations)} example operations loaded; every query and mutation, and every subscription "
        f"(graphql-transport-ws and graphql-ws), answered as expected (events caused until heard: "
        f"{len(published)} article(s), {len(comments)} comment(s)); the chat's rooms, messages and messageAdded too"
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python gql_client.py BASE_URL [DOCS_DIR]")
    docs = sys.argv[2] if len(sys.argv) == 3 else Path(__file__).resolve().parents[2] / "docs" / "graphql"
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1].rstrip("/"), docs), 180))
    except Failed as failure:
        sys.exit(f"gql_client.py: FAILED: {failure}")
    except TransportQueryError as error:  # an answer with errors where data was due
        sys.exit(f"gql_client.py: FAILED: the server answered errors: {error}")
