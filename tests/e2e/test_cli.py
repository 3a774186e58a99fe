"""The command line as a newcomer meets it: help, defaults, settings that cannot
work together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.upload_helpers import Payload, send_chunks, start
from tests.support import StartServer


def chinwag(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chinwag", *args],
        cwd=cwd,
        env={**os.environ, "DATA_DIR": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chinwag_alone_prints_its_help(tmp_path: Path) -> None:
    done = chinwag(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: chinwag") and "serve" in done.stdout
    assert "create-admin" in done.stdout and done.stderr == ""


def test_serve_help_shows_defaults_and_where_settings_come_from(tmp_path: Path) -> None:
    done = chinwag("serve", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "(default: 127.0.0.1)" in text and "(default: 8000)" in text
    assert "(default: 1)" in text
    assert "environment variables or a .env file" in text


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://", "redis+cluster://host-without-port", "redis+cluster://a:6379,b:notaport"],
)
def test_a_malformed_redis_cluster_url_stops_startup_showing_the_form(
    tmp_path: Path, url: str
) -> None:
    done = chinwag("serve", "--port", "1", cwd=tmp_path, BROKER_URL=url)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "BROKER_URL" in lines[0], done.stderr
    assert "redis+cluster://[user:password@]host:port[,host:port...]" in lines[0]


@pytest.mark.parametrize(("chunk", "frame"), [("1048576", "1048576"), ("786000", "1048576")])
def test_a_chunk_size_that_cannot_fit_a_frame_stops_startup_naming_both(
    tmp_path: Path, chunk: str, frame: str
) -> None:
    done = chinwag(
        "serve", "--port", "1", cwd=tmp_path, MAX_CHUNK_SIZE=chunk, WS_MAX_MESSAGE_SIZE=frame
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"MAX_CHUNK_SIZE={chunk}" in lines[0] and f"WS_MAX_MESSAGE_SIZE={frame}" in lines[0]
    assert "MAX_CHUNK_SIZE <= 785664" in lines[0]


async def test_the_largest_chunk_start_up_allows_is_accepted_over_the_socket(
    start_server: StartServer,
) -> None:
    """785,664 bytes is what the refusal above offers for a 1 MiB frame limit: a
    server started with exactly that takes a chunk of that size in one frame."""
    srv = await start_server(MAX_CHUNK_SIZE=785664, WS_MAX_MESSAGE_SIZE=1048576)
    client = await srv.connect(await srv.user())
    payload = Payload.of(b"a" * 785664, chunk_size=785664)
    file_id = await start(client, "notes.txt", payload)
    [ack] = await send_chunks(client, file_id, payload)
    assert ack["chunk_index"] == 0
