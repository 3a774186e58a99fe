"""A real S3-compatible server for the tests: moto in server mode on a free port.

moto enforces S3's rules, the 5 MiB minimum part size included; the suite lowers
that minimum (``S3_UPLOAD_PART_MIN_SIZE``, and chinwag's ``S3_MIN_PART_SIZE`` to
match) so uploads of a few chunks stay small."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port

MIN_PART = 1024


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes]

    def client(self) -> Any:
        from chinwag.files.s3 import make_client

        return make_client(self.endpoint, "us-east-1", "test", "test")

    def new_bucket(self) -> str:
        bucket = f"chinwag-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def settings(self, bucket: str, prefix: str = "files") -> dict[str, Any]:
        """chinwag's settings for this server and ``bucket``."""
        return {
            "FILE_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_ACCESS_KEY_ID": "test",
            "S3_SECRET_ACCESS_KEY": "test",
            "S3_MIN_PART_SIZE": MIN_PART,
        }

    def keys(self, bucket: str) -> list[str]:
        reply = self.client().list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in reply.get("Contents", []))

    def multipart_uploads(self, bucket: str) -> int:
        return len(self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    binary = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    env = {**os.environ, "S3_UPLOAD_PART_MIN_SIZE": str(MIN_PART)}
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for(endpoint, proc)
        yield S3Server(endpoint, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _wait_for(endpoint: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}")
            try:
                http.get(endpoint, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
    raise RuntimeError("moto_server did not answer within 30 s")


@pytest.fixture
async def s3_bucket(s3_server: S3Server) -> AsyncIterator[str]:
    yield await asyncio.to_thread(s3_server.new_bucket)
