"""Regenerate and edit as branches (SPEC §10): nothing is deleted, every turn has a
parent, the conversation API shows one branch at a time, and the model sees only
the branch it answers."""

from __future__ import annotations

from typing import Any

from tests.ai.fake_openai import FakeOpenAI
from tests.e2e.ai_helpers import ai, is_done, openai_server
from tests.support import Namer, Server, StartServer, User

ANSWER = "Hello there, friend!"  # what the fake endpoint always says


async def ask(client: Any, frame: dict[str, Any]) -> int:
    """Send ``frame`` and wait for its reply: the conversation id."""
    await client.send(frame)
    conv = (await client.expect("delivery_confirmation"))["data"]["conversation_id"]
    await client.expect("chat", lambda f: is_done(f) and f["data"]["conversation_id"] == conv)
    return int(conv)


async def branch(
    srv: Server, user: User, conv: int, leaf: int | None = None
) -> list[dict[str, Any]]:
    query = f"?leaf={leaf}" if leaf else ""
    r = await srv.get(f"/api/v1/conversations/{conv}/messages{query}", user)
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


def said(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


async def test_regenerate_answers_the_last_question_again_on_a_new_branch(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    user = await srv.user(name())
    client = await srv.connect(user)
    conv = await ask(client, ai("first question"))
    await ask(client, ai("second question", conversation_id=conv))
    old = await branch(srv, user, conv)
    await ask(client, {"type": "regenerate", "message_id": "r1", "data": {"conversation_id": conv}})
    assert fake.requests[-1]["messages"] == fake.requests[-2]["messages"]
    new = await branch(srv, user, conv)
    assert said(new) == said(old)
    assert [m["id"] for m in new[:3]] == [m["id"] for m in old[:3]]
    assert new[3]["id"] != old[3]["id"] and new[3]["parent_id"] == old[2]["id"]
    assert new[3]["siblings"] == [old[3]["id"], new[3]["id"]]
    assert [m["id"] for m in await branch(srv, user, conv, leaf=old[3]["id"])] == [
        m["id"] for m in old
    ]


async def test_edit_answers_the_new_text_seeing_only_its_branch(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    user = await srv.user(name())
    client = await srv.connect(user)
    conv = await ask(client, ai("first question"))
    await ask(client, ai("second question", conversation_id=conv))
    old = await branch(srv, user, conv)
    await ask(
        client,
        {
            "type": "edit",
            "data": {"conversation_id": conv, "turn_id": old[2]["id"], "message": "second, better"},
        },
    )
    assert fake.requests[-1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "second, better"},
    ]
    new = await branch(srv, user, conv)
    assert said(new) == [
        ("user", "first question"),
        ("assistant", ANSWER),
        ("user", "second, better"),
        ("assistant", ANSWER),
    ]
    assert new[2]["siblings"] == [old[2]["id"], new[2]["id"]]
    await ask(client, ai("third question", conversation_id=conv))
    assert [m["content"] for m in fake.requests[-1]["messages"]] == [
        "first question",
        ANSWER,
        "second, better",
        ANSWER,
        "third question",
    ]
    assert said(await branch(srv, user, conv, leaf=old[3]["id"])) == said(old)


async def test_editing_the_first_turn_starts_a_branch_with_no_history(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    user = await srv.user(name())
    client = await srv.connect(user)
    conv = await ask(client, ai("hello"))
    first = (await branch(srv, user, conv))[0]
    await ask(
        client,
        {
            "type": "edit",
            "data": {"conversation_id": conv, "turn_id": first["id"], "message": "hi"},
        },
    )
    assert fake.requests[-1]["messages"] == [{"role": "user", "content": "hi"}]
    new = await branch(srv, user, conv)
    assert new[0]["parent_id"] is None and new[0]["siblings"] == [first["id"], new[0]["id"]]


async def test_edit_refuses_assistant_turns_other_conversations_and_other_users(
    start_server: StartServer, fake: FakeOpenAI, name: Namer
) -> None:
    srv = await openai_server(start_server, fake)
    user = await srv.user(name())
    client = await srv.connect(user)
    conv = await ask(client, ai("hello"))
    other = await ask(client, ai("elsewhere"))
    mine = await branch(srv, user, conv)
    attempts = [
        ({"conversation_id": conv, "turn_id": mine[1]["id"], "message": "x"}, "INVALID_MESSAGE"),
        ({"conversation_id": other, "turn_id": mine[0]["id"], "message": "x"}, "NOT_FOUND"),
    ]
    for data, code in attempts:
        await client.send({"type": "edit", "data": data})
        assert (await client.expect("error"))["data"]["code"] == code
    mallory = await srv.connect(await srv.user(name()))
    await mallory.send({"type": "regenerate", "data": {"conversation_id": conv}})
    assert (await mallory.expect("error"))["data"]["code"] == "FORBIDDEN"
    assert len(await branch(srv, user, conv)) == 2
    assert len(fake.requests) == 2
