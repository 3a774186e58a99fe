"""AI replies in a cluster: `cancel` reaches the process that generates (SPEC §10, §11)."""

from __future__ import annotations

from tests.e2e.ai_helpers import ai, cluster, is_done
from tests.e2e.cluster_helpers import require_backends, start_cluster
from tests.support import Namer, StartServer


async def test_cancel_sent_to_another_process_stops_the_reply(
    pg_url: str, start_server: StartServer, name: Namer
) -> None:
    await require_backends()
    a, b = await start_cluster(start_server, 2, cluster(pg_url, OFFLINE_TOKEN_DELAY=0.05))
    user = await a.user(name())
    writer = await a.connect(user)
    await writer.send(ai("a long answer please"))
    conv = (await writer.expect("chat"))["data"]["conversation_id"]
    other = await b.connect(user)
    await other.send({"type": "cancel", "data": {"conversation_id": conv}})
    done = (await other.expect("chat", is_done))["data"]
    assert done["cancelled"] is True and done["conversation_id"] == conv
    assert other.pending("error") == []
    history = (await b.get(f"/api/v1/conversations/{conv}/messages", user)).json()["messages"]
    assert "You said" not in history[-1]["content"]  # stopped before the end
    await other.send({"type": "cancel", "data": {"conversation_id": conv}})
    assert (await other.expect("error"))["data"]["code"] == "NOT_FOUND"
