"""The house's layout, checked: the package's imports form no loop (function-local imports included: a
local import hides a loop, it does not remove it) and never run back up the flow (README "Layout", after shared/STYLE.md), and the
package root stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import isoadapt

PACKAGE = Path(isoadapt.__file__).parent
# The flow, lowest first: a module may import its own room and the rooms below it, never one above.
LAYERS = (
    {"errors", "fileio", "owned_folders", "progress"},
    {"data", "losses", "metrics", "head", "head_options", "posthoc"},
    {"encoding"},
    {"evaluation"},
    {"training"},
    {"experiment", "store", "integrations"},  # integrations: the store's heads inside LangChain, LlamaIndex, LanceDB
    {"cli", "__init__", "api"},
)
SUBPACKAGES = {"api", "encoding", "training", "experiment", "store", "integrations", "data", "losses", "metrics"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every isoadapt module this file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("isoadapt"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("isoadapt")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in imports_of(path) if i in modules and i != name} for name, path in modules.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if room(module) in layer)


def find_loop(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges[node]):
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


def test_every_module_has_a_room():
    for module in graph():
        assert any(room(module) in layer for layer in LAYERS), f"{module} is in no layer of the flow"


def test_no_import_loop():
    assert find_loop(graph()) is None


def test_the_loop_finder_finds_a_loop():
    assert find_loop({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_runs_back_up_the_flow():
    upward = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if rank(target) > rank(module)
    ]
    assert upward == []


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
