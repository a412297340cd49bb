"""Images the compose test needs, made from this host's files: CI reaches no image registry."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from msagent_srv.node.image import context_tar, docker_build, shared_libraries

REDIS_DOCKERFILE = """FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin
WORKDIR /data
"""


async def build_redis_image(tag: str) -> str:
    """redis-server and redis-cli with the libraries they load, `FROM scratch`."""
    with tempfile.TemporaryDirectory(prefix="msagent-redis-") as workdir:
        await asyncio.to_thread(_redis_rootfs, Path(workdir) / "rootfs")
        context = await asyncio.to_thread(context_tar, Path(workdir), REDIS_DOCKERFILE)
        return await docker_build(context, tag, lambda _line: None)


def _redis_rootfs(rootfs: Path) -> None:
    # the system's binaries (Debian's redis-server package, which .ci/run installs), not wrapper scripts
    binaries = {name: Path(f"/usr/bin/{name}").resolve() for name in ("redis-server", "redis-cli")}
    files = {rootfs / "usr" / "bin" / name: source for name, source in binaries.items()}
    for library in shared_libraries(binaries.values()):
        files[rootfs / str(library).lstrip("/")] = library
        files[rootfs / str(library.resolve()).lstrip("/")] = library.resolve()
    for target, source in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=True)
    (rootfs / "data").mkdir()
    (rootfs / "tmp").mkdir()
