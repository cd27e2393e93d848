"""内部硬盘共享: folders and files shared with a territory unit (with or without its subtree) and/or a
department, stored in the file store (:mod:`layers.file_store`) with their metadata in the database.

Visibility is row-level security (0009): a folder or file shows to the unit it is shared with and the
units above it (who manage it), to the units below when shared with the subtree, and to the officers of
the department it is shared with. A file is shared by default like the folder it is put in; at the top
level, with the uploader's own unit and its subtree. One may share only inside one's own scope.

Deleting is soft (``deleted_at``, ``deleted_by``): the uploader may delete their own files, a holder of
``file:manage`` any file they manage; the change history records the row change and the access log
records who deleted (and who downloaded) which file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from gis.errors import ServiceError
from gis.security import audit
from gis.settings import Settings
from layers import file_store


class FileError(ServiceError):
    status = 400


class FileForbidden(FileError):
    status = 403


class FileNotFound(FileError):
    status = 404


class FileConflict(FileError):
    status = 409


class FileInvalid(FileError):
    status = 422


@dataclass(frozen=True)
class Share:
    """With whom: a territory unit (id; None = as the folder, or the user's own unit) and/or a department."""

    unit_id: int | None = None
    subtree: bool | None = None
    department: str | None = None


_FOLDER_COLUMNS = ("f.id, f.name, f.parent_id, f.org_path::text AS shared_path, f.share_subtree AS subtree,"
                   " f.department, f.created_by_name AS created_by, f.created_at")
_FILE_COLUMNS = ("f.id, f.file_name, f.folder_id, f.size, f.content_type, f.uploader, f.uploader_id,"
                 " f.uploaded_at, f.org_path::text AS shared_path, f.share_subtree AS subtree, f.department")


def _require(user: Any, permission: str, message: str) -> None:
    if not user.has(permission):
        raise FileForbidden(message)


def _folder(conn: Connection, folder_id: int) -> dict[str, Any]:
    row = conn.execute(text(
        f"SELECT {_FOLDER_COLUMNS}, f.district_code FROM shared_folder f"
        " WHERE f.id = :id AND f.deleted_at IS NULL"), {"id": folder_id}).mappings().first()
    if row is None:
        raise FileNotFound(f"文件夹 {folder_id} 不存在或未共享给您 (folder not found)")
    return dict(row)


def _share_target(conn: Connection, user: Any, share: Share,
                  folder: dict | None) -> tuple[str, bool, str | None]:
    """``(org_path, subtree, department)`` for a new folder or file."""
    if share.unit_id is not None:
        row = conn.execute(text(
            "SELECT path::text, name, path <@ app.current_scope() AS inside FROM territory_unit"
            " WHERE id = :id"),
            {"id": share.unit_id}).first()
        if row is None or not row.inside:
            raise FileForbidden(f"区划“{row.name if row else share.unit_id}”不存在或不在您的辖区内，"
                                "只能共享给本辖区内的单位 (outside your scope)")
        path = row.path
    elif folder is not None and _inside(conn, folder["shared_path"]):
        path = folder["shared_path"]
    else:
        path = user.scope_path
    subtree = share.subtree if share.subtree is not None else (folder["subtree"] if folder else True)
    department = share.department if share.department is not None else (folder or {}).get("department")
    if department:
        known = conn.execute(text(
            "SELECT 1 FROM code_item WHERE table_key = 'department' AND code = :d"),
            {"d": department}).first()
        if known is None:
            raise FileInvalid(f"未知部门：{department} (unknown department)")
    return path, subtree, department or None


def _inside(conn: Connection, path: str) -> bool:
    return bool(conn.execute(text("SELECT CAST(:p AS ltree) <@ app.current_scope()"), {"p": path}).scalar())


def list_folder(conn: Connection, user: Any, folder_id: int | None = None) -> dict[str, Any]:
    """A folder's sub-folders and files (the top level when ``folder_id`` is None), with its breadcrumbs."""
    _require(user, "file:read", "您没有查看共享文件的权限 (file:read required)")
    folder = _folder(conn, folder_id) if folder_id is not None else None
    crumbs = []
    if folder is not None:
        crumbs = [dict(r) for r in conn.execute(text(
            "WITH RECURSIVE up AS (SELECT id, name, parent_id, 0 AS depth FROM shared_folder WHERE id = :id"
            " UNION ALL SELECT p.id, p.name, p.parent_id, up.depth + 1 FROM shared_folder p"
            " JOIN up ON p.id = up.parent_id WHERE p.deleted_at IS NULL AND up.depth < 50)"
            " SELECT id, name FROM up ORDER BY depth DESC"), {"id": folder_id}).mappings()]
    where = "f.parent_id = :id" if folder_id is not None else "f.parent_id IS NULL"
    folders = [dict(r) for r in conn.execute(text(
        f"SELECT {_FOLDER_COLUMNS} FROM shared_folder f WHERE {where} AND f.deleted_at IS NULL"
        " ORDER BY f.name"), {"id": folder_id}).mappings()]
    where = "f.folder_id = :id" if folder_id is not None else "f.folder_id IS NULL"
    files = [dict(r) for r in conn.execute(text(
        f"SELECT {_FILE_COLUMNS} FROM shared_file f WHERE {where} AND f.deleted_at IS NULL"
        " ORDER BY f.uploaded_at DESC, f.id DESC LIMIT 2000"), {"id": folder_id}).mappings()]
    for f in files:
        f["url"] = f"/api/v1/files/{f['id']}"
    return {"folder": folder and {k: v for k, v in folder.items() if k != "district_code"},
            "path": crumbs, "folders": folders, "files": files}


def create_folder(conn: Connection, user: Any, name: str, *, parent_id: int | None = None,
                  share: Share = Share()) -> dict[str, Any]:
    _require(user, "file:upload", "您没有新建共享文件夹的权限 (file:upload required)")
    name = (name or "").strip()
    if not name or len(name) > 100 or any(c in name for c in "/\\") or not name.isprintable():
        raise FileInvalid("文件夹名称须为 1–100 个字符，且不含 / \\ 等符号 (invalid folder name)")
    parent = _folder(conn, parent_id) if parent_id is not None else None
    path, subtree, department = _share_target(conn, user, share, parent)
    try:
        with conn.begin_nested():
            folder_id = conn.execute(text(
                "INSERT INTO shared_folder (name, parent_id, share_subtree, department, created_by_name,"
                " org_path, district_code, created_by)"
                " SELECT :name, :parent, :subtree, :department, :who, CAST(:path AS ltree), t.district_code,"
                "        :uid"
                " FROM territory_unit t WHERE t.path = CAST(:path AS ltree) RETURNING id"),
                {"name": name, "parent": parent_id, "subtree": subtree, "department": department,
                 "who": user.name, "path": path, "uid": user.id}).scalar_one()
    except IntegrityError:
        raise FileConflict(f"此处已有名为“{name}”的文件夹 (a folder of that name exists)") from None
    return _folder(conn, folder_id)


def upload(conn: Connection, settings: Settings, user: Any, file_name: str, content_type: str | None,
           data: bytes, *, folder_id: int | None = None, share: Share = Share(),
           now: dt.datetime | None = None) -> dict[str, Any]:
    """Store one file and its metadata; 413 / 415 for the limits, 403 outside one's scope."""
    _require(user, "file:upload", "您没有上传共享文件的权限 (file:upload required)")
    name = file_store.clean_file_name(file_name)
    file_store.check_upload(settings, name, len(data))
    folder = _folder(conn, folder_id) if folder_id is not None else None
    path, subtree, department = _share_target(conn, user, share, folder)
    digest = file_store.save(settings, data)
    file_id = conn.execute(text(
        "INSERT INTO shared_file (file_name, uploader, uploaded_at, size, folder_id, content_type, sha256,"
        " uploader_id, share_subtree, department, org_path, district_code, created_by)"
        " SELECT :name, :who, :t, :size, :folder, :type, :sha, :uid, :subtree, :department,"
        "        CAST(:path AS ltree), t.district_code, :uid"
        " FROM territory_unit t WHERE t.path = CAST(:path AS ltree) RETURNING id"),
        {"name": name, "who": user.name, "t": now or dt.datetime.now(dt.UTC), "size": len(data),
         "folder": folder_id, "type": content_type or "application/octet-stream", "sha": digest,
         "uid": user.id, "subtree": subtree, "department": department, "path": path}).scalar_one()
    return get_file(conn, file_id)


def get_file(conn: Connection, file_id: int) -> dict[str, Any]:
    row = conn.execute(text(
        f"SELECT {_FILE_COLUMNS}, f.sha256 FROM shared_file f WHERE f.id = :id AND f.deleted_at IS NULL"),
        {"id": file_id}).mappings().first()
    if row is None:
        raise FileNotFound(f"文件 {file_id} 不存在或未共享给您 (file not found)")
    return {**dict(row), "url": f"/api/v1/files/{file_id}"}


def download(conn: Connection, settings: Settings, user: Any, file_id: int) -> tuple[dict[str, Any], bytes]:
    """The file's metadata and bytes; the download is written to the access log."""
    _require(user, "file:read", "您没有查看共享文件的权限 (file:read required)")
    found = get_file(conn, file_id)
    try:
        data = file_store.load(settings, found["sha256"])
    except FileNotFoundError:
        raise FileNotFound(f"文件“{found['file_name']}”的内容已丢失，请联系管理员 (content missing)") \
            from None
    audit.record(conn, "download_file", target_table="shared_file", target_id=file_id,
                 detail={"file_name": found["file_name"], "size": found["size"]})
    return found, data


def delete_file(conn: Connection, user: Any, file_id: int, *, reason: str | None = None) -> None:
    """Soft-delete a file (its uploader, or a ``file:manage`` holder whose territory it is in)."""
    found = get_file(conn, file_id)
    if found["uploader_id"] != user.id and not user.has("file:manage"):
        raise FileForbidden("只能删除自己上传的文件 (only the uploader or a manager may delete)")
    deleted = conn.execute(text(
        "UPDATE shared_file SET deleted_at = now(), deleted_by = :uid, updated_by = :uid, updated_at = now()"
        " WHERE id = :id AND deleted_at IS NULL"), {"id": file_id, "uid": user.id}).rowcount
    if not deleted:
        # Seen through a share from above, but not inside the deleter's own scope.
        raise FileForbidden("该文件不在您的辖区内，不能删除 (outside your scope)")
    audit.record(conn, "delete_file", target_table="shared_file", target_id=file_id, reason=reason,
                 detail={"file_name": found["file_name"], "size": found["size"]})


def delete_folder(conn: Connection, user: Any, folder_id: int, *, reason: str | None = None) -> None:
    """Soft-delete an empty folder (its creator, or a ``file:manage`` holder)."""
    folder = _folder(conn, folder_id)
    owner = conn.execute(text("SELECT created_by FROM shared_folder WHERE id = :id"),
                         {"id": folder_id}).scalar()
    if owner != user.id and not user.has("file:manage"):
        raise FileForbidden("只能删除自己建立的文件夹 (only the creator or a manager may delete)")
    busy = conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM shared_file WHERE folder_id = :id AND deleted_at IS NULL)"
        " OR EXISTS (SELECT 1 FROM shared_folder WHERE parent_id = :id AND deleted_at IS NULL)"),
        {"id": folder_id}).scalar()
    if busy:
        raise FileConflict(f"文件夹“{folder['name']}”不是空的，请先删除其中的文件 (folder not empty)")
    deleted = conn.execute(text(
        "UPDATE shared_folder SET deleted_at = now(), deleted_by = :uid, updated_by = :uid,"
        " updated_at = now()"
        " WHERE id = :id AND deleted_at IS NULL"), {"id": folder_id, "uid": user.id}).rowcount
    if not deleted:
        raise FileForbidden("该文件夹不在您的辖区内，不能删除 (outside your scope)")
    audit.record(conn, "delete_folder", target_table="shared_folder", target_id=folder_id, reason=reason,
                 detail={"name": folder["name"]})
