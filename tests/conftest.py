"""Shared fixtures: a real redis-server, a real Docker engine with the node image, our services as
real processes. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiodocker
import pytest
import redis

from msagent_srv.manager.runtime import DockerRuntime
from msagent_srv.manager.runtime.base import LABEL_NAMESPACE
from msagent_srv.node.image import build_from_host
from msagent_srv.store import Store
from msagent_srv.store.embedded import EmbeddedRedis

from .helpers import BuiltImage, ServiceProcess, free_port, manager_env
from .leftovers import RUN_ID, adopt_orphans, leftovers
from .upstreams import ScriptedUpstream

NODE_TEST_IMAGE = "msagent-srv-node:test"


def pytest_sessionstart(session: pytest.Session) -> None:
    adopt_orphans()  # whatever a test starts stays findable as ours, however it detaches


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run when a process, container or listening port of ours outlives it (then removes it)."""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    found = leftovers()
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "leftovers: the run left these behind (now removed)", red=True)
        for line in found.describe():
            reporter.write_line(line)
    found.remove()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """A clean database for each test."""
    url = redis_server.url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    store = Store.open(redis_url, port_range=(21000, 21999))
    yield store
    await store.close()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine must answer; without one the run fails (MSAGENT_TESTS_WITHOUT_DOCKER=1 skips)."""
    if asyncio.run(DockerRuntime.available()):
        return
    if os.environ.get("MSAGENT_TESTS_WITHOUT_DOCKER") == "1":
        pytest.skip("no Docker engine and MSAGENT_TESTS_WITHOUT_DOCKER=1")
    pytest.fail("no Docker engine answers: start dockerd (CI does) or set MSAGENT_TESTS_WITHOUT_DOCKER=1")


@pytest.fixture(scope="session")
def node_image(docker_engine: None) -> str:
    """The node image, built from this checkout with the registry-free path CI uses."""
    asyncio.run(build_from_host(NODE_TEST_IMAGE, progress=lambda _line: None))
    return NODE_TEST_IMAGE


@pytest.fixture(scope="session")
def services_image(docker_engine: None) -> BuiltImage:
    """The services image from the repo's Dockerfile (`msagent-srv build-image --base-image`), on a base
    with Python and pip made from this host, where a deployment would use python:3.11-slim."""
    base = "msagent-srv-base:test"
    asyncio.run(build_from_host(base, extra=["pip"], progress=lambda _line: None))
    tag = "msagent-srv:test"
    build = subprocess.run(
        [sys.executable, "-m", "msagent_srv.cli", "build-image", "--base-image", base, "--tag", tag],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return BuiltImage(tag, build.stdout)


async def _remove_namespace(namespace: str) -> None:
    async with aiodocker.Docker() as docker:
        for container in await docker.containers.list(
            all=True, filters={"label": [f"{LABEL_NAMESPACE}={namespace}"]}
        ):
            await container.delete(force=True)


def stop_process_nodes(namespace: str) -> None:
    """Kill the process-runtime nodes of `namespace` (their command line names it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"msagent_srv.node" in words and namespace.encode() in words:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(entry.name), signal.SIGKILL)  # a node leads its own process group


@pytest.fixture
def namespace() -> Iterator[str]:
    """A label unique to the test, and the removal of every container left under it."""
    name = f"t{RUN_ID}{uuid.uuid4().hex[:8]}"
    yield name
    stop_process_nodes(name)  # process nodes outlive their manager by design (it adopts them on restart)
    if asyncio.run(DockerRuntime.available()):
        asyncio.run(_remove_namespace(name))


def service_factory(command: str, defaults: dict[str, str], logs: Path) -> Iterator[callable]:
    """Yields `start(**env)`, which runs `msagent-srv <command>` on a free port; stops them all after."""
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        port = free_port()
        log = logs / f"{command}-{len(started)}.log"
        own = {"MSAGENT_DATA_DIR": str(logs / f"{command}-{len(started)}-data")}  # every service its own
        service = ServiceProcess([command, "--port", str(port)], {**defaults, **own, **env}, port, log)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def manager_factory(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[callable]:
    defaults = manager_env(redis_url, namespace, MSAGENT_NODE_IMAGE=NODE_TEST_IMAGE)
    yield from service_factory("manager", defaults, tmp_path)


@pytest.fixture
def manager(manager_factory, node_image: str) -> ServiceProcess:
    return manager_factory(MSAGENT_RUNTIME="docker")


@pytest.fixture(scope="session")
def seed_client() -> str:
    """The interpreter of the environment holding the original servers' client, modelscope-agent 0.7.2
    (.ci/run builds it from tests/requirements-seed-client.txt; MSAGENT_TESTS_WITHOUT_SEED_CLIENT=1 skips)."""
    python = os.environ.get("MSAGENT_SEED_CLIENT_PYTHON") or str(
        Path(__file__).resolve().parent.parent / ".venv-seed-client" / "bin" / "python"
    )
    if os.access(python, os.X_OK):
        return python
    if os.environ.get("MSAGENT_TESTS_WITHOUT_SEED_CLIENT") == "1":
        pytest.skip("no modelscope-agent environment and MSAGENT_TESTS_WITHOUT_SEED_CLIENT=1")
    pytest.fail(
        f"no modelscope-agent environment at {python}: run .ci/run, or set MSAGENT_SEED_CLIENT_PYTHON"
    )


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: ScriptedUpstream) -> ScriptedUpstream:
    upstream_server.reset()
    return upstream_server


def assistant_defaults(redis_url: str, upstream: ScriptedUpstream) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "MODEL_SERVER": "openai",
        "OPENAI_BASE_URL": upstream.openai_url,
        "DASHSCOPE_HTTP_BASE_URL": upstream.dashscope_url,
        "MSAGENT_DEFAULT_MODEL": "scripted-model",
    }


@pytest.fixture
def assistant_factory(
    redis_url: str, upstream_server: ScriptedUpstream, tmp_path: Path
) -> Iterator[callable]:
    yield from service_factory("assistant", assistant_defaults(redis_url, upstream_server), tmp_path)


@pytest.fixture
def assistant(assistant_factory) -> ServiceProcess:
    return assistant_factory()


@pytest.fixture(scope="module")
def module_assistant(
    redis_server: EmbeddedRedis, upstream_server: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One assistant for a whole module, for tests that change nothing of its own state but what they
    name themselves (each test still gets a fresh `upstream` script)."""
    logs = tmp_path_factory.mktemp("assistant")
    for start in service_factory("assistant", assistant_defaults(redis_server.url, upstream_server), logs):
        yield start()
