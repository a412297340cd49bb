"""Multipart uploads, streamed to disk: names and types checked before a byte is written, the size
limit enforced while streaming, and nothing kept from a request that is refused."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import aiofiles
import aiofiles.os
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..ids import random_hex
from ..web.errors import ApiError

UUID_STR_MAX = 256  # characters: any text names a space (Space encodes it), as the original servers took
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CHUNK = 64 * 1024


@dataclass
class StagedFile:
    name: str
    path: Path
    size: int
    sha256: str
    content_type: str


def check_session(value: str | None) -> str:
    if not value or len(value) > UUID_STR_MAX:
        raise ApiError(
            400, f"uuid_str must be 1-{UUID_STR_MAX} characters", param="uuid_str", code="invalid_uuid_str"
        )
    return value


def check_file_name(raw: str | None) -> str:
    """The name as given, refused if it has a directory part, `..`, an absolute path or control characters."""
    if not raw:
        raise ApiError(400, "every file part needs a filename", param="files", code="invalid_file_name")
    if (
        _CONTROL.search(raw)
        or raw in (".", "..")
        or ".." in PurePosixPath(raw).parts
        or len(PurePosixPath(raw).parts) != 1
        or len(PureWindowsPath(raw).parts) != 1
        or PurePosixPath(raw).is_absolute()
        or PureWindowsPath(raw).is_absolute()
        or raw.startswith(".")
        or len(raw.encode()) > 200
    ):
        raise ApiError(
            400,
            f"file name {raw!r} is not allowed: no directories, '..', absolute paths or hidden files",
            param="files",
            code="invalid_file_name",
        )
    return raw  # every type is kept; what cannot be read as text is listed as not indexed, with why


async def _stage(part: BodyPartReader, name: str, directory: Path, limit: int) -> StagedFile:
    path = directory / random_hex(8)
    digest, size = hashlib.sha256(), 0
    async with aiofiles.open(path, "wb") as out:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413,
                    f"file {name!r} is larger than the {limit // (1024 * 1024)} MB limit",
                    param="files",
                    code="file_too_large",
                )
            digest.update(chunk)
            await out.write(chunk)
    return StagedFile(name, path, size, digest.hexdigest(), part.headers.get("Content-Type", ""))


async def receive(
    request: web.Request, staging_root: Path, limit: int, max_files: int
) -> tuple[str, list[StagedFile], Path]:
    """The session id and the files of a multipart upload, staged under `staging_root`. On any error the
    staging directory is removed before the error propagates."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "send the files as multipart/form-data", code="invalid_content_type")
    most = max_files * limit + (1 << 20)  # every file at the limit, plus room for the form's framing
    if request.content_length is not None and request.content_length > most:
        raise ApiError(  # before a byte is read
            413,
            f"upload of {request.content_length} bytes is over the {most}-byte limit",
            code="body_too_large",
        )
    directory = staging_root / random_hex(12)
    await aiofiles.os.makedirs(directory, exist_ok=True)
    try:
        try:
            session, staged = await _read_parts(request, directory, limit, max_files)
        except (HttpProcessingError, ValueError, UnicodeDecodeError) as exc:
            # a body that is not well-formed multipart (bad boundary, headers or encoding)
            raise ApiError(
                400, f"malformed multipart body: {exc.__class__.__name__}", code="invalid_multipart"
            ) from None
        session = check_session(session)
        if not staged:
            raise ApiError(
                400, "no files: send one or more parts named 'files'", param="files", code="no_files"
            )
    except BaseException:
        await remove_tree(directory)
        raise
    return session, staged, directory


async def _short_field(part: BodyPartReader, most: int = 4 * UUID_STR_MAX) -> str:
    """A small text field, read without ever holding more than `most` bytes of it."""
    value = bytearray()
    while chunk := await part.read_chunk(most):
        value += chunk
        if len(value) > most:
            raise ApiError(
                400, f"form field {part.name!r} is too long", param=part.name, code="invalid_value"
            )
    return value.decode("utf-8").strip()


async def _read_parts(
    request: web.Request, directory: Path, limit: int, max_files: int
) -> tuple[str | None, list[StagedFile]]:
    reader = await request.multipart()
    session: str | None = None
    staged: list[StagedFile] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            # A multipart inside a part: skipping it would read it recursively (2,000 levels deep
            # overflowed the stack). No client nests parts in an upload.
            raise ApiError(
                400, "nested multipart parts are not accepted", param="files", code="invalid_multipart"
            )
        if part.name == "uuid_str":
            session = await _short_field(part)
        elif part.name in ("files", "file"):
            name = check_file_name(part.filename)
            if len(staged) == max_files:
                raise ApiError(
                    400, f"at most {max_files} files per upload", param="files", code="too_many_files"
                )
            if any(s.name == name for s in staged):
                raise ApiError(
                    400, f"file {name!r} appears twice in one upload", param="files", code="duplicate_name"
                )
            staged.append(await _stage(part, name, directory, limit))
        else:
            await part.release()
    return session, staged


async def remove_tree(directory: Path) -> None:
    """Remove a staging directory off the event loop (in place if the task is being cancelled)."""
    try:
        await asyncio.to_thread(shutil.rmtree, directory, True)
    except asyncio.CancelledError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
