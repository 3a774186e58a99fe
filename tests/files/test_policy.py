"""File type policy: extensions, names, content sniffing, archive member sizes."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from chinwag.files import policy
from chinwag.protocol.errors import FileTypeNotAllowed


def _tar_header() -> bytes:
    header = bytearray(512)
    header[0:5] = b"a.txt"
    header[257:263] = b"ustar\x00"
    return bytes(header)


#: A plausible start of a real file for every allowed extension.
SAMPLES: dict[str, bytes] = {
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "jpeg": b"\xff\xd8\xff\xe1\x00\x10Exif\x00",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "gif": b"GIF89a\x01\x00\x01\x00",
    "bmp": b"BM6\x00\x00\x00\x00\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8),
    "docx": b"PK\x03\x04\x14\x00\x06\x00",
    "txt": "hello, world — café\n".encode(),
    "rtf": b"{\\rtf1\\ansi hello}",
    "odt": b"PK\x03\x04\x14\x00\x00\x08mimetype",
    "xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8),
    "xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    "csv": b"a,b,c\n1,2,3\n",
    "ods": b"PK\x03\x04\x14\x00\x00\x08mimetype",
    "ppt": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8),
    "pptx": b"PK\x03\x04\x14\x00\x06\x00",
    "odp": b"PK\x03\x04\x14\x00\x00\x08mimetype",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "rar": b"Rar!\x1a\x07\x01\x00",
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04",
    "tar": _tar_header(),
    "gz": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    "py": b"import os\nprint(os.name)\n",
    "js": b"console.log('hi');\n",
    "html": b"<!doctype html><title>x</title>",
    "css": b"body { color: red; }\n",
    "json": b'{"a": [1, 2]}',
    "xml": b'<?xml version="1.0"?><a/>',
    "md": b"# Title\n\n*text*\n",
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "ogg": b"OggS\x00\x02\x00\x00",
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00",
    "flac": b"fLaC\x00\x00\x00\x22",
    "mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00",
    "avi": b"RIFF\x24\x00\x00\x00AVI LIST",
    "mov": b"\x00\x00\x00\x14ftypqt  \x00\x00",
    "wmv": bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(8),
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81",
}

EXECUTABLES = {
    "pe": b"MZ\x90\x00\x03\x00\x00\x00",
    "elf": b"\x7fELF\x02\x01\x01\x00",
    "macho": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01",
    "script": b"#!/bin/sh\nrm -rf /\n",
}


def test_samples_cover_exactly_the_guides_list() -> None:
    assert set(SAMPLES) == policy.ALLOWED_EXTENSIONS
    assert len(policy.ALLOWED_EXTENSIONS) == 42


@pytest.mark.parametrize("ext", sorted(SAMPLES))
def test_every_allowed_extension_is_accepted_with_matching_content(ext: str) -> None:
    assert policy.check_extension(f"file.{ext}") == ext
    assert policy.sniff_ok(ext, SAMPLES[ext])
    assert policy.mime_for(ext) != "application/octet-stream"


@pytest.mark.parametrize("name", ["run.exe", "x.sh", "x.php", "x.bat", "noext", "x.", ".png"])
def test_extension_outside_the_list_is_refused(name: str) -> None:
    with pytest.raises(FileTypeNotAllowed):
        policy.check_extension(name)


def test_extension_check_ignores_case_and_looks_at_the_last_suffix() -> None:
    assert policy.check_extension("PHOTO.PNG") == "png"
    assert policy.check_extension("backup.tar.gz") == "gz"
    with pytest.raises(FileTypeNotAllowed):
        policy.check_extension("invoice.pdf.exe")


@pytest.mark.parametrize("kind", sorted(EXECUTABLES))
@pytest.mark.parametrize("ext", sorted(SAMPLES))
def test_executable_content_is_refused_whatever_the_extension(ext: str, kind: str) -> None:
    assert not policy.sniff_ok(ext, EXECUTABLES[kind] + SAMPLES[ext])


def test_png_that_is_really_an_elf_or_a_pe_is_refused() -> None:
    assert not policy.sniff_ok("png", EXECUTABLES["elf"])
    assert not policy.sniff_ok("png", EXECUTABLES["pe"])


@pytest.mark.parametrize(
    ("ext", "content"),
    [
        ("png", SAMPLES["jpg"]),
        ("jpg", SAMPLES["png"]),
        ("pdf", SAMPLES["zip"]),
        ("docx", SAMPLES["doc"]),
        ("doc", SAMPLES["docx"]),
        ("wav", SAMPLES["avi"]),
        ("avi", SAMPLES["webp"]),
        ("mp4", b"\x00" * 16),
        ("tar", b"\x00" * 600),
        ("mp3", b"\xff\xd8\xff\xe0"),  # JPEG's marker is not an MPEG frame sync
        ("gif", b""),
    ],
)
def test_content_that_contradicts_the_extension_is_refused(ext: str, content: bytes) -> None:
    assert not policy.sniff_ok(ext, content)


@pytest.mark.parametrize("content", [b"abc\x00def", b"caf\xe9 latin-1", b"\xff\xfeh\x00i\x00"])
def test_text_formats_need_utf8_without_nul(content: bytes) -> None:
    assert not policy.sniff_ok("txt", content)
    assert not policy.sniff_ok("json", content)


def test_text_prefix_cut_inside_a_multibyte_character_is_tolerated() -> None:
    prefix = ("é" * 3000).encode()[: policy.SNIFF_BYTES - 1]
    assert policy.sniff_ok("txt", prefix)


def test_sniff_file_checks_text_to_the_end(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_bytes(b"a" * 100_000 + "é".encode())
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a" * 100_000 + b"\x00")
    truncated = tmp_path / "truncated.txt"
    truncated.write_bytes(b"a" * 10 + "é".encode()[:1])
    assert policy.sniff_file("txt", good)
    assert not policy.sniff_file("txt", bad)
    assert not policy.sniff_file("txt", truncated)


def test_empty_text_file_is_fine_but_empty_binary_is_not(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert policy.sniff_file("txt", empty)
    assert not policy.sniff_file("png", empty)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/abs/path/report.pdf", "report.pdf"),
        (".bashrc", "bashrc"),
        ("...", "file"),
        ("", "file"),
        ("   ", "file"),
        ("a\x00b\nc\td.txt", "abcd.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),  # right-to-left override removed
        ('what?<>:"|*.txt', "what_______.txt"),
        ("CON.txt", "_CON.txt"),
        ("trailing. . ", "trailing"),
        ("photo.png", "photo.png"),
        ("résumé.pdf", "résumé.pdf"),
        ("\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fx.txt", "x.txt"),  # fullwidth ../../
        ("a\uff3cb\uff1ac.\uff54\uff58\uff54", "b_c.txt"),  # fullwidth \ : and txt
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert policy.sanitize_filename(raw) == clean


def test_sanitized_passwd_path_is_harmless_metadata_with_no_allowed_extension() -> None:
    name = policy.sanitize_filename("../../etc/passwd")
    assert "/" not in name and ".." not in name
    with pytest.raises(FileTypeNotAllowed):
        policy.check_extension(name)


def test_long_names_are_capped_and_keep_their_extension() -> None:
    name = policy.sanitize_filename("é" * 300 + ".pdf")
    assert len(name.encode()) <= 255
    assert name.endswith(".pdf")


def test_mime_type_comes_from_the_extension() -> None:
    assert policy.mime_for("png") == "image/png"
    assert policy.mime_for("PDF") == "application/pdf"
    assert policy.mime_for("html") == "text/html"
    assert policy.mime_for("exe") == "application/octet-stream"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_with_small_members_passes(tmp_path: Path) -> None:
    path = _zip(tmp_path / "a.zip", {"a.txt": b"a" * 1000, "b.txt": b"b"})
    assert policy.zip_declared_sizes_ok(path, limit=1000)


def test_zip_member_declaring_more_than_the_limit_fails(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.zip", {"small": b"x", "zeros": bytes(2_000_000)})
    assert path.stat().st_size < 10_000
    assert not policy.zip_declared_sizes_ok(path, limit=1_000_000)


def test_unreadable_zip_fails(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert not policy.zip_declared_sizes_ok(path, limit=10**9)
    assert not policy.zip_declared_sizes_ok(tmp_path / "missing.zip", limit=10**9)


def test_zip_with_more_members_than_clamd_scans_fails(tmp_path: Path) -> None:
    members = {f"{i}.txt": b"" for i in range(policy.MAX_ARCHIVE_MEMBERS + 1)}
    path = _zip(tmp_path / "many.zip", members)
    assert not policy.zip_declared_sizes_ok(path, limit=10**9)
    assert policy.zip_declared_sizes_ok(
        path, limit=10**9, max_members=policy.MAX_ARCHIVE_MEMBERS + 1
    )


def test_zip64_records_and_prepended_data_are_read_like_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "z64.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, size in (("a", 10), ("b", 3000)):
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(bytes(size))
    assert policy.zip_declared_sizes_ok(path, limit=3000)
    assert not policy.zip_declared_sizes_ok(path, limit=2999)
    prefixed = tmp_path / "sfx.zip"
    prefixed.write_bytes(b"#" * 500 + path.read_bytes())
    with zipfile.ZipFile(prefixed) as archive:  # zipfile accepts it: so do we
        assert [i.file_size for i in archive.infolist()] == [10, 3000]
    assert policy.zip_declared_sizes_ok(prefixed, limit=3000)


def test_zip_whose_central_directory_is_cut_fails(tmp_path: Path) -> None:
    data = _zip(tmp_path / "a.zip", {"a.txt": b"a", "b.txt": b"b"}).read_bytes()
    eocd = data.rfind(b"PK\x05\x06")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: eocd - 10] + data[eocd:])
    assert not policy.zip_declared_sizes_ok(cut, limit=10**9)


def test_gzip_trailer_size_is_checked(tmp_path: Path) -> None:
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(b"a" * 1000))
    big = tmp_path / "big.gz"
    big.write_bytes(gzip.compress(bytes(2_000_000)))
    assert policy.gzip_declared_size_ok(small, limit=1000)
    assert not policy.gzip_declared_size_ok(big, limit=1_000_000)
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(b"\x1f\x8b\x08")
    assert not policy.gzip_declared_size_ok(truncated, limit=1000)
