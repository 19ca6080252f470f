"""`isoadapt evaluate` (training/evaluate_command.py) on a finished run: undefined STS numbers are written as
null, and a new evaluation replaces an earlier one in the same file."""

from __future__ import annotations

import json

from isoadapt.cli import main

from hostile import evaluate_argv, write


def test_constant_sts_scores_give_null_not_nan(run, capsys, caplog):
    """Spearman of constant gold scores is undefined: the JSON holds null (valid JSON) and the console says why."""
    sts = write(
        run["t"] / "sts.json",
        json.dumps([{"sentence1": f"topic{i} a", "sentence2": f"topic{i} b", "score": 3.0} for i in range(5)]),
    )
    out = run["t"] / "eval.json"
    assert main([str(a) for a in evaluate_argv(run, sts_data=sts, output=out)]) == 0
    result = json.loads(out.read_text())  # strict JSON: a bare NaN would not parse in most readers
    assert result["sts_spearman"]["baseline"] is None and result["sts_spearman"]["trained"] is None
    assert "sts_spearman.baseline, sts_spearman.trained undefined (NaN" in caplog.text
    assert "NaN" not in out.read_text()


def test_evaluate_output_replaces_an_earlier_evaluation(run, capsys):
    out = run["t"] / "eval.json"
    assert main([str(a) for a in evaluate_argv(run, output=out)]) == 0
    assert main([str(a) for a in evaluate_argv(run, output=out)]) == 0
    assert json.loads(out.read_text())["kind"] == "isoadapt-evaluation"
