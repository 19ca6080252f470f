"""Hostile input to `isoadapt index`: each case is one line and exit 2, checked before the corpus is
encoded, and leaves the folders as they were."""

from __future__ import annotations

import pytest

from hostile import record_other_weights, refused, write

pytest.importorskip("lancedb")


def index_argv(run, table="documents", db_name="db", **flags):
    args = {"run_dir": run["run"], "data": run["data"]["test"], "db": run["t"] / db_name, "table": table}
    args |= {"cache_dir": run["cache"], **flags}
    return ["index", *[x for k, v in args.items() for x in (f"--{k}", v)]]


@pytest.mark.parametrize("table", ["dokumentë", "../x", "a/b", "", "two words"])
def test_table_names_lancedb_refuses_are_refused_first(run, capsys, table):
    refused(capsys, index_argv(run, table), f"--table {table!r}: use ASCII letters, digits, '-' and '_'", run["t"])


def test_a_users_folder_named_like_the_table_is_not_replaced(run, capsys):
    write(run["t"] / "db" / "documents.lance" / "notes.txt", "mine")
    refused(
        capsys,
        [*index_argv(run), "--overwrite"],
        f"--table documents in {run['t'] / 'db'}: exists and was not written by isoadapt as an index table; "
        "choose a new name",
        run["t"],
    )


def test_a_base_model_whose_weights_changed_is_refused(run, capsys):
    """The run was trained on other weights than the base model has now: its head does not fit."""
    refused(capsys, index_argv(run), record_other_weights(run["run"], "0" * 64), run["t"])
