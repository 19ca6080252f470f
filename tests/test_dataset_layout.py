"""The processed dataset's layout (data/layout.py): the files it names are the documented ones, what the
writers write is what the readers find, and no other module spells a file name of the layout."""

from __future__ import annotations

import ast
from pathlib import Path

import isoadapt
from isoadapt.data import layout
from isoadapt.data.formats import EvalSet, TrainExample, write_dataset
from isoadapt.experiment.plan_data import ExperimentData

PACKAGE = Path(isoadapt.__file__).parent
# The layout's own words, as the docs (and users' scripts) spell them: the independent reference.
LAYOUT_WORDS = {
    "train.json",
    "dev.json",
    "test.json",
    "sts_dev.json",
    "sts_test.json",
    "placeholder_texts.json",
    "probe_",
    "sts_",
    "_smoke",
}
FILES = ("train.json", "dev.json", "test.json")


def test_the_layout_names_the_documented_files(tmp_path):
    folder = layout.dataset("semanlink", tmp_path)
    assert folder.path == tmp_path / "semanlink"
    assert (folder.train, folder.dev, folder.test) == tuple(tmp_path / "semanlink" / n for n in FILES)
    assert folder.inputs() == {
        "train": tmp_path / "semanlink/train.json",
        "val": tmp_path / "semanlink/dev.json",
        "test": tmp_path / "semanlink/test.json",
    }
    assert layout.smoke("semanlink", tmp_path).train == tmp_path / "semanlink_smoke/train.json"
    assert layout.stsb(tmp_path).sts("test") == tmp_path / "stsb/sts_test.json"
    assert layout.is_sts_file(Path("x/sts_dev.json")) and not layout.is_sts_file(Path("x/dev.json"))
    assert layout.DATA_ROOT == Path("data/processed")


def split(query: str) -> EvalSet:
    return EvalSet({"q": query}, {"d": "a document"}, {"q": {"d": 1}})


def test_what_the_writer_writes_the_readers_find(tmp_path):
    """write_dataset's files (pairs, splits, probes) and a smoke folder, then the plan's and fit's readers."""
    root = tmp_path / "processed"
    probes = {layout.PROBE_PREFIX + "titles": split("a title"), layout.PROBE_PREFIX + "arxiv": split("an abstract")}
    pairs = [TrainExample("a query", "a document", None)]
    write_dataset(root / "tiny", pairs, {"dev": split("dev"), "test": split("test"), **probes})
    assert sorted(p.name for p in (root / "tiny").iterdir() if not p.name.startswith(".")) == [
        "dev.json",
        "probe_arxiv.json",
        "probe_titles.json",
        "test.json",
        "train.json",
    ]
    folder = layout.dataset("tiny", root)
    assert folder.holds_training() and folder.probes() == {
        "arxiv": root / "tiny/probe_arxiv.json",
        "titles": root / "tiny/probe_titles.json",
    }
    assert folder.text_files() == [root / "tiny/train.json", root / "tiny/dev.json", root / "tiny/test.json"]
    data = ExperimentData.locate(root, "tiny", None)
    assert (data.train_smoke, data.train_full, data.dev, data.test) == (
        root / "tiny/train.json",
        root / "tiny/train.json",
        root / "tiny/dev.json",
        root / "tiny/test.json",
    )
    write_dataset(root / "tiny_smoke", pairs, {"dev": split("dev"), "test": split("test")})
    assert ExperimentData.locate(root, "tiny", None).train_smoke == root / "tiny_smoke/train.json"


def test_a_folder_without_dev_is_not_a_training_dataset(tmp_path):
    write_dataset(tmp_path / "only_train", [TrainExample("q", "p", None)], {})
    assert not layout.dataset("only_train", tmp_path).holds_training()


def layout_words_in(source: str, name: str) -> list[str]:
    """String pieces in code (docstrings aside; help text never equals a bare file name) that are a file
    name or a file-name piece of the layout."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and id(node) not in docstrings and node.value in LAYOUT_WORDS
    ]


def test_no_module_but_the_layout_spells_its_file_names():
    found = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "data" / "layout.py"
        for hit in layout_words_in(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def test_the_spelling_check_finds_a_spelled_file_name():
    """The check above can fail: a module that builds `folder / "dev.json"` or f"{name}_smoke" is caught,
    its docstring is not."""
    source = '"""Reads dev.json."""\n\n\ndef f(folder, name):\n    return folder / "dev.json", f"{name}_smoke"\n'
    assert layout_words_in(source, "sample.py") == ["sample.py:5: 'dev.json'", "sample.py:5: '_smoke'"]
