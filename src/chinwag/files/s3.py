"""Upload bytes in an S3-compatible object store (``FILE_STORAGE_URL=s3://bucket/prefix``).

An upload in progress is one S3 multipart upload: chunk ``i`` is part ``i + 1``
and the part's ETag is the chunk's token, kept in the database with the chunk. So
any process can send the next part and any process can complete it. S3 wants
every part but the last to be at least 5 MiB: the settings refuse a
``MAX_CHUNK_SIZE`` below ``S3_MIN_PART_SIZE``.

Keys: ``<prefix>uploads/<upload id hex>`` while in progress (completed there at
finalize, then checked), ``<prefix>files/<stored name>`` once published. Nothing
serves the first. Checking needs the bytes on disk (clamd and the sniffers read
files), so ``assembled`` downloads the object into ``temp_dir`` and removes it
after. boto3 is synchronous and its client thread-safe: every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from chinwag.files.storage import (
    STORAGE_FAILED,
    STREAM_PIECE,
    check_stored_name,
    sweep_dir,
    upload_key,
)
from chinwag.protocol.errors import StorageError, UploadNotFound

logger = logging.getLogger(__name__)
T = TypeVar("T")
_GONE = {"NoSuchUpload", "NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket[/prefix]``; ValueError naming the problem otherwise."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("must be s3://bucket[/prefix]")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


@dataclass(frozen=True, slots=True)
class Published:
    """A published object being read: its size and its bytes, piece by piece."""

    size: int
    chunks: AsyncIterator[bytes]


def make_client(
    endpoint_url: str | None, region: str, access_key_id: str | None, secret_access_key: str | None
) -> Any:
    """A boto3 S3 client. Credentials left unset come from boto3's usual chain
    (instance role, shared config)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(max_pool_connections=32, retries={"max_attempts": 3, "mode": "standard"}),
    )


class S3Storage:
    def __init__(self, client: Any, location: S3Location, temp_dir: Path) -> None:
        self._s3 = client
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.temp_dir = Path(temp_dir)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        """Check that the bucket is reachable (StorageError naming it otherwise)."""
        try:
            await self._call(self._s3.head_bucket, Bucket=self.bucket)
        except UploadNotFound:
            raise StorageError(f"the S3 bucket '{self.bucket}' does not exist") from None

    def _temp_key(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_key(upload_id)}"

    def _file_key(self, stored_name: str) -> str:
        return f"{self.prefix}files/{check_stored_name(stored_name)}"

    # ---- uploads in progress -------------------------------------------------

    async def create(self, upload_id: str, size: int) -> str:
        """Start the multipart upload; its id is the handle ("" for an empty file,
        which has no parts)."""
        key = self._temp_key(upload_id)
        if size == 0:
            return ""
        reply = await self._call(self._s3.create_multipart_upload, Bucket=self.bucket, Key=key)
        return str(reply["UploadId"])

    async def write_chunk(
        self, upload_id: str, handle: str, index: int, offset: int, data: bytes
    ) -> str:
        del offset
        reply = await self._call(
            self._s3.upload_part,
            Bucket=self.bucket,
            Key=self._temp_key(upload_id),
            UploadId=handle,
            PartNumber=index + 1,
            Body=data,
        )
        return str(reply["ETag"])

    @contextlib.asynccontextmanager
    async def assembled(self, upload_id: str, handle: str, parts: list[str]) -> AsyncIterator[Path]:
        key = self._temp_key(upload_id)
        if not await self._exists(key):  # completed by an earlier finalize that then failed
            if handle:
                await self._call(
                    self._s3.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=handle,
                    MultipartUpload={
                        "Parts": [
                            {"ETag": etag, "PartNumber": i + 1} for i, etag in enumerate(parts)
                        ]
                    },
                )
            else:
                await self._call(self._s3.put_object, Bucket=self.bucket, Key=key, Body=b"")
        local = self.temp_dir / f"{upload_key(upload_id)}.{uuid.uuid4().hex[:8]}.s3"
        try:
            reply = await self._call(self._s3.get_object, Bucket=self.bucket, Key=key)
            await self._call(_save, reply["Body"], local)
            yield local
        finally:
            await asyncio.to_thread(local.unlink, missing_ok=True)

    async def publish(self, upload_id: str, handle: str) -> str:
        del handle
        source = self._temp_key(upload_id)
        stored_name = uuid.uuid4().hex
        await self._call(
            self._s3.copy,
            {"Bucket": self.bucket, "Key": source},
            self.bucket,
            self._file_key(stored_name),
        )
        await self._call(self._s3.delete_object, Bucket=self.bucket, Key=source)
        return stored_name

    async def discard(self, upload_id: str, handle: str) -> None:
        """Abort the multipart upload and delete the completed object, if any. Idempotent."""
        key = self._temp_key(upload_id)
        if handle:
            with contextlib.suppress(UploadNotFound):
                await self._call(
                    self._s3.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=handle
                )
        await self._call(self._s3.delete_object, Bucket=self.bucket, Key=key)

    async def sweep_temp(self, older_than: float) -> int:
        """Remove local copies left in ``temp_dir`` by a process that died while it
        checked a file. (Multipart uploads abandoned with their database record are
        for the bucket's lifecycle rule AbortIncompleteMultipartUpload.)"""
        return await sweep_dir(self.temp_dir, "*.s3", older_than)

    # ---- published files ------------------------------------------------------

    async def open_stream(self, stored_name: str) -> Published:
        """Start reading a published file. UploadNotFound when it is gone."""
        reply = await self._call(
            self._s3.get_object, Bucket=self.bucket, Key=self._file_key(stored_name)
        )
        return Published(int(reply["ContentLength"]), _pieces(reply["Body"]))

    async def delete_published(self, stored_name: str) -> None:
        await self._call(
            self._s3.delete_object, Bucket=self.bucket, Key=self._file_key(stored_name)
        )

    async def published_exists(self, stored_name: str) -> bool:
        return await self._exists(self._file_key(stored_name))

    # ---- internals -------------------------------------------------------------

    async def _exists(self, key: str) -> bool:
        try:
            await self._call(self._s3.head_object, Bucket=self.bucket, Key=key)
        except UploadNotFound:
            return False
        return True

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _GONE:
                raise UploadNotFound("upload not found") from exc
            logger.error("S3 %s failed: %s", getattr(fn, "__name__", fn), exc)
            raise StorageError(STORAGE_FAILED) from exc
        except (BotoCoreError, OSError) as exc:
            logger.error("S3 %s failed: %s", getattr(fn, "__name__", fn), exc)
            raise StorageError(STORAGE_FAILED) from exc


def _save(body: Any, path: Path) -> None:
    try:
        with path.open("wb") as f:
            shutil.copyfileobj(body, f, 1 << 20)
    finally:
        body.close()


async def _pieces(body: Any) -> AsyncIterator[bytes]:
    try:
        while piece := await asyncio.to_thread(body.read, STREAM_PIECE):
            yield piece
    finally:
        body.close()
