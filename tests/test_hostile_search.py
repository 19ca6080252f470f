"""Hostile input to `isoadapt search`: each case is one line and exit 2, and nothing is written."""

from __future__ import annotations

import shutil

import pytest

from isoadapt.cli import main

from hostile import record_other_weights, refused

pytest.importorskip("lancedb")


@pytest.fixture
def indexed(run, capsys):
    db = run["t"] / "db"
    argv = ["index", "--run_dir", run["run"], "--data", run["data"]["test"], "--db", db, "--cache_dir", run["cache"]]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    return {**run, "db": db}


def search_argv(w, table="documents", query="topic3 what is topic3"):
    return ["search", query, "--db", w["db"], "--table", table, "--run_dir", w["run"], "--cache_dir", w["cache"]]


def test_a_table_name_that_is_a_path_is_refused(indexed, capsys):
    refused(
        capsys, search_argv(indexed, "../x"), "--table '../x': use ASCII letters, digits, '-' and '_'", indexed["t"]
    )


def test_a_table_whose_data_files_are_gone(indexed, capsys):
    shutil.rmtree(indexed["db"] / "documents.lance" / "data")
    line = f"--table documents in {indexed['db']}: LanceDB cannot read it ("
    from hostile import ERROR, one_line

    got = one_line(capsys, search_argv(indexed))
    assert got.startswith(ERROR + line) and got.endswith("); write it again with `isoadapt index --overwrite`"), got


def test_a_base_model_whose_weights_changed_is_refused(indexed, capsys):
    refused(capsys, search_argv(indexed), record_other_weights(indexed["run"], "f" * 64), indexed["t"])
