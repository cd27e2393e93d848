"""The file store: uploaded bytes on disk under ``settings.files_dir``, named by their SHA-256.

Shared files (内部硬盘共享) and notice attachments keep their metadata -- the user's file name, who, when,
with whom it is shared -- in the database, and only their content here. A file's path is made from its
digest (``ab/abcdef…``), never from a name the user typed, so no upload can write outside the store or
over another file; the same content uploaded twice is stored once. Files are written to a temporary name
and renamed into place, so a reader never sees half a file.

The limits (size, allowed types) come from the settings and are checked before anything is written:
too large is 413, a type outside the allow-list 415, both with a Chinese message.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path, PureWindowsPath

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from gis.settings import Settings

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 255


class FileTooLarge(ServiceError):
    status = 413


class FileTypeRefused(ServiceError):
    status = 415


class FileNameInvalid(ServiceError):
    status = 422


def clean_file_name(name: str | None) -> str:
    """The name to show and to offer on download: the last path component, without control characters.

    >>> clean_file_name("C:\\\\fakepath\\\\关于开展排查的通知.pdf")
    '关于开展排查的通知.pdf'
    >>> clean_file_name("../../etc/passwd")
    'passwd'
    """
    # Browsers on Windows may send a whole path; treat both separators as separators.
    base = PureWindowsPath(str(name or "")).name
    base = _CONTROL.sub("", base).strip().strip(".")
    if not base:
        raise FileNameInvalid("文件名不能为空 (file name is empty)")
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else base[:MAX_NAME]
    return base


def extension(name: str) -> str:
    """The lower-case extension of ``name`` without its dot ('' when there is none)."""
    _, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def check_upload(settings: Settings, file_name: str, size: int) -> None:
    """Refuse a file over the size limit (413) or of a type not on the allow-list (415)."""
    if size > settings.files_max_bytes:
        raise FileTooLarge(f"文件“{file_name}”超过大小限制 {_megabytes(settings.files_max_bytes)}，"
                           "请压缩或拆分后再上传 (file too large)")
    allowed = {t.lower().lstrip(".") for t in settings.files_allowed_types}
    if extension(file_name) not in allowed:
        raise FileTypeRefused(f"不允许上传该类型的文件“{file_name}”；允许的类型：{'、'.join(sorted(allowed))}"
                              " (file type not allowed)")


def read_limited(stream, settings: Settings) -> bytes:
    """Read an upload, at most one byte past the limit (enough to know it is too large)."""
    return stream.read(settings.files_max_bytes + 1)


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def path_for(settings: Settings, digest: str) -> Path:
    if not _DIGEST.match(digest or ""):
        raise ValueError(f"not a SHA-256 digest: {digest!r}")
    return Path(settings.files_dir).resolve() / digest[:2] / digest


def save(settings: Settings, data: bytes) -> str:
    """Store ``data`` (once) and return its SHA-256, the key the database keeps."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_for(settings, digest)
    if target.exists() and target.stat().st_size == len(data):
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def load(settings: Settings, digest: str) -> bytes:
    return path_for(settings, digest).read_bytes()


# Every column that holds a digest of this store. The bytes are written before the row that names them,
# so an upload whose transaction rolled back leaves bytes nobody names: the sweep removes those.
REFERENCING_COLUMNS = (("shared_file", "sha256"), ("notice_attachment", "sha256"))


def referenced_digests(conn: Connection) -> set[str]:
    """Every digest a row names, soft-deleted rows included (their history still offers the file). Read
    as the owner: a digest outside one user's scope is still in use."""
    union = " UNION ".join(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
                           for table, column in REFERENCING_COLUMNS)
    return set(conn.execute(text(union)).scalars())


def sweep(settings: Settings, referenced: Iterable[str], *, grace_seconds: float = 86_400,
          dry_run: bool = False) -> list[Path]:
    """Remove stored files no row names, and temporary files left by interrupted uploads, once they are
    older than ``grace_seconds`` (an upload still in its transaction is younger); returns what was (or,
    with ``dry_run``, would be) removed."""
    root = Path(settings.files_dir).resolve()
    if not root.is_dir():
        return []
    keep = set(referenced)
    cutoff = time.time() - grace_seconds
    removed = []
    for path in sorted(root.glob("??/*")):
        orphan = path.name.startswith(".upload-") or (_DIGEST.match(path.name) and path.name not in keep)
        if orphan and path.is_file() and path.stat().st_mtime < cutoff:
            if not dry_run:
                path.unlink()
            removed.append(path)
    return removed
