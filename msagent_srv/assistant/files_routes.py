"""/v1/files: upload (multipart), list, delete. Indexing runs in the background."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiofiles.os
from aiohttp import web
from pydantic import ValidationError

from ..store import FileRecord, NotFound
from ..web.auth import space_of
from ..web.bodies import validation_error
from ..web.envelopes import envelope
from ..web.errors import ApiError
from .keys import KNOWLEDGE, SETTINGS, STORE, TASKS
from .protocol import FileRef
from .uploads import receive, remove_tree


def uploads_dir(request: web.Request) -> Path:
    return request.app[SETTINGS].data_dir / "uploads"


def _public(record: FileRecord) -> dict[str, object]:
    return record.model_dump(mode="json", exclude={"path"})


async def upload(request: web.Request) -> web.Response:
    settings, store = request.app[SETTINGS], request.app[STORE]
    knowledge = request.app[KNOWLEDGE].required()  # before a byte is read: nothing to index it with
    root = uploads_dir(request)
    uuid_str, staged, staging = await receive(
        request, root / ".staging", settings.upload_max_mb * 1024 * 1024, settings.upload_max_files
    )
    space = space_of(request, uuid_str)
    replies: list[dict[str, object]] = []
    try:
        existing = {r.name: r for r in await store.files.list(space)}
        target = root / space.digest
        await aiofiles.os.makedirs(target, exist_ok=True)
        for item in staged:
            same = existing.get(item.name)
            twin = next((r for r in existing.values() if r.sha256 == item.sha256), None)
            if twin is not None and (same is None or same.sha256 == item.sha256):
                # identical content is kept once
                replies.append({**_public(twin), "duplicate": True})
                continue
            path = target / item.name
            await aiofiles.os.replace(item.path, path)  # a same-name upload replaces the old version
            record = FileRecord(
                name=item.name,
                path=str(path),
                size=item.size,
                sha256=item.sha256,
                content_type=item.content_type,
            )
            await store.files.put(space, record)
            existing[item.name] = record
            request.app[TASKS].spawn(knowledge.index_file(space, item.name, path))
            replies.append({**_public(record), "replaced": same is not None})
    finally:
        await remove_tree(staging)
    return envelope(request, {"status": "ok", "uuid_str": uuid_str, "files": replies})


def _ref(request: web.Request) -> FileRef:
    try:
        return FileRef.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None


async def list_files(request: web.Request) -> web.Response:
    ref = _ref(request)
    records = await request.app[STORE].files.list(space_of(request, ref.uuid_str))
    return envelope(request, {"uuid_str": ref.uuid_str, "files": [_public(r) for r in records]})


async def delete_file(request: web.Request) -> web.Response:
    ref = _ref(request)
    if not ref.name:
        raise ApiError(400, "name the file to delete", param="name", code="missing_name")
    store, space = request.app[STORE], space_of(request, ref.uuid_str)
    try:
        record = await store.files.get(space, ref.name)
    except NotFound:
        raise ApiError(404, f"file {ref.name!r} not found", param="name", code="file_not_found") from None
    await store.files.delete(space, ref.name)
    await request.app[KNOWLEDGE].required().forget_file(space, ref.name)
    await asyncio.to_thread(Path(record.path).unlink, missing_ok=True)
    return envelope(request, {"deleted": ref.name})
