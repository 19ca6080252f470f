"""The house's layout, checked: the package's imports form no loop, between modules or between rooms
(function-local imports included: a local import hides a loop, it does not remove it), and never run back
up the flow (shared/STYLE.md, "A lower floor never imports a higher one"); the package root stays small.
The checkers are tested on synthetic graphs too, so that a check that could never fail would show."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import isoadapt

PACKAGE = Path(isoadapt.__file__).parent
# The flow, lowest floor first: a module may import its own room and the rooms on floors below, never one
# above. Rooms on one floor do not depend on each other (test_no_import_loop checks rooms too).
LAYERS = (
    {"errors", "progress"},
    {"fileio"},
    {"owned_folders"},
    {"data", "losses", "metrics", "head_options"},
    {"head"},
    {"encoding", "posthoc"},
    {"evaluation"},
    {"training"},
    {"experiment", "store"},  # plans; export, apply, LanceDB (the `isoadapt` embedding function included)
    {"integrations"},  # thin adapters over the store: LangChain, LlamaIndex, LanceDB's registry
    {"api"},
    {"__init__"},  # the public names, imported from api on first use
    {"cli"},
)
SUBPACKAGES = {"api", "encoding", "training", "experiment", "store", "integrations", "data", "losses", "metrics"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every isoadapt module this source imports, at the top, inside a function or under TYPE_CHECKING:
    `import isoadapt.x`, `from isoadapt.x import y` (the module isoadapt.x.y when there is one, else
    isoadapt.x), and relative imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {name for name in found if name in known and name != module}


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    known = set(paths)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in paths.items()
    }


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if room(module) in layer)


def room_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Room -> the other rooms its modules import: two rooms importing each other are a loop, even when no
    module-level cycle exists (store.a -> integrations.b -> store.c)."""
    rooms: dict[str, set[str]] = {room(m): set() for m in edges}
    for module, targets in edges.items():
        rooms[room(module)] |= {room(t) for t in targets if room(t) != room(module)}
    return rooms


def find_loop(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (loop := visit(nxt, [*path, nxt])):
                return loop
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (loop := visit(start, [start])):
            return loop
    return None


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in edges.items()
        for target in targets
        if rank(target) > rank(module)
    )


def test_every_module_has_a_room():
    for module in graph():
        assert any(room(module) in layer for layer in LAYERS), f"{module} is in no layer of the flow"


def test_no_import_loop():
    edges = graph()
    assert find_loop(edges) is None
    assert find_loop(room_graph(edges)) is None


def test_no_import_runs_back_up_the_flow():
    assert upward_imports(graph()) == []


def test_the_loop_finder_finds_a_loop():
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_a_loop_between_rooms_is_found_when_no_module_loop_exists():
    """The loop this tree once had: store's index imported integrations' LanceDB function, which imported
    store's run space; no module imported itself back, so only the rooms show it."""
    edges = {
        "isoadapt.store.lancedb_index": {"isoadapt.integrations.lancedb"},
        "isoadapt.integrations.lancedb": {"isoadapt.store.run_space"},
        "isoadapt.store.run_space": set(),
    }
    assert find_loop(edges) is None
    assert find_loop(room_graph(edges)) == ["integrations", "store", "integrations"]
    assert upward_imports(edges) == ["isoadapt.store.lancedb_index imports isoadapt.integrations.lancedb"]


def test_an_upward_import_inside_a_function_is_counted(tmp_path):
    """A synthetic package whose data module imports training inside a function (and store imports
    integrations relatively, under TYPE_CHECKING): both are found and reported as running up."""
    files = {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/formats.py": "def load():\n    from isoadapt.training import loop\n    return loop\n",
        "training/__init__.py": "",
        "training/loop.py": "import isoadapt.data.formats\n",
        "store/__init__.py": "",
        "store/index.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..integrations import lancedb\n",
        "integrations/__init__.py": "",
        "integrations/lancedb.py": "from isoadapt.store import index\n",
    }
    root = tmp_path / "isoadapt"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    edges = graph(root)
    assert edges["isoadapt.data.formats"] == {"isoadapt.training.loop"}
    assert edges["isoadapt.store.index"] == {"isoadapt.integrations.lancedb"}
    assert upward_imports(edges) == [
        "isoadapt.data.formats imports isoadapt.training.loop",
        "isoadapt.store.index imports isoadapt.integrations.lancedb",
    ]
    assert find_loop(edges) == ["isoadapt.data.formats", "isoadapt.training.loop", "isoadapt.data.formats"]


def test_the_package_root_stays_small():
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__" and p.name not in SUBPACKAGES]
    assert len(entries) <= 10, sorted(entries)
    assert SUBPACKAGES <= {p.name for p in PACKAGE.iterdir() if p.is_dir()}


def test_importing_the_package_leaves_the_environment_alone():
    """Offline mode is the command line's choice, not an import side effect on the user's process."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = "import os, isoadapt, isoadapt.cli; print(os.environ.get('HF_HUB_OFFLINE'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"
    code = "import os, isoadapt.cli as c; c.main(['--version']); print(os.environ.get('HF_HUB_OFFLINE'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "1"


def test_the_command_line_starts_without_torch():
    """`isoadapt --help` and `isoadapt <command> --help` build the whole parser (train's flags come from
    TrainConfig) without importing torch, which takes seconds; `import isoadapt` alone loads none either."""
    import subprocess
    import sys

    heavy = ("torch", "sentence_transformers", "transformers")
    code = (
        "import sys, isoadapt\n"
        f"assert not [m for m in {heavy!r} if m in sys.modules], 'import isoadapt'\n"
        "import isoadapt.cli as c\n"
        "for argv in ([], *([name] for name in c.COMMANDS), ['prepare', 'semanlink'], ['prepare', 'vectors']):\n"
        "    assert c.main([*argv, '--help']) == 0, argv\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_generated_paths_stay_out_of_git_even_as_links(tmp_path):
    """A worktree that links data/processed (or .venv, runs, the cache) to a shared copy must not commit the
    link: a merge that checks one out deletes the ignored folder it replaces. `git add -A` in a repository
    with our .gitignore stages neither the folders nor links of the same names."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / ".gitignore", tmp_path / ".gitignore")
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    for name in ("data/processed", "data/raw", ".venv", ".cache", "runs"):
        (tmp_path / name).symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "kept.txt").write_text("x")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    staged = subprocess.run([*git, "diff", "--cached", "--name-only"], check=True, capture_output=True, text=True)
    assert sorted(staged.stdout.split()) == [".gitignore", "elsewhere/kept.txt"]
