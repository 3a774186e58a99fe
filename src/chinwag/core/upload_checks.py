"""What an assembled upload must pass before it is published: its checksum, its
content sniff and archive member sizes, and the virus scan, in that order."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from chinwag.files import policy
from chinwag.files.scanner import Scanner
from chinwag.protocol.errors import ChecksumMismatch, FileTypeNotAllowed, VirusDetected
from chinwag.store.files import UploadRecord

logger = logging.getLogger(__name__)


async def check_assembled(
    upload: UploadRecord, path: Path, checksum: str, scanner: Scanner, max_file_size: int
) -> None:
    """Raise CHECKSUM_MISMATCH, FILE_TYPE_NOT_ALLOWED, VIRUS_DETECTED or
    SCAN_UNAVAILABLE; return when ``path`` may be published."""
    digest = await asyncio.to_thread(_sha256, path)
    if digest != checksum:
        raise ChecksumMismatch(
            "the SHA-256 of the received bytes differs from the checksum; upload again",
            details={"expected": checksum, "actual": digest},
        )
    await _check_content(upload.extension, path, max_file_size)
    try:
        await scanner.scan(path)
    except VirusDetected:
        logger.warning("upload %s by %s rejected by the scanner", upload.file_id, upload.owner)
        raise
    # ScanUnavailable propagates with the upload kept: finalize may be retried.


async def _check_content(ext: str, path: Path, limit: int) -> None:
    ok = await asyncio.to_thread(policy.sniff_file, ext, path)
    reason = "the content does not match the file type"
    if ok and ext in policy.ZIP_EXTENSIONS:
        ok = await asyncio.to_thread(policy.zip_declared_sizes_ok, path, limit)
        reason = "the archive is unreadable or holds members too large to scan"
    elif ok and ext == "gz":
        ok = await asyncio.to_thread(policy.gzip_declared_size_ok, path, limit)
        reason = "the archive holds content too large to scan"
    if not ok:
        raise FileTypeNotAllowed(reason, details={"extension": ext})


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
