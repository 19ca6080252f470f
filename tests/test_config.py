"""TrainConfig is the one source: the train command's flags, the resume view, the reuse view and the
plan's settable keys all come from its fields' metadata, so a field added in one place reaches them all."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

import pytest

from isoadapt.cli import add_setting, build_parser
from isoadapt.training.config import (
    INPUT,
    OPERATION,
    RESULT,
    TrainConfig,
    plan_settable,
    resume_view,
    reuse_view,
    setting,
)


@dataclass
class WithNewKnob(TrainConfig):
    new_knob: float = setting(0.5, "a knob added in one place")
    new_progress: bool = setting(False, "how the run reports progress", OPERATION, flag=True)
    new_input: str | None = setting(None, "another input file", INPUT)


def cfg(cls=TrainConfig, **values):
    return cls(train_data="", val_data="", output_dir="", **values)


def test_a_new_field_reaches_every_view(tmp_path):
    extra = tmp_path / "extra.json"
    extra.write_text("{}")
    config = cfg(WithNewKnob, new_input=str(extra))
    assert resume_view(config)["new_knob"] == 0.5 and reuse_view(config)["new_knob"] == 0.5
    assert "new_knob" in plan_settable(WithNewKnob) and "new_progress" in plan_settable(WithNewKnob)
    assert "new_progress" not in resume_view(config) and "new_progress" not in reuse_view(config)
    assert "new_input sha256" in resume_view(config) and "new_input" in reuse_view(config)["inputs"]
    assert "new_input" not in reuse_view(config)  # reuse keys an input by its content, not its path


def test_a_result_setting_changes_both_keys_and_an_operation_setting_neither():
    base = cfg()
    for changed in (cfg(epochs=3), cfg(device="meta"), cfg(temperature=0.1), cfg(seed=1)):
        assert resume_view(changed) != resume_view(base) and reuse_view(changed) != reuse_view(base)
    for same in (cfg(tracker="none"), cfg(encode_batch_size=8), cfg(save_steps=5), cfg(cache_dir="x")):
        assert resume_view(same) == resume_view(base) and reuse_view(same) == reuse_view(base)


def test_the_plan_cannot_set_per_run_names_places_or_inputs():
    settable = plan_settable(TrainConfig)
    assert not {"train_data", "val_data", "test_data", "sts_data", "output_dir", "cache_dir", "seed"} & settable
    assert not {"device", "encode_backend", "base_model"} & settable  # the experiment command sets them per run
    assert {"epochs", "contrastive_loss", "tracker"} <= settable


def test_every_field_has_a_role_and_help():
    for f in fields(TrainConfig):
        assert f.metadata.get("role") and f.metadata.get("help"), f.name


def test_train_flags_are_generated_from_the_fields():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {a.dest for a in train._actions} - {"help"}
    assert flags == {f.name for f in fields(TrainConfig)}
    for f in fields(TrainConfig):
        if f.default is not MISSING:
            assert train.get_default(f.name) == f.default, f.name


def test_a_field_becomes_a_flag_with_its_help_and_choices():
    import argparse

    parser = argparse.ArgumentParser()
    add_setting(parser, "contrastive_loss")
    action = next(a for a in parser._actions if a.dest == "contrastive_loss")
    assert (
        action.choices == ["margin", "infonce", "cosine"] and "InfoNCE" not in action.help and "infonce" in action.help
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--contrastive_loss", "hinge"])


def test_result_is_the_default_role():
    assert fields(WithNewKnob)[-3].metadata["role"] == RESULT


def test_workers_default_differs_by_what_a_worker_is():
    """encode's workers hold a model copy each (default 1); experiment's are trials (default: one per CPU)."""
    parser = build_parser()
    encode = parser.parse_args(["encode", "--data", "d"])
    experiment = parser.parse_args(["experiment", "--plan", "p", "--data", "d"])
    assert encode.workers == 1 and experiment.workers is None
