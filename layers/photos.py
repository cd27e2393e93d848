"""Photos taken in the field for a diary entry or a 帮扶记录 (table ``field_photo``, migration 0010).

Stored like event attachments (0004): the description in one table, the bytes in another whose rows are
visible exactly when the description is, both under the scope of what they belong to. The event tables
themselves are keyed to an event, so they could not be reused as they are; what is shared with them is
the upload shape (:class:`layers.events.Upload`) and the size limit.

>>> with scoped_connection(settings, user) as conn:                                 # doctest: +SKIP
...     store_photos(conn, user, "diary", 42, [Upload("a.jpg", "image/jpeg", data)])
[7]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text

from gis.errors import ServiceError
from layers.events.service import MAX_ATTACHMENT_BYTES, Upload

PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")
MAX_PHOTOS = 9  # what a phone's picker allows at once
OWNERS = ("diary", "assistance_visit")  # field_photo.owner_table's CHECK


class PhotoError(ServiceError):
    status = 422


def check_uploads(uploads: Iterable[Upload]) -> list[Upload]:
    """The uploads, refused (Chinese message) when one is not a photo, too large, or too many."""
    uploads = list(uploads)
    if len(uploads) > MAX_PHOTOS:
        raise PhotoError(f"一次最多上传 {MAX_PHOTOS} 张照片 (too many photos)")
    for upload in uploads:
        if upload.content_type not in PHOTO_TYPES:
            raise PhotoError(f"“{upload.filename}”不是照片（{upload.content_type}），"
                             "可上传 JPEG、PNG、WebP、HEIC (not a photo)")
        if len(upload.data) > MAX_ATTACHMENT_BYTES:
            megabytes = MAX_ATTACHMENT_BYTES // 1024 // 1024
            raise PhotoError(f"照片 {upload.filename} 超过 {megabytes} MB (too large)")
        if not upload.data:
            raise PhotoError(f"照片 {upload.filename} 是空文件 (empty file)")
    return uploads


def store_photos(conn: Connection, user: Any, owner_table: str, owner_id: int, uploads: Iterable[Upload],
                 ) -> list[int]:
    """Store photos of a row of ``owner_table`` (under that row's org_path); returns their ids."""
    if owner_table not in OWNERS:
        raise ValueError(f"photos belong to one of {OWNERS}, not {owner_table!r}")
    ids = []
    for upload in check_uploads(uploads):
        photo_id = conn.execute(text(f"""
            INSERT INTO field_photo (owner_table, owner_id, filename, content_type, size, sha256,
                uploaded_by, org_path, district_code)
            SELECT :owner_table, o.id, :name, :type, :size, :sha, :uid, o.org_path, o.district_code
              FROM {owner_table} o WHERE o.id = :owner_id
            RETURNING id"""), {
            "owner_table": owner_table, "owner_id": owner_id, "name": (upload.filename or "照片")[:200],
            "type": upload.content_type, "size": len(upload.data),
            "sha": hashlib.sha256(upload.data).hexdigest(), "uid": user.id}).scalar_one()
        conn.execute(text("INSERT INTO field_photo_data (photo_id, data) VALUES (:p, :data)"),
                     {"p": photo_id, "data": upload.data})
        ids.append(photo_id)
    return ids


def photos_of(conn: Connection, owner_table: str, owner_ids: list[int]) -> dict[int, list[dict]]:
    """``{owner id: [{id, filename, content_type, size}]}`` for the rows given (the caller's scope)."""
    found: dict[int, list[dict]] = {i: [] for i in owner_ids}
    if not owner_ids:
        return found
    for row in conn.execute(text(
        "SELECT id, owner_id, filename, content_type, size FROM field_photo"
        " WHERE owner_table = :t AND owner_id = ANY(:ids) ORDER BY id"),
            {"t": owner_table, "ids": owner_ids}).mappings():
        found[row["owner_id"]].append(dict(row))
    return found


def photo(conn: Connection, owner_table: str, owner_id: int, photo_id: int) -> Any:
    """``(filename, content_type, data)`` of one photo, or None (not there, or not in scope)."""
    return conn.execute(text(
        "SELECT f.filename, f.content_type, d.data FROM field_photo f"
        " JOIN field_photo_data d ON d.photo_id = f.id"
        " WHERE f.id = :p AND f.owner_table = :t AND f.owner_id = :o"),
        {"p": photo_id, "t": owner_table, "o": owner_id}).first()
