"""``/api/v1/files``: 内部硬盘共享 -- folders and files shared with a territory unit and/or a department.

- ``GET /files?folder_id=`` a folder's sub-folders and files (the top level without ``folder_id``);
- ``POST /files/folders`` create a folder (JSON: name, parent_id, unit_id, subtree, department) → 201;
- ``POST /files`` upload (multipart: files, folder_id, unit_id, subtree, department) → 201;
- ``GET /files/{id}`` download, ``Content-Disposition`` carrying the Chinese name (RFC 5987);
- ``DELETE /files/{id}`` and ``DELETE /files/folders/{id}`` soft-delete (logged) → 204.

Without ``unit_id`` a file is shared like its folder, at the top level with the uploader's own unit and
its subtree. Refusals: 403 no permission or outside one's scope, 404 not found or not shared with you
(the same answer, so nobody learns what exists elsewhere), 409 a folder of that name / not empty,
413 too large, 415 a type outside the allow-list, 422 bad input -- each with a Chinese message.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from gis.api.deps import run_scoped
from gis.api.auth import AUTH_RESPONSES, Problem, require_user
from gis.api.notices import NO_STORE, content_disposition
from gis.errors import ServiceError
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import file_store, shared_files

_MAX_ID = 2**63 - 1


class Folder(BaseModel):
    id: int
    name: str
    parent_id: int | None = None
    shared_path: str = Field(description="共享给的区划路径")
    subtree: bool = Field(description="是否含下级区划")
    department: str | None = None
    created_by: str | None = None
    created_at: dt.datetime


class SharedFile(BaseModel):
    id: int
    file_name: str
    folder_id: int | None = None
    size: int
    content_type: str | None = None
    uploader: str | None = None
    uploaded_at: dt.datetime | None = None
    shared_path: str
    subtree: bool
    department: str | None = None
    url: str


class Crumb(BaseModel):
    id: int
    name: str


class Listing(BaseModel):
    folder: Folder | None = None
    path: list[Crumb]
    folders: list[Folder]
    files: list[SharedFile]


class FolderIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="文件夹名称")
    parent_id: int | None = Field(None, ge=1, le=_MAX_ID)
    unit_id: int | None = Field(None, ge=1, le=_MAX_ID,
                                description="共享给的区划（缺省：同上级文件夹或本人单位）")
    subtree: bool | None = Field(None, description="是否含下级区划")
    department: str | None = Field(None, max_length=40, description="共享给的部门（代码表 department）")


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/files", tags=["files"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    Id = Annotated[int, Path(ge=1, le=_MAX_ID)]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无权限或不在辖区内"},
                 404: {"model": Problem, "description": "不存在或未共享给您"},
                 409: {"model": Problem, "description": "同名文件夹已存在或文件夹非空"},
                 413: {"model": Problem, "description": "文件过大"},
                 415: {"model": Problem, "description": "文件类型不允许"},
                 422: {"model": Problem, "description": "请求有误"}}

    def run(user: CurrentUser, request: Request, work):
        return run_scoped(settings, user, request, work, refused="无权操作该文件")

    @routes.get("", response_model=Listing, responses=responses)
    def list_folder(user: User, request: Request, response: Response,
                    folder_id: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="文件夹")] = None,
                    ) -> Listing:
        """文件夹内容：子文件夹与文件（仅共享给您的）(a folder's contents you may see)."""
        listing = run(user, request, lambda conn: shared_files.list_folder(conn, user, folder_id))
        response.headers.update(NO_STORE)
        return Listing(**listing)

    @routes.post("/folders", status_code=201, response_model=Folder, responses=responses)
    def create_folder(body: FolderIn, user: User, request: Request) -> Folder:
        """新建文件夹 (create a folder)."""
        share = shared_files.Share(body.unit_id, body.subtree, body.department)
        return Folder(**run(user, request, lambda conn: shared_files.create_folder(
            conn, user, body.name, parent_id=body.parent_id, share=share)))

    @routes.post("", status_code=201, response_model=list[SharedFile], responses=responses)
    def upload(
        user: User,
        request: Request,
        files: Annotated[list[UploadFile], File(description="文件（可多个）")],
        folder_id: Annotated[int | None, Form(ge=1, le=_MAX_ID, description="放入的文件夹")] = None,
        unit_id: Annotated[int | None, Form(ge=1, le=_MAX_ID, description="共享给的区划")] = None,
        subtree: Annotated[bool | None, Form(description="是否含下级区划")] = None,
        department: Annotated[str | None, Form(max_length=40, description="共享给的部门")] = None,
    ) -> list[SharedFile]:
        """上传文件（大小与类型受限）(upload files; size and type limits apply)."""
        if not user.has("file:upload"):
            raise HTTPException(403, "您没有上传共享文件的权限 (file:upload required)")
        share = shared_files.Share(unit_id, subtree, department or None)
        # Check each file's limits as it is read: a refused file costs no more than the limit in memory.
        uploads = []
        for f in files:
            try:
                name = file_store.clean_file_name(f.filename)
                data = file_store.read_limited(f.file, settings)
                file_store.check_upload(settings, name, len(data))
            except ServiceError as error:
                raise HTTPException(error.status, str(error)) from None
            uploads.append((name, f.content_type, data))
        stored = run(user, request, lambda conn: [
            shared_files.upload(conn, settings, user, name, content_type, data, folder_id=folder_id,
                                share=share) for name, content_type, data in uploads])
        return [SharedFile(**f) for f in stored]

    @routes.get("/{file_id}", responses=responses)
    def download(file_id: Id, user: User, request: Request) -> Response:
        """下载文件 (download a file)."""
        found, data = run(user, request, lambda conn: shared_files.download(conn, settings, user, file_id))
        return Response(data, media_type=found["content_type"] or "application/octet-stream", headers={
            **NO_STORE, "Content-Disposition": content_disposition(found["file_name"])})

    @routes.delete("/{file_id}", status_code=204, responses=responses)
    def delete_file(file_id: Id, user: User, request: Request,
                    reason: Annotated[str | None, Query(max_length=200, description="删除原因")] = None,
                    ) -> Response:
        """删除文件（软删除，记入日志）(soft-delete a file; logged)."""
        run(user, request, lambda conn: shared_files.delete_file(conn, user, file_id, reason=reason))
        return Response(status_code=204)

    @routes.delete("/folders/{folder_id}", status_code=204, responses=responses)
    def delete_folder(folder_id: Id, user: User, request: Request,
                      reason: Annotated[str | None, Query(max_length=200, description="删除原因")] = None,
                      ) -> Response:
        """删除空文件夹（软删除，记入日志）(soft-delete an empty folder; logged)."""
        run(user, request, lambda conn: shared_files.delete_folder(conn, user, folder_id, reason=reason))
        return Response(status_code=204)

    return routes
