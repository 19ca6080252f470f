"""Data loss: no command may delete, replace or write into what isoadapt did not create. Each case sets up
a user's folder with files of their own, runs the command as they might, and checks that the command
refuses with one line and that every one of their files is still there, unchanged. It is organised by threat
rather than by command (unlike the other test_hostile_<command>.py files) because the promise is one and the
same for every command that writes, and keeping its cases together shows each such command keeping it."""

from __future__ import annotations

from pathlib import Path

import pytest

from isoadapt.owned_folders import SOURCE

from conftest import tiny_dataset
from hostile import one_line, refused, train_argv, tree, write

NOT_OURS = "is not empty and was not made by isoadapt (no .isoadapt-owned.json); --overwrite replaces only isoadapt's own output"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user's world: a home folder holding a project with data and notes, the project as cwd."""
    user = tmp_path / "home"
    project = user / "project"
    data = tiny_dataset(project / "data")
    write(project / "notes.txt", "my notes")
    write(user / "thesis.tex", "\\documentclass{article}")
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.chdir(project)
    return {"root": tmp_path, "user": user, "project": project, "data": data}


@pytest.mark.parametrize(
    ("output_dir", "reason"),
    [
        (".", "is the current folder or one of its parents"),
        ("..", "is the current folder or one of its parents"),
        ("/", "is the current folder or one of its parents"),
        ("data/..", "is the current folder or one of its parents"),
        ("SOURCE", "holds isoadapt's source code"),
        ("SOURCE_PARENT", "holds isoadapt's source code"),
    ],
    ids=["cwd", "parent", "root", "cwd-by-another-name", "source", "source-parent"],
)
def test_train_overwrite_never_takes_a_protected_folder(home, capsys, output_dir, reason):
    target = {"SOURCE": str(SOURCE), "SOURCE_PARENT": str(SOURCE.parent)}.get(output_dir, output_dir)
    argv = train_argv(home["data"], target, home["root"] / "cache", overwrite=True)
    refused(
        capsys,
        argv,
        f"--output_dir {target}: {reason}; isoadapt writes only into a new folder of its own",
        home["root"],
    )


def test_train_overwrite_never_takes_the_home_folder(home, capsys, monkeypatch):
    elsewhere = home["root"] / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    argv = train_argv(home["data"], home["user"], home["root"] / "cache", overwrite=True)
    message = f"--output_dir {home['user']}: is the home folder or one of its parents; isoadapt writes only into a new folder of its own"
    refused(capsys, argv, message, home["root"])


def test_train_overwrite_refuses_a_users_folder(home, capsys):
    mine = home["project"] / "results"
    write(mine / "table.csv", "a,b\n")
    argv = train_argv(home["data"], mine, home["root"] / "cache", overwrite=True)
    refused(capsys, argv, f"--output_dir {mine}: {NOT_OURS}", home["root"])


def test_train_refuses_a_symlinked_output_folder(home, capsys):
    (home["project"] / "link").symlink_to(home["project"] / "data")
    argv = train_argv(home["data"], "link", home["root"] / "cache", overwrite=True)
    refused(capsys, argv, "--output_dir link: is a symbolic link; give the real folder", home["root"])


def test_train_refuses_a_users_folder_where_the_staging_would_go(home, capsys):
    write(home["project"] / ".run.partial" / "keep.txt", "mine")
    argv = train_argv(home["data"], "run", home["root"] / "cache")
    staging = Path("run").parent / ".run.partial"
    refused(
        capsys,
        argv,
        f"--output_dir run: {staging} exists and was not made by isoadapt; move it away first",
        home["root"],
    )


def test_overwrite_replaces_only_what_it_made(home, capsys, fake_model):
    cache = home["root"] / "cache"
    assert one_line.__name__  # the helper is used below through main
    from isoadapt.cli import main

    assert main([str(a) for a in train_argv(home["data"], "runs/a", cache)]) == 0
    assert main([str(a) for a in train_argv(home["data"], "runs/a", cache, overwrite=True, seed=1)]) == 0
    capsys.readouterr()
    assert (home["project"] / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in (home["project"] / "runs").iterdir()) == ["a"]


@pytest.fixture
def runs(home, monkeypatch):
    """Two finished runs under runs/, trained through the CLI on a 384-dim fake encoder recorded as MiniLM,
    so that export can load the real (small) model behind them."""
    import isoadapt.training.train_command
    from isoadapt.cli import main

    from conftest import FakeEncoder

    monkeypatch.setattr(isoadapt.training.train_command, "Encoder", lambda *a, **k: FakeEncoder(dim=384))
    for name in ("a", "b"):
        argv = train_argv(
            home["data"], f"runs/{name}", home["root"] / "cache", base_model="sentence-transformers/all-MiniLM-L6-v2"
        )
        assert main([str(a) for a in argv]) == 0
    return home


EXPORT_TARGETS = [
    ("runs", "--out runs: is, holds or lies inside the run being exported (runs/a); choose a folder outside it"),
    ("runs/a", "--out runs/a: is, holds or lies inside the run being exported (runs/a); choose a folder outside it"),
    (
        "runs/a/sub",
        "--out runs/a/sub: is, holds or lies inside the run being exported (runs/a); choose a folder outside it",
    ),
    ("runs/b", "--out runs/b: holds a run of isoadapt's, not an export; --overwrite replaces only an export"),
]


@pytest.mark.parametrize(
    ("out", "message"), EXPORT_TARGETS, ids=["runs-folder", "the-run-itself", "inside-the-run", "another-run"]
)
def test_export_never_replaces_a_run(runs, capsys, out, message):
    argv = ["export", "--run_dir", "runs/a", "--out", out, "--overwrite", "--cache_dir", runs["root"] / "cache"]
    refused(capsys, argv, message, runs["root"])


def test_export_onto_a_users_folder_is_refused(runs, capsys):
    argv = ["export", "--run_dir", "runs/a", "--out", "data", "--overwrite", "--cache_dir", runs["root"] / "cache"]
    refused(capsys, argv, f"--out data: {NOT_OURS}", runs["root"])


def test_evaluate_output_never_replaces_a_users_file(runs, capsys):
    argv = [
        "evaluate",
        "--run_dir",
        "runs/a",
        "--data",
        "data/dev.json",
        "--output",
        "notes.txt",
        "--cache_dir",
        runs["root"] / "cache",
    ]
    refused(
        capsys,
        argv,
        "--output notes.txt: exists and was not written by isoadapt as an evaluation; choose a new name",
        runs["root"],
    )


@pytest.mark.parametrize(
    "name",
    [".", "..", "", "../../x", "a/b", "/abs", "-rf", ".hidden"],
    ids=["dot", "dotdot", "empty", "escape", "nested", "absolute", "dash", "hidden"],
)
def test_beir_dataset_names_are_one_plain_folder(home, capsys, name):
    raw = write(home["root"] / "raw" / "corpus.jsonl", '{"_id": "d0", "text": "a"}\n').parent
    write(raw / "queries.jsonl", '{"_id": "q0", "text": "b"}\n')
    write(raw / "qrels" / "test.tsv", "q0\td0\t1\n")
    write(home["project"] / "processed" / "other" / "dev.json", "{}")
    argv = ["prepare", "beir", "--raw_dir", raw, f"--name={name}", "--out_root", "processed"]
    message = f"dataset name {name!r}: must be one folder name of letters, digits, '.', '_' or '-', starting with a letter or digit"
    refused(capsys, argv, message, home["root"])


def test_prepare_never_replaces_a_users_folder_of_the_same_name(home, capsys):
    write(home["project"] / "processed" / "stsb" / "mine.txt", "mine")
    argv = ["prepare", "stsb", "--raw_dir", home["root"] / "nowhere", "--out_root", "processed"]
    refused(capsys, argv, f"--out_root processed/stsb: {NOT_OURS}", home["root"])


def test_no_command_touched_anything_outside_the_project(runs, capsys):
    """After training and exporting twice, the user's files beside the project are as they were."""
    from isoadapt.cli import main

    before = tree(runs["user"], skip=("project",))
    assert (
        main(["export", "--run_dir", "runs/a", "--out", "exports/a", "--cache_dir", str(runs["root"] / "cache")]) == 0
    )
    assert (
        main(
            [
                "export",
                "--run_dir",
                "runs/a",
                "--out",
                "exports/a",
                "--overwrite",
                "--cache_dir",
                str(runs["root"] / "cache"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert tree(runs["user"], skip=("project",)) == before
    assert (runs["project"] / "notes.txt").read_text() == "my notes"


def test_an_empty_folder_made_for_the_output_is_used(home, capsys, fake_model):
    """A user who makes the output folder first (empty) gets the run there; a non-empty one is refused above."""
    from isoadapt.cli import main

    (home["project"] / "results").mkdir()
    assert main([str(a) for a in train_argv(home["data"], "results", home["root"] / "cache")]) == 0
    assert (home["project"] / "results" / "metrics.json").is_file()
