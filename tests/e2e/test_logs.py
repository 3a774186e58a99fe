"""What a client's fault leaves in the server log: one line, no traceback."""

from __future__ import annotations

from tests.e2e.cluster_helpers import eventually
from tests.support import Server, StartServer


async def _utf8_lines(srv: Server) -> list[str]:
    return [line for line in srv.log.splitlines() if "UTF-8" in line]


async def test_invalid_utf8_from_a_client_logs_one_line_and_no_traceback(
    start_server: StartServer,
) -> None:
    srv = await start_server()
    user = await srv.user()
    for _ in range(2):
        client = await srv.connect(user)
        await client.ws.send(b'{"type":"ping","data":{"x":"\xff\xfe"}}', text=True)
        assert await client.wait_closed() == 1007

    async def two_lines() -> bool:
        return len(await _utf8_lines(srv)) >= 2

    await eventually(two_lines, within=10, what="two log lines about UTF-8")
    lines = await _utf8_lines(srv)
    assert len(lines) == 2 and all("WARNING" in line for line in lines), srv.log
    assert "Traceback" not in srv.log and "UnicodeDecodeError" not in srv.log, srv.log
    client = await srv.connect(user)  # the server itself is unharmed
    await client.send({"type": "ping", "data": {}})
    assert (await client.expect("pong"))["type"] == "pong"
