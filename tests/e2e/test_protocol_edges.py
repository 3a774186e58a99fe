"""Protocol edges a hostile or careless client finds: binary frames, the order of
``connect`` and the query's join, and what the stats count as sent."""

from __future__ import annotations

from tests.support import Namer, Server, StartServer


async def sent(srv: Server) -> int:
    stats = (await srv.get("/api/v1/ws/stats", await srv.admin())).json()
    return int(stats["messages_sent"])


async def test_a_binary_frame_is_refused_and_the_connection_stays(
    server: Server, name: Namer
) -> None:
    client = await server.connect(await server.user(name()))
    await client.ws.send(b'{"type":"ping","message_id":"bin"}')
    error = await client.expect("error", timeout=5)
    assert error["data"]["code"] == "INVALID_MESSAGE"
    assert error["data"]["error"] == "text frames only"
    assert not client.pending("pong")  # the binary frame was not acted on
    await client.send({"type": "ping"})
    await client.expect("pong")


async def test_the_querys_room_exists_once_connect_arrives(server: Server, name: Namer) -> None:
    user, room = await server.user(name()), name("room")
    for _ in range(40):  # rooms to subscribe on connect: work that came before the join
        created = await server.post(
            "/api/v1/ws/rooms", user, json={"room_id": name("other"), "room_type": "group"}
        )
        assert created.status_code == 201, created.text
    client = await server.connect(user, room_id=room, room_type="shared")
    response = await server.get(f"/api/v1/ws/rooms/{room}", user)
    assert response.status_code == 200, response.text
    assert user.username in response.json()["members"]
    joined = await client.expect("join_room")
    assert joined["room_id"] == room


async def test_messages_sent_counts_direct_answers(start_server: StartServer, name: Namer) -> None:
    srv = await start_server()
    user = await srv.user(name())
    before = await sent(srv)
    client = await srv.connect(user)  # connect
    for _ in range(3):
        await client.send({"type": "ping"})
        await client.expect("pong")
    assert await sent(srv) - before == 4


async def test_messages_sent_counts_heartbeats(start_server: StartServer, name: Namer) -> None:
    srv = await start_server(WEBSOCKET_HEARTBEAT_INTERVAL=0.3)
    client = await srv.connect(await srv.user(name()))
    await client.expect("system")
    await client.expect("system")
    assert await sent(srv) >= 3  # connect and two heartbeats at least
