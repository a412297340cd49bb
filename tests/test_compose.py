"""compose.yaml is valid for a compose tool (Debian's docker-compose, installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compose(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (.ci/run installs it)")
    return subprocess.run(
        [tool, "-f", "compose.yaml", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_compose_file_is_valid_with_its_services() -> None:
    checked = compose("config", "-q")
    assert checked.returncode == 0, checked.stderr
    assert set(compose("config", "--services").stdout.split()) == {"redis", "manager", "assistant", "qdrant"}
    rendered = compose("config").stdout
    qdrant = rendered.split("  qdrant:", 1)[1]
    assert "profiles:\n    - qdrant" in qdrant  # the Qdrant server starts only with --profile qdrant
    assert "/var/run/docker.sock:/var/run/docker.sock" in rendered and "--appendonly" in rendered


def test_the_validation_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = (ROOT / "compose.yaml").read_text().replace("depends_on:", "depends_onn:", 1)
    (tmp_path / "compose.yaml").write_text(broken)
    result = compose("config", "-q", cwd=tmp_path)
    assert result.returncode != 0 and "depends_onn" in result.stderr
