"""Hostile plans and flags for `isoadapt experiment`: the whole plan is checked before any training, so a
wrong type in its last entry fails in a second, not after hours; every case is one line, exit 2, and
leaves no report or run behind."""

from __future__ import annotations

import sys

import pytest

from isoadapt.training.config import MAX_SEED

from conftest import tiny_dataset
from hostile import refused, write

GOOD = """
name = "mini"
[defaults]
epochs = 1
batch_size = 8
[[configs]]
name = "baseline"
kind = "baseline"
[[configs]]
name = "trained"
"""


@pytest.fixture
def world(tmp_path, fake_model):
    tiny_dataset(tmp_path / "processed" / "tiny")
    return tmp_path


def experiment_argv(t, plan, *extra):
    return [
        "experiment",
        "--plan",
        plan,
        "--data",
        "tiny",
        "--data_root",
        t / "processed",
        "--runs_root",
        t / "runs",
        "--cache_dir",
        t / "cache",
        *extra,
    ]


PLANS = [
    ("configs not tables", 'name = "x"\nconfigs = [1, 2]\n', "{p}: configs[0]: expected a [[configs]] table, got int"),
    (
        "defaults not a table",
        'name = "x"\ndefaults = 5\n[[configs]]\nname = "baseline"\nkind = "baseline"\n',
        "{p}: 'defaults' must be a [defaults] table, got int",
    ),
    (
        "keep a fraction",
        GOOD + '[[configs]]\nname = "w"\nkind = "posthoc"\ntransform = "whitening"\nkeep = 1.5\n',
        "{p}: config 'w': 'keep' must be an integer >= 1, got 1.5",
    ),
    (
        "keep zero",
        GOOD + '[[configs]]\nname = "w"\nkind = "posthoc"\ntransform = "whitening"\nkeep = 0\n',
        "{p}: config 'w': 'keep' must be an integer >= 1, got 0",
    ),
    (
        "remove negative",
        GOOD + '[[configs]]\nname = "a"\nkind = "posthoc"\ntransform = "abtt"\nremove = -1\n',
        "{p}: config 'a': 'remove' must be an integer >= 0, got -1",
    ),
    (
        "epochs a fraction",
        GOOD + '[[configs]]\nname = "e"\nepochs = 1.5\n',
        "{p}: config 'e': epochs = 1.5: expected int, got float",
    ),
    (
        "freeze_base a string",
        GOOD + '[[configs]]\nname = "f"\nfreeze_base = "no"\n',
        "{p}: config 'f': freeze_base = 'no': expected bool, got str",
    ),
    (
        "lambda a string",
        GOOD + '[[configs]]\nname = "l"\nlambda_isotropy = "high"\n',
        "{p}: config 'l': lambda_isotropy = 'high': expected float, got str",
    ),
    (
        "lambda a bool",
        GOOD + '[[configs]]\nname = "l"\nlambda_isotropy = true\n',
        "{p}: config 'l': lambda_isotropy = True: expected float, got bool",
    ),
    (
        "seeds negative",
        GOOD + '[[configs]]\nname = "s"\nseeds = [-1]\n',
        "{p}: config 's': seed -1 must be an integer between 0 and " + str(MAX_SEED) + " (NumPy's seed range)",
    ),
    (
        "plan seeds not a list",
        'name = "x"\nseeds = 3\n' + GOOD.split("\n", 2)[2],
        "{p}: plan: 'seeds' must be a non-empty list of integers",
    ),
    (
        "no baseline entry",
        'name = "x"\n[[configs]]\nname = "t"\n',
        "{p}: no entry of kind 'baseline': the report compares every row with the base model",
    ),
    (
        "label a number",
        GOOD + '[[configs]]\nname = "n"\nlabel = 5\n',
        "{p}: config 'n': 'label' must be a string, got 5",
    ),
    (
        "unknown setting",
        GOOD + '[[configs]]\nname = "u"\nlearning_rate = 0.1\n',
        "{p}: config 'u': unknown settings ['learning_rate']",
    ),
    (
        "unknown transform",
        GOOD + '[[configs]]\nname = "p"\nkind = "posthoc"\ntransform = "pca"\n',
        "{p}: config 'p': transform 'pca' must be one of ['abtt', 'centering', 'whitening']",
    ),
    (
        "epochs absurd",
        GOOD + '[[configs]]\nname = "e"\nepochs = 1000000000000\n',
        "{p}: config 'e': --epochs 1000000000000: must be between 1 and 10000",
    ),
    (
        "name with a slash",
        GOOD + '[[configs]]\nname = "../x"\n',
        "{p}: configs[2]: 'name' must be lowercase letters, digits, '.', '_' or '-', got '../x'",
    ),
    (
        "malformed TOML",
        'name = "x"\n[[configs]\n',
        "{p}: malformed TOML: Expected ']]' at the end of an array declaration (at line 2, column 10)",
    ),
    (
        "keep beyond the encoder width",
        GOOD + '[[configs]]\nname = "w"\nkind = "posthoc"\ntransform = "whitening"\nkeep = 100\n',
        "{p}: config 'w': keep = 100 exceeds the encoder's 16 dimensions",
    ),
    (
        "seed for seeds",
        "seed = [0, 1, 2]\n" + GOOD,
        "{p}: unknown top-level key 'seed'; did you mean 'seeds'? a plan holds name, seeds, query_model, defaults, configs "
        "(training settings go in [defaults] or a [[configs]] entry)",
    ),
    (
        "a setting outside [defaults]",
        "epochs = 3\n" + GOOD,
        "{p}: top-level key 'epochs' is a training setting; put it under [defaults]",
    ),
    (
        "config for configs",
        GOOD.replace("[[configs]]", "[[config]]"),
        "{p}: unknown top-level key 'config'; did you mean 'configs'? a plan holds name, seeds, query_model, defaults, configs "
        "(training settings go in [defaults] or a [[configs]] entry)",
    ),
    (
        "nothing close",
        "zzz = 1\n" + GOOD,
        "{p}: unknown top-level key 'zzz'; a plan holds name, seeds, query_model, defaults, configs "
        "(training settings go in [defaults] or a [[configs]] entry)",
    ),
]


@pytest.mark.parametrize(("name", "body", "message"), PLANS, ids=[c[0] for c in PLANS])
def test_plans(world, capsys, name, body, message):
    plan = write(world / "plan.toml", body)
    refused(capsys, experiment_argv(world, plan), message.format(p=plan), world, skip=("cache", "plan.toml"))


FLAGS = [
    (
        "runs_root a file",
        lambda t: ["--runs_root", write(t / "f.txt", "x")],
        "--runs_root {t}/f.txt: is a file, not a folder",
    ),
    (
        "runs_root under a file",
        lambda t: ["--runs_root", write(t / "f.txt", "x") / "r"],
        "--runs_root {t}/f.txt/r: {t}/f.txt is a file, not a folder",
    ),
    (
        "device cuda",
        lambda t: ["--device", "cuda"],
        "--device cuda: CUDA is not available on this machine; use --device cpu",
    ),
    ("seeds not numbers", lambda t: ["--seeds", "a,b"], "--seeds a,b: expected comma-separated integers, e.g. 0,1,2"),
    (
        "seeds negative",
        lambda t: ["--seeds", "0,-1"],
        f"--seeds 0,-1: seed -1 must be an integer between 0 and {MAX_SEED} (NumPy's seed range)",
    ),
    ("seeds empty", lambda t: ["--seeds", ","], "--seeds ,: no seed given"),
    (
        "seeds repeated",
        lambda t: ["--seeds", "0,1,0"],
        "--seeds 0,1,0: a seed is listed twice in [0, 1, 0] (each seed is one run folder)",
    ),
    ("plan a folder", lambda t: ["--plan", t / "processed"], "{t}/processed: is a folder, expected a TOML plan file"),
    (
        "missing dataset",
        lambda t: ["--data", "nope"],
        "{t}/processed/nope/train.json: file not found (run `isoadapt prepare nope` first)",
    ),
    ("plan missing", lambda t: ["--plan", t / "nope.toml"], "{t}/nope.toml: file not found"),
    (
        "ray address not one",
        lambda t: ["--engine", "ray", "--ray_address", "not an address"],
        "--ray_address 'not an address': expected HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:PORT or auto",
    ),
]


@pytest.mark.parametrize(("name", "extra", "message"), FLAGS, ids=[c[0] for c in FLAGS])
def test_flags(world, capsys, name, extra, message):
    plan = write(world / "plan.toml", GOOD)
    refused(
        capsys, experiment_argv(world, plan, *extra(world)), message.format(t=world), world, skip=("cache", "plan.toml")
    )


def test_a_nudge_row_without_the_nudge_extra(world, capsys, monkeypatch):
    """nudge-ft is an extra (isoadapt[nudge]): a plan with a NUDGE row stops while it is checked, in one line."""
    monkeypatch.setitem(sys.modules, "nudge", None)  # what Python does for a package that is not installed
    plan = write(world / "plan.toml", GOOD + '[[configs]]\nname = "n"\nkind = "nudge"\ntransform = "nudge-m"\n')
    message = (
        f"{plan}: config 'n': kind 'nudge' runs the authors' package nudge-ft, which is not installed; "
        "pip install 'isoadapt[nudge]'"
    )
    refused(capsys, experiment_argv(world, plan), message, world, skip=("cache", "plan.toml"))


@pytest.mark.parametrize("sizes", ["[16, 1000]", "[100, 1000]"])
def test_a_train_size_above_the_training_file_is_refused(world, capsys, sizes):
    """tiny's smoke split holds 48 pairs: two sizes above it must never give one result under two labels."""
    plan = write(world / "plan.toml", GOOD + f"train_sizes = {sizes}\n")
    big = [int(s) for s in sizes.strip("[]").split(",") if int(s) > 48][0]
    message = (
        f"{plan}: config 'trained': train size {big} is more than the 48 training pairs in "
        f"{world / 'processed' / 'tiny' / 'train.json'}; list sizes up to 48"
    )
    refused(capsys, experiment_argv(world, plan), message, world, skip=("cache", "plan.toml"))
