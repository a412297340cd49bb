"""Build the tool-node image.

Two ways:
- `from_dockerfile`: `docker build` of the project's Dockerfile on a configurable base image (needs the
  base image locally or a registry, and PyPI for `pip install`).
- `from_host`: for hosts with no registry access. A root filesystem is assembled from this machine's own
  Python: the interpreter, the standard library, the distributions the node needs (and any extra ones
  named), msagent_srv itself and every shared library they link against; then built `FROM scratch`.
"""

from __future__ import annotations

import compileall
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

DEFAULT_TAG = "msagent-srv-node:latest"
NODE_DISTRIBUTIONS = ("aiohttp", "pydantic", "prometheus-client")
IMAGE_PREFIX = "/opt/python"
_STDLIB_SKIP = {"site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}

HOST_DOCKERFILE = f"""FROM scratch
COPY rootfs/ /
ENV PATH={IMAGE_PREFIX}/bin:/usr/bin:/bin PYTHONHOME={IMAGE_PREFIX} LD_LIBRARY_PATH={IMAGE_PREFIX}/lib \\
    PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["python3", "-m", "msagent_srv.node"]
"""

Progress = Callable[[str], None]


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    """Names of what `dist` requires on this interpreter (extras left out)."""
    names = []
    for requirement in dist.requires or []:
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        if marker.strip():
            try:
                from packaging.markers import Marker

                if not Marker(marker.strip()).evaluate():
                    continue
            except ImportError:
                pass
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
        if match:
            names.append(match.group(1))
    return names


def distribution_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        pending.extend(_requirement_names(dist))
    return list(seen.values())


def shared_libraries(files: Iterable[Path]) -> set[Path]:
    """Every library the ELF files among `files` load, as resolved by ldd."""
    libraries: set[Path] = set()
    for path in files:
        if path.suffix != ".so" and ".so." not in path.name and os.access(path, os.X_OK) is False:
            continue
        try:
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            match = re.search(r"(/\S+)\s+\(0x", line)
            if match:
                libraries.add(Path(match.group(1)))
    return libraries


class RootfsBuilder:
    """Writes the node's root filesystem into a directory."""

    def __init__(self, root: Path, extra_distributions: Iterable[str] = ()) -> None:
        self.root = root
        self.extra = list(extra_distributions)
        self.prefix = Path(sys.base_prefix)
        self.version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.copied: list[Path] = []

    def _copy(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink() and not source.resolve().is_relative_to(source.parent):
            source = source.resolve()
        shutil.copy2(source, target, follow_symlinks=True)
        self.copied.append(source)

    def _image_path(self, host_path: Path) -> Path:
        """Where a host file of the Python installation lands in the image."""
        return self.root / IMAGE_PREFIX.lstrip("/") / host_path.relative_to(self.prefix)

    def build(self) -> Path:
        image_prefix = self.root / IMAGE_PREFIX.lstrip("/")
        # interpreter
        executable = Path(os.path.realpath(sys.executable))
        self._copy(executable, image_prefix / "bin" / executable.name)
        for alias in ("python3", "python"):
            link = image_prefix / "bin" / alias
            if not link.exists():
                link.symlink_to(executable.name)
        libdir = Path(sysconfig.get_config_var("LIBDIR") or self.prefix / "lib")
        for lib in libdir.glob("libpython*.so*"):
            self._copy(lib, image_prefix / "lib" / lib.name)
        # standard library
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for directory, subdirectories, files in os.walk(stdlib):
            if Path(directory) == stdlib:  # never descend into site-packages, tests, tkinter...
                subdirectories[:] = [
                    d for d in subdirectories if d not in _STDLIB_SKIP and not d.startswith("config-")
                ]
            for name in files:
                path = Path(directory) / name
                self._copy(path, image_prefix / "lib" / self.version / path.relative_to(stdlib))
        # distributions
        site = image_prefix / "lib" / self.version / "site-packages"
        for dist in distribution_closure([*NODE_DISTRIBUTIONS, *self.extra]):
            base = Path(str(dist.locate_file("")))
            for file in dist.files or []:
                source = Path(str(dist.locate_file(file)))
                if source.is_file() and source.is_relative_to(base) and ".." not in file.parts:
                    self._copy(source, site / file)
        self._add_project(site)
        compileall.compile_dir(site / "msagent_srv", quiet=1, workers=1)
        # shared libraries, at the paths the loader expects
        for library in shared_libraries(self.copied):
            self._copy(library, self.root / str(library).lstrip("/"))
            real = library.resolve()
            if real != library:
                self._copy(real, self.root / str(real).lstrip("/"))
        self._add_system_files()
        return self.root

    def _add_project(self, site: Path) -> None:
        package = Path(__file__).resolve().parent.parent
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                self._copy(path, site / "msagent_srv" / path.relative_to(package))
        dist = metadata.distribution("msagent-srv")
        info = site / f"msagent_srv-{dist.version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: msagent-srv\nVersion: {dist.version}\n")
        entry_points = dist.read_text("entry_points.txt") or ""
        (info / "entry_points.txt").write_text(entry_points)
        (info / "INSTALLER").write_text("msagent-srv build-image\n")
        # a RECORD lets pip upgrade or uninstall this copy later (as the Dockerfile build on top does)
        files = [
            p.relative_to(site).as_posix()
            for p in sorted(site.joinpath("msagent_srv").rglob("*"))
            if p.is_file()
        ]
        files += [f"{info.name}/{name}" for name in ("METADATA", "entry_points.txt", "INSTALLER", "RECORD")]
        (info / "RECORD").write_text("".join(f"{name},,\n" for name in files))

    def _add_system_files(self) -> None:
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "passwd").write_text(
            "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/sbin/nologin\n"
        )
        (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        certificates = Path("/etc/ssl/certs/ca-certificates.crt")
        if certificates.exists():
            self._copy(certificates, etc / "ssl" / "certs" / "ca-certificates.crt")
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o1777)


def context_tar(directory: Path, dockerfile: str | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if dockerfile is not None:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for entry in sorted(directory.iterdir()):
            if entry.name in {
                ".git",
                ".venv",
                "__pycache__",
                ".pytest_cache",
                ".ruff_cache",
                "bench-results",
            }:
                continue
            tar.add(entry, arcname=entry.name, filter=_world_readable)
    buffer.seek(0)
    return buffer


def _world_readable(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    # Compiled bytecode stays in the node rootfs: its root is read-only, so a node could never cache it
    # and would compile every module at each start. Elsewhere (a source checkout) it is noise.
    if "__pycache__" in info.name and not info.name.startswith("rootfs/"):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if not info.issym():
        info.mode |= 0o555 if (info.isdir() or info.mode & 0o111) else 0o444
    return info


async def docker_build(
    context: io.BytesIO, tag: str, progress: Progress, buildargs: dict[str, str] | None = None
) -> str:
    async with aiodocker.Docker() as docker:
        stream = docker.images.build(
            fileobj=context,
            encoding="identity",
            tag=tag,
            stream=True,
            rm=True,
            forcerm=True,
            buildargs=buildargs,
        )
        try:
            async for event in stream:
                _report(event, progress)
        except DockerError as exc:  # a failed step arrives as a stream error
            raise ImageBuildError(str(exc.message if hasattr(exc, "message") else exc)) from None
        info = await docker.images.inspect(tag)
    return str(info["Id"])


def _report(event: dict[str, Any], progress: Progress) -> None:
    if "error" in event:
        raise ImageBuildError(event["error"].strip())
    text = (event.get("stream") or event.get("status") or "").strip()
    if text:
        progress(text)


class ImageBuildError(Exception):
    pass


async def build_from_host(
    tag: str = DEFAULT_TAG, extra: Iterable[str] = (), progress: Progress = print
) -> str:
    """Build the node image from this host's Python; returns the image id."""
    import asyncio

    with tempfile.TemporaryDirectory(prefix="msagent-rootfs-") as workdir:
        progress(f"assembling root filesystem from {sys.base_prefix}")
        rootfs = Path(workdir) / "context" / "rootfs"
        builder = RootfsBuilder(rootfs, extra)
        await asyncio.to_thread(builder.build)
        progress(f"copied {len(builder.copied)} files; building {tag}")
        context = await asyncio.to_thread(context_tar, rootfs.parent, HOST_DOCKERFILE)
        progress(f"build context {context.getbuffer().nbytes / 1e6:.1f} MB")
        return await docker_build(context, tag, progress)


def project_root() -> Path:
    """The source checkout this package runs from (where the Dockerfile is)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "Dockerfile").exists() or not (root / "setup.cfg").exists():
        raise ImageBuildError(f"no Dockerfile next to the package ({root}); run from a source checkout")
    return root


async def build_from_dockerfile(
    tag: str = DEFAULT_TAG, base_image: str = "python:3.11-slim", progress: Progress = print
) -> str:
    import asyncio

    context = await asyncio.to_thread(context_tar, project_root())
    return await docker_build(context, tag, progress, {"BASE_IMAGE": base_image})
