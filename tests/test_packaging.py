"""What `pip install .` installs: every module of the source tree (an editable install hides a missing one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module(tmp_path: Path) -> None:
    # a copy of the sources, so no earlier build/ directory can lend the wheel what the tree lacks
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "msagent_srv", source / "msagent_srv", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("msagent_srv-*.whl"))
    packaged = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    modules = {
        path.relative_to(source).as_posix()
        for path in (source / "msagent_srv").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - packaged == set()
