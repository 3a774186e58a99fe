"""What may be uploaded: allowed extensions, file-name sanitising, content sniffing.

Pure functions over names and bytes (plus two that read a file from disk, to be
run in a thread). The extension decides the stored MIME type; the client's claim
is never trusted. The content must agree with the extension: magic bytes where
the format has them, valid UTF-8 for text formats, and nothing that starts like a
native executable, whatever it is called.
"""

from __future__ import annotations

import codecs
import re
import struct
import unicodedata
from pathlib import Path
from typing import BinaryIO

from chinwag.protocol.errors import FileTypeNotAllowed

#: The guide's list, by category. Extensions are lower case, without the dot.
CATEGORIES: dict[str, frozenset[str]] = {
    "images": frozenset({"jpg", "jpeg", "png", "gif", "bmp", "webp", "svg"}),
    "documents": frozenset({"pdf", "doc", "docx", "txt", "rtf", "odt"}),
    "spreadsheets": frozenset({"xls", "xlsx", "csv", "ods"}),
    "presentations": frozenset({"ppt", "pptx", "odp"}),
    "archives": frozenset({"zip", "rar", "7z", "tar", "gz"}),
    "code": frozenset({"py", "js", "html", "css", "json", "xml", "md"}),
    "audio": frozenset({"mp3", "wav", "ogg", "m4a", "flac"}),
    "video": frozenset({"mp4", "avi", "mov", "wmv", "webm"}),
}
ALLOWED_EXTENSIONS: frozenset[str] = frozenset().union(*CATEGORIES.values())

#: Stored MIME type per extension (what downloads are served as).
MIME_TYPES: dict[str, str] = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain",
    "rtf": "application/rtf",
    "odt": "application/vnd.oasis.opendocument.text",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "zip": "application/zip",
    "rar": "application/vnd.rar",
    "7z": "application/x-7z-compressed",
    "tar": "application/x-tar",
    "gz": "application/gzip",
    "py": "text/x-python",
    "js": "text/javascript",
    "html": "text/html",
    "css": "text/css",
    "json": "application/json",
    "xml": "application/xml",
    "md": "text/markdown",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "avi": "video/x-msvideo",
    "mov": "video/quicktime",
    "wmv": "video/x-ms-wmv",
    "webm": "video/webm",
}

#: Formats checked as text: valid UTF-8, no NUL bytes.
TEXT_EXTENSIONS: frozenset[str] = frozenset(
    {"txt", "csv", "py", "js", "html", "css", "json", "xml", "md", "svg"}
)
#: Formats that are zip containers (their members are checked, see zip_declared_sizes_ok).
ZIP_EXTENSIONS: frozenset[str] = frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"})
#: How many leading bytes sniff_ok needs to decide (tar's magic sits at 257).
SNIFF_BYTES = 4096

_EXECUTABLE_MAGIC: tuple[bytes, ...] = (
    b"MZ",  # DOS/Windows PE
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit, big endian
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit, big endian
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit, little endian
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit, little endian
    b"\xca\xfe\xba\xbe",  # Mach-O universal (also Java class files)
    b"#!",  # interpreter scripts
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_QUICKTIME_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")

_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')
_MAX_NAME_BYTES = 255


def sanitize_filename(name: str) -> str:
    """A display name safe to store, show and put in ``Content-Disposition``.

    Normalises to NFKC first, so compatibility forms (fullwidth U+FF0F solidus, U+FF0E stop)
    are sanitised as the characters they stand for. Then keeps only the last path
    component (``/`` and ``\\`` both count), drops control
    and bidi-format characters, leading dots and spaces, trailing dots and spaces,
    replaces characters Windows forbids, and caps the name at 255 UTF-8 bytes
    (keeping the extension). Never returns an empty string. The result is metadata
    only: storage never uses it in a path.
    """
    text = unicodedata.normalize("NFKC", name).replace("\\", "/")
    text = text.rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})
    text = _UNSAFE_CHARS.sub("_", text)
    text = text.lstrip(". ").rstrip(". ")
    if _WINDOWS_RESERVED.match(text):
        text = "_" + text
    if len(text.encode()) > _MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext) > 16:
            stem, ext = text, ""
        suffix = f".{ext}" if ext else ""
        budget = _MAX_NAME_BYTES - len(suffix.encode())
        stem = stem.encode()[:budget].decode(errors="ignore")
        text = stem + suffix
    return text or "file"


def extension_of(name: str) -> str:
    """Lower-case extension of ``name`` without the dot; ``""`` when it has none."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem.strip(". ") else ""


def check_extension(name: str) -> str:
    """Return the extension of ``name`` if the guide allows it, else raise FileTypeNotAllowed."""
    ext = extension_of(name)
    if ext not in ALLOWED_EXTENSIONS:
        raise FileTypeNotAllowed(
            "this file type is not allowed",
            details={"extension": ext, "allowed": sorted(ALLOWED_EXTENSIONS)},
        )
    return ext


def mime_for(extension: str) -> str:
    """The MIME type a file with ``extension`` is stored and served as."""
    return MIME_TYPES.get(extension.lower(), "application/octet-stream")


def is_executable(first_bytes: bytes) -> bool:
    """True when the content starts like a native executable or an interpreter script."""
    return first_bytes.startswith(_EXECUTABLE_MAGIC)


def _utf8_text_ok(data: bytes, *, final: bool) -> bool:
    if b"\x00" in data:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _mp3_ok(b: bytes) -> bool:
    if b.startswith(b"ID3"):
        return True
    if len(b) < 2 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return False
    version = (b[1] >> 3) & 0x3
    layer = (b[1] >> 1) & 0x3
    return version != 0b01 and layer != 0b00  # both values are reserved


def _magic_ok(ext: str, b: bytes) -> bool:
    riff_kind = b[8:12] if b.startswith(b"RIFF") else b""
    match ext:
        case "png":
            return b.startswith(b"\x89PNG\r\n\x1a\n")
        case "jpg" | "jpeg":
            return b.startswith(b"\xff\xd8\xff")
        case "gif":
            return b.startswith((b"GIF87a", b"GIF89a"))
        case "bmp":
            return b.startswith(b"BM")
        case "webp":
            return riff_kind == b"WEBP"
        case "pdf":
            return b"%PDF-" in b[:1024]
        case "zip" | "docx" | "xlsx" | "pptx" | "odt" | "ods" | "odp":
            return b.startswith(_ZIP_MAGIC)
        case "rar":
            return b.startswith((b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00"))
        case "7z":
            return b.startswith(b"7z\xbc\xaf\x27\x1c")
        case "gz":
            return b.startswith(b"\x1f\x8b")
        case "tar":
            return b[257:262] == b"ustar"
        case "doc" | "xls" | "ppt":
            return b.startswith(_OLE2_MAGIC)
        case "rtf":
            return b.startswith(b"{\\rtf")
        case "mp3":
            return _mp3_ok(b)
        case "wav":
            return riff_kind == b"WAVE"
        case "avi":
            return riff_kind == b"AVI "
        case "ogg":
            return b.startswith(b"OggS")
        case "flac":
            return b.startswith((b"fLaC", b"ID3"))
        case "mp4" | "m4a":
            return b[4:8] == b"ftyp"
        case "mov":
            return b[4:8] in _QUICKTIME_ATOMS
        case "webm":
            return b.startswith(b"\x1a\x45\xdf\xa3")
        case "wmv":
            return b.startswith(_ASF_GUID)
    return False


def sniff_ok(extension: str, first_bytes: bytes) -> bool:
    """True when ``first_bytes`` (the start of the file, ideally SNIFF_BYTES long)
    agrees with ``extension``.

    Executables (MZ, ELF, Mach-O, ``#!`` scripts) are refused for every extension,
    so a ``.py`` that starts with a shebang line is refused too. Text formats must
    be UTF-8 without NUL bytes; a multi-byte character cut at the end of the
    prefix is tolerated (see ``sniff_file`` for the whole-file check).
    """
    ext = extension.lower()
    if ext not in ALLOWED_EXTENSIONS or is_executable(first_bytes):
        return False
    if ext in TEXT_EXTENSIONS:
        return _utf8_text_ok(first_bytes, final=False)
    return _magic_ok(ext, first_bytes)


def sniff_file(extension: str, path: Path, *, piece: int = 1 << 20) -> bool:
    """``sniff_ok`` on the file at ``path``; text formats are checked to the end.

    Blocking: run it in a thread. Reads ``piece`` bytes at a time.
    """
    ext = extension.lower()
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
        if not sniff_ok(ext, head):
            return False
        if ext not in TEXT_EXTENSIONS:
            return True
        decoder = codecs.getincrementaldecoder("utf-8")()
        data = head
        try:
            while data:
                if b"\x00" in data:
                    return False
                decoder.decode(data, final=False)
                data = f.read(piece)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


#: clamd's default ``MaxFiles``: members past it are not scanned, yet the verdict is OK.
MAX_ARCHIVE_MEMBERS = 10_000
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory record (APPNOTE 4.3.12)
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record
_U32, _U16 = 0xFFFFFFFF, 0xFFFF


def zip_declared_sizes_ok(
    path: Path | str, limit: int, max_members: int = MAX_ARCHIVE_MEMBERS
) -> bool:
    """False if the zip at ``path`` cannot be read, has more than ``max_members``
    members, or any member declares more than ``limit`` uncompressed bytes.

    clamd scans an archive member only up to its ``MaxFileSize``, and only the first
    ``MaxFiles`` members, and then answers OK without an alert, so such an archive
    cannot be vouched for. The central directory is walked record by record in
    constant memory (``zipfile`` builds an object per member: a 50 MB archive of 1M
    empty members cost 440 MiB and 4.6 s), stopping at the first refusal. Blocking:
    run it in a thread.
    """
    try:
        with open(path, "rb", buffering=1 << 16) as f:
            where = _central_directory(f)
            if where is None:
                return False
            start, size = where
            f.seek(start)
            return _members_ok(f, size, limit, max_members)
    except (OSError, struct.error, ValueError):
        return False


def _central_directory(f: BinaryIO) -> tuple[int, int] | None:
    """(offset, size) of the central directory, located from the end records the way
    ``zipfile`` does (data prepended to the archive is allowed)."""
    f.seek(0, 2)
    file_size = f.tell()
    tail_size = min(file_size, _EOCD.size + _U16)
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    eocd = file_size - tail_size + at
    _, _, _, _, entries, size, offset, _ = _EOCD.unpack_from(tail, at)
    end = eocd
    if entries == _U16 or _U32 in (size, offset):
        if eocd < _LOCATOR.size:
            return None
        f.seek(eocd - _LOCATOR.size)
        sig, _, _, _ = _LOCATOR.unpack(f.read(_LOCATOR.size))
        if sig != b"PK\x06\x07":
            return None
        end = eocd - _LOCATOR.size - _EOCD64.size
        f.seek(end)
        record = f.read(_EOCD64.size)
        if len(record) < _EOCD64.size or record[:4] != b"PK\x06\x06":
            return None
        size = _EOCD64.unpack(record)[8]
    start = end - size
    return (start, size) if start >= 0 else None


def _members_ok(f: BinaryIO, size: int, limit: int, max_members: int) -> bool:
    members = 0
    while size > 0:
        head = f.read(_CENTRAL.size)
        if len(head) < _CENTRAL.size or head[:4] != b"PK\x01\x02":
            return False
        fields = _CENTRAL.unpack(head)
        declared, name_len, extra_len, comment_len = fields[11], *fields[12:15]
        rest = f.read(name_len + extra_len + comment_len)
        if len(rest) < name_len + extra_len + comment_len:
            return False
        if declared == _U32:  # the real size is in the zip64 extra field
            declared = _zip64_size(rest[name_len : name_len + extra_len])
            if declared is None:
                return False
        members += 1
        if members > max_members or declared > limit:
            return False
        size -= _CENTRAL.size + len(rest)
    return size == 0


def _zip64_size(extra: bytes) -> int | None:
    """The uncompressed size from a zip64 extended information field (its first
    value, present because the record's own field says 0xFFFFFFFF)."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, at)
        if tag == 1 and length >= 8:
            return int(struct.unpack_from("<Q", extra, at + 4)[0])
        at += 4 + length
    return None


def gzip_declared_size_ok(path: Path | str, limit: int) -> bool:
    """False if the gzip trailer of ``path`` declares more than ``limit`` bytes.

    The trailer holds the size modulo 2**32 of the last member only, so this is a
    cheap first line; clamd itself alerts on gzip content over its limits
    (``AlertExceedsMax``). Blocking: run it in a thread.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 18:
                return False
            f.seek(-4, 2)
            declared = int.from_bytes(f.read(4), "little")
    except OSError:
        return False
    return declared <= limit
