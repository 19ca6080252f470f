"""Plans (experiment/plan.py) validate, the research plan holds every row the issue names, and a whole plan
runs on the fake encoder."""

import json
from pathlib import Path

import pytest

from isoadapt.errors import InputError
from isoadapt.experiment.plan import load_plan
from isoadapt.experiment.plan_data import ExperimentData
from isoadapt.experiment.runner import parse_seeds, run_experiment


def write_plan(tmp_path, body: str):
    path = tmp_path / "plan.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'name = "x"\n[[configs]]\nname = "a"\nlambda_isotropy = -1\n',
            "config 'a': --lambda_isotropy -1: must be a finite number >= 0",
        ),
        ('name = "x"\n[[configs]]\nname = "a"\nimport = "os.system"\n', "config 'a': unknown settings ['import']"),
        ('name = "x"\n[[configs]]\nname = "a"\n[[configs]]\nname = "a"\n', "config 'a': duplicate name"),
        (
            'name = "x"\n[[configs]]\nname = "w"\nkind = "posthoc"\ntransform = "pca"\n',
            "config 'w': transform 'pca' must be one of ['abtt', 'centering', 'whitening']",
        ),
        ('name = "x"\nseeds = []\n[[configs]]\nname = "a"\n', "plan: 'seeds' must be a non-empty list of integers"),
        ('name = "x"\n[defaults]\nlr = 1\n[[configs]]\nname = "a"\n', "[defaults]: unknown settings ['lr']"),
        ("name = \n", "malformed TOML"),
    ],
)
def test_plan_validation(tmp_path, body, message):
    with pytest.raises(InputError, match=None) as err:
        load_plan(write_plan(tmp_path, body))
    assert message in str(err.value)


def test_research_plan_has_every_row_the_issue_names():
    plan = load_plan("plans/research.toml")
    names = {e.name for e in plan.entries}
    assert names >= {
        "baseline",
        "pure-isotropy",
        "exp1",
        "exp2",
        "exp3",
        "scale-up",
        "istar",
        "avoid-full-finetune",
        "avoid-lr-1e-3",
        "avoid-margin-1",
        "avoid-reg-0.1",
        "avoid-contrastive-only",
        "whitening",
        "abtt",
        "centering",
    }
    settings = {e.name: e.settings for e in plan.entries}
    # The research note's Experiment 1, by hand: what [defaults] gives every trained row.
    note = {
        "lambda_contrastive": 0.1,
        "lambda_isotropy": 1.0,
        "lambda_reg": 0.0,
        "margin": 0.1,
        "projection_learning_rate": 5e-4,
        "epochs": 2,
        "batch_size": 16,
    }
    assert settings["exp1"] == note
    assert settings["exp2"] == {**note, "lambda_contrastive": 0.5}  # an override changes only what it names
    assert settings["exp3"] == {**note, "lambda_isotropy": 2.0}
    assert settings["pure-isotropy"] == {**note, "lambda_contrastive": 0.0}
    assert settings["scale-up"]["epochs"] == 3 and next(e for e in plan.entries if e.name == "scale-up").train == "full"
    assert settings["avoid-full-finetune"]["freeze_base"] is False
    assert settings["istar"]["isotropy_loss"] == "istar"


def test_plan_runs_end_to_end_on_the_fake_encoder(tmp_path, fake_encoder):
    from conftest import tiny_dataset

    root = tmp_path / "processed"
    tiny_dataset(root / "tiny")
    plan = write_plan(
        tmp_path,
        """
name = "mini"
seeds = [0, 1]
[defaults]
epochs = 2
batch_size = 8
lambda_contrastive = 1.0
projection_learning_rate = 0.01
[[configs]]
name = "baseline"
kind = "baseline"
[[configs]]
name = "trained"
[[configs]]
name = "istar"
isotropy_loss = "istar"
[[configs]]
name = "whitening"
kind = "posthoc"
transform = "whitening"
""",
    )
    folder = run_experiment(
        plan,
        "tiny",
        None,
        fake_encoder.name,
        tmp_path / "cache",
        data_root=root,
        runs_root=tmp_path / "runs",
        encoder=fake_encoder,
    )
    calls_after_first = fake_encoder.calls
    report = json.loads((folder / "report.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert set(rows) == {"baseline", "trained", "istar", "whitening"}
    assert rows["trained"]["seeds"] == [0, 1] and "ndcg@10_std" in rows["trained"]
    assert rows["baseline"]["p_value"] is None and rows["trained"]["p_value"] is not None
    for name in ("ndcg_vs_isoscore.png", "spectrum.png", "losses.png", "report.md"):
        assert (folder / name).stat().st_size > 1000
    assert (folder / "runs" / "trained" / "seed1" / "metrics.json").is_file()
    assert "| configuration |" in (folder / "report.md").read_text()

    def trained_per_seed(seeds: str, runs: str) -> dict:
        """Rerun with --seeds: the trained row's test NDCG@10 by seed."""
        again = run_experiment(
            plan,
            "tiny",
            parse_seeds(seeds),
            fake_encoder.name,
            tmp_path / "cache",
            data_root=root,
            runs_root=tmp_path / runs,
            encoder=fake_encoder,
        )
        return {
            r["seed"]: r["test"]["ndcg@10"]
            for r in json.loads((again / "report.json").read_text())["results"]["trained"]
        }

    first = {r["seed"]: r["test"]["ndcg@10"] for r in report["results"]["trained"]}
    assert trained_per_seed("0,1", "runs2") == first  # the same seeds: the same numbers, seed by seed
    assert fake_encoder.calls == calls_after_first  # the reruns encoded nothing: every text was cached
    other = trained_per_seed("2", "runs3")
    assert list(other) == [2] and other[2] not in first.values()  # another seed: another head


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[configs]]\nname = "b"\nkind = "baseline"\ntrain_sizes = [10]\n', "train_sizes is for rows that learn"),
        ('[[configs]]\nname = "a"\ntrain_sizes = []\n', "'train_sizes' must be a non-empty list of integers >= 2"),
        ('[[configs]]\nname = "a"\ntrain_sizes = [10, 1]\n', "train size 1 must be an integer >= 2"),
        ('[[configs]]\nname = "a"\ntrain_sizes = [10, 10]\n', "a train size is listed twice in [10, 10]"),
        ('[[configs]]\nname = "a"\ntrain_sizes = [10]\ntrain_pairs = 5\n', "give train_sizes or train_pairs"),
    ],
)
def test_train_sizes_are_checked_on_load(tmp_path, body, message):
    with pytest.raises(InputError) as err:
        load_plan(write_plan(tmp_path, 'name = "x"\n[[configs]]\nname = "base"\nkind = "baseline"\n' + body))
    assert message in str(err.value)


CURVE_PLAN = """
name = "curve"
seeds = [0, 1]
[defaults]
epochs = 2
batch_size = 4
lambda_contrastive = 1.0
projection_learning_rate = 0.01
[[configs]]
name = "baseline"
kind = "baseline"
[[configs]]
name = "trained"
train_sizes = [8, 48]
[[configs]]
name = "nudge-m"
kind = "nudge"
transform = "nudge-m"
train_sizes = [8, 48]
[[configs]]
name = "whitening"
kind = "posthoc"
transform = "whitening"
"""


def test_a_learning_curve_plan_expands_sizes_draws_pairs_per_seed_and_plots_the_curve(tmp_path, fake_encoder):
    """train_sizes = [8, 48]: one row per size, 8 pairs drawn per seed (48 is the whole file), NUDGE
    learning from the same pairs; the report has the curve table, learning_curve.png and the probes."""
    import shutil

    from conftest import tiny_dataset

    root = tmp_path / "processed"
    tiny_dataset(root / "tiny")
    shutil.copy(root / "tiny" / "dev.json", root / "tiny" / "probe_rewritten.json")
    plan = load_plan(write_plan(tmp_path, CURVE_PLAN))
    assert [e.name for e in plan.entries] == [
        "baseline",
        "trained.n8",
        "trained.n48",
        "nudge-m.n8",
        "nudge-m.n48",
        "whitening",
    ]
    assert plan.entries[1].settings["train_pairs"] == 8 and plan.entries[1].family == "trained"
    folder = run_experiment(
        plan.path,
        "tiny",
        None,
        fake_encoder.name,
        tmp_path / "cache",
        data_root=root,
        runs_root=tmp_path / "runs",
        encoder=fake_encoder,
    )
    report = json.loads((folder / "report.json").read_text())
    results = report["results"]
    assert [r["pairs"] for r in results["trained.n8"]] == [8, 8]
    assert [r["pairs"] for r in results["trained.n48"]] == [48, 48]
    assert [r["seed"] for r in results["nudge-m.n8"]] == [0, 1]
    from isoadapt.data.formats import load_train
    from isoadapt.training.train_inputs import load_inputs

    from conftest import train_config

    every_pair = load_train(root / "tiny" / "train.json")
    for seed in (0, 1):  # NUDGE's sample is the one training drew for the same seed
        cfg = train_config(
            {
                "train": root / "tiny" / "train.json",
                "dev": root / "tiny" / "dev.json",
                "test": root / "tiny" / "test.json",
            },
            tmp_path,
            train_pairs=8,
            seed=seed,
            batch_size=4,
        )
        trained_on = load_inputs(cfg, ("val",)).examples
        from isoadapt.data.sampling import sample_pairs

        assert sample_pairs(every_pair, 8, seed) == trained_on
    assert all(set(r["probes"]) == {"rewritten"} for rows in results.values() for r in rows)
    curve = report["meta"]["learning_curve"]
    assert [c["family"] for c in curve["curves"]] == ["trained", "nudge-m"]
    assert curve["curves"][0]["pairs"] == [8, 48] and curve["reference"] == "whitening"
    assert (folder / "learning_curve.png").stat().st_size > 1000
    text = (folder / "report.md").read_text()
    assert "## Learning curve" in text and "| row | 8 pairs | 48 pairs |" in text and "probe rewritten" in text
    assert (
        f"Reproduce: `isoadapt experiment --plan {plan.path} --data tiny --base_model {fake_encoder.name} --seeds 0,1`"
        in text
    )


def test_the_demos_plan_loads_with_its_nudge_rows():
    """make demo runs plans/adapters.toml; its NUDGE rows need the nudge extra, which make demo installs."""
    plan = load_plan("plans/adapters.toml")
    assert {e.transform for e in plan.entries if e.kind == "nudge"} == {"nudge-m", "nudge-n"}


def test_experiment_data_files_lists_every_file_a_plan_reads_probes_included(tmp_path):
    for name in ("tiny/train.json", "tiny/dev.json", "tiny/test.json", "tiny/probe_titles.json", "stsb/dev.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    data = ExperimentData.locate(tmp_path, "tiny", None)
    files = data.files()
    assert tmp_path / "tiny" / "probe_titles.json" in files and tmp_path / "stsb" / "dev.json" in files
    assert {tmp_path / "tiny" / f"{split}.json" for split in ("train", "dev", "test")} <= set(files)
    assert all(isinstance(path, Path) for path in files)
