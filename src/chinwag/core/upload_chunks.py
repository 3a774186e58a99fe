"""One upload chunk checked against its upload: index, count, base64 and size.

The frame models guarantee the types and signs; this checks what depends on the
upload record (its chunk size, file size and chunk count).
"""

from __future__ import annotations

import base64
import binascii

from chinwag.protocol.errors import ChunkTooLarge, InvalidMessage
from chinwag.store.files import UploadRecord


def checked_chunk(
    upload: UploadRecord, chunk_index: int, total_chunks: int | None, chunk_data_b64: str
) -> tuple[int, bytes]:
    """The chunk's byte offset and bytes. Every chunk but the last is exactly
    ``chunk_size`` bytes, the last holds the rest. Raises INVALID_MESSAGE,
    CHUNK_TOO_LARGE."""
    if total_chunks is not None and total_chunks != upload.total_chunks:
        raise InvalidMessage(
            f"total_chunks must be {upload.total_chunks}",
            details={"field": "total_chunks", "expected": upload.total_chunks},
        )
    if chunk_index >= upload.total_chunks:
        raise InvalidMessage(
            f"chunk_index must be between 0 and {upload.total_chunks - 1}",
            details={"field": "chunk_index", "total_chunks": upload.total_chunks},
        )
    data = decode_chunk(chunk_data_b64, upload.chunk_size)
    offset = chunk_index * upload.chunk_size
    expected = min(upload.chunk_size, upload.file_size - offset)
    if len(data) != expected:
        raise InvalidMessage(
            f"chunk {chunk_index} must hold {expected} bytes, not {len(data)}",
            details={"field": "chunk_data", "expected_size": expected},
        )
    return offset, data


def decode_chunk(chunk_data_b64: str, chunk_size: int) -> bytes:
    # Refuse oversized text before decoding it: 4 characters per 3 bytes.
    if len(chunk_data_b64) > 4 * -(-chunk_size // 3):
        raise _too_large(chunk_size)
    try:
        data = base64.b64decode(chunk_data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidMessage(
            "chunk_data is not valid base64", details={"field": "chunk_data"}
        ) from exc
    if len(data) > chunk_size:
        raise _too_large(chunk_size)
    return data


def progress(received: int, total: int) -> float:
    """Percent of chunks received, two decimals; an empty file is complete."""
    return 100.0 if total == 0 else round(100.0 * received / total, 2)


def _too_large(chunk_size: int) -> ChunkTooLarge:
    return ChunkTooLarge(
        f"a chunk may hold at most {chunk_size} bytes",
        details={"max_chunk_size": chunk_size},
    )
