"""MLflow's per-run overhead on `isoadapt train`, before and after the tracker's rewrite, in one run.

    .venv/bin/python bench/mlflow_overhead.py [--before 9e41ca7] [--repeats 2] [--base_model ...]

One configuration (Semanlink's smoke pairs, 2 epochs, batch 16: 250 steps) trains in a fresh process each
time, the embedding cache filled by a first run: `isoadapt train --tracker none`, then `--tracker mlflow`
on the code of commit `--before` (taken with `git archive`) and on this checkout's code, each first into
a fresh SQLite store (MLflow creates its schema) and then into that same store again. Each round runs
every variant once, interleaved, so a change in the machine's load reaches all alike; a figure is the
fastest of `--repeats` rounds.

Inside each run, every call into the tracker is timed (wall and CPU seconds): opening it (importing
mlflow, opening or creating the store, creating the run), the parameters, each step's losses, the
metrics, closing it, and after the rewrite the run's files and its export logged once the run folder is
complete. That is MLflow's own time in a real run; the run's total wall time against the no-tracker run
is printed too, but on a shared machine the training's own spread is larger than MLflow's share.

Then each piece alone in a fresh interpreter: importing mlflow, a fresh store, an existing store, the 250
steps' losses in one call per step (before) or in one batch (after), and the run's files and its export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isoadapt.encoding.offline_models import MINILM

REPO = Path(__file__).resolve().parents[1]
# Runs `isoadapt train` with every call into the tracker timed; prints the seconds spent per call kind.
TIMED_TRAIN = r"""
import json, sys, time
import isoadapt.training.train_command as train_command
spent = {}
def timed(name, call):
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            got = spent.setdefault(name, [0.0, 0.0])
            got[0] += time.perf_counter() - wall
            got[1] += time.process_time() - cpu
    return wrapper
opened = train_command.open_tracker
def open_tracker(*args, **kwargs):
    tracker = timed("open", opened)(*args, **kwargs)
    for name in ("log_params", "log_step", "log_metrics", "close"):
        setattr(tracker, name, timed(name, getattr(tracker, name)))
    return tracker
train_command.open_tracker = open_tracker
try:
    import isoadapt.store.mlflow_export as mlflow_export
    mlflow_export.log_run_to_mlflow = timed("files and export", mlflow_export.log_run_to_mlflow)
except ImportError:
    pass  # before the rewrite: no such step
from isoadapt.cli import main
code = main(sys.argv[1:])
print("SPENT " + json.dumps(spent))
sys.exit(code)
"""
CALLS = ("open", "log_params", "log_step", "log_metrics", "close", "files and export")

PIECES = {
    "import mlflow": ("", "import mlflow"),
    "a fresh store (schema created)": (
        "import mlflow",
        "mlflow.MlflowClient(tracking_uri=URI).search_experiments()",
    ),
    "an existing store": ("import mlflow", "mlflow.MlflowClient(tracking_uri=URI).search_experiments()"),
    "STEPS steps' losses, one call per step": (
        "import mlflow, time\nfrom mlflow.entities import Metric\nc = mlflow.MlflowClient(tracking_uri=URI)\n"
        "e = c.get_experiment_by_name('isoadapt') or c.get_experiment(c.create_experiment('isoadapt'))\n"
        "r = c.create_run(e.experiment_id).info.run_id\nnow = int(time.time() * 1000)",
        "for s in range(STEPS):\n"
        "    c.log_batch(r, metrics=[Metric(f'loss_{t}', 0.5, now, s) for t in ('total', 'a', 'b', 'c')])",
    ),
    "STEPS steps' losses, batched": (
        "import mlflow, time\nfrom mlflow.entities import Metric\nc = mlflow.MlflowClient(tracking_uri=URI)\n"
        "e = c.get_experiment_by_name('isoadapt') or c.get_experiment(c.create_experiment('isoadapt'))\n"
        "r = c.create_run(e.experiment_id).info.run_id\nnow = int(time.time() * 1000)",
        "c.log_batch(r, metrics=[\n"
        "    Metric(f'loss_{t}', 0.5, now, s) for s in range(STEPS) for t in ('total', 'a', 'b', 'c')\n"
        "])",
    ),
    "the run's files and its export": (  # the store and sentence-transformers loaded, as the tracker left them
        "from pathlib import Path\nimport mlflow, sentence_transformers\n"
        "from isoadapt.store.mlflow_export import log_run_to_mlflow\n"
        "mlflow.MlflowClient(tracking_uri=URI).search_experiments()",
        "log_run_to_mlflow(Path(RUN), Path(CACHE))",
    ),
}


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def train(src: Path, argv: list[str], cwd: Path) -> tuple[float, dict]:
    """Wall seconds of one timed `isoadapt train`, and its seconds per tracker call: {call: [wall, cpu]}."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TIMED_TRAIN, *argv], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    spent = [line for line in done.stdout.splitlines() if line.startswith("SPENT ")][-1]
    return wall, json.loads(spent.removeprefix("SPENT "))


def piece(setup: str, timed: str, values: dict, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `timed` after `setup`, in a fresh interpreter."""
    for name, value in values.items():
        setup, timed = setup.replace(name, repr(value)), timed.replace(name, repr(value))
    code = (
        f"{setup}\nimport time as _time\n_wall, _cpu = _time.perf_counter(), _time.process_time()\n{timed}\n"
        "print(_time.perf_counter() - _wall, _time.process_time() - _cpu)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    wall, cpu = done.stdout.split()[-2:]
    return float(wall), float(cpu)


def checkout(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="9e41ca7", help="the commit whose tracker is measured as 'before'")
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument("--data", default=str(REPO / "data" / "processed" / "semanlink_smoke"))
    parser.add_argument("--repeats", type=int, default=2, help="rounds; each round runs every variant once")
    args = parser.parse_args()
    data = Path(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sources = {"before": checkout(args.before, tmp / "before"), "after": REPO / "src"}
        cache = str(Path("~/.cache/isoadapt").expanduser())
        common = ["train", "--train_data", str(data / "train.json"), "--val_data", str(data / "dev.json")]
        common += ["--base_model", args.base_model, "--epochs", "2", "--batch_size", "16", "--cache_dir", cache]
        runs = {"n": 0}

        def one(code: str, *extra: str) -> tuple[float, dict]:
            runs["n"] += 1
            return train(sources[code], [*common, "--output_dir", str(tmp / f"run{runs['n']}"), *extra], tmp)

        one("after", "--tracker", "none")  # fills the cache
        steps = json.loads((tmp / "run1" / "metrics.json").read_text())["train"]["steps"]
        variants = [("after", "none", "-")]
        variants += [(code, "mlflow", store) for store in ("fresh", "existing") for code in ("before", "after")]
        results: dict[tuple, list] = {}
        for attempt in range(args.repeats):
            for code, tracker, store in variants:
                extra = ["--tracker", tracker]
                if tracker == "mlflow":  # an "existing" run trains into the store its round's "fresh" run made
                    db = tmp / f"{code}-{attempt}" / "mlflow.db"
                    db.parent.mkdir(exist_ok=True)
                    extra += ["--tracking_uri", f"sqlite:///{db}"]
                wall, spent = one(code, *extra)
                results.setdefault((code, tracker, store), []).append((wall, spent))
                inside = sum(w for w, _ in spent.values()) if tracker == "mlflow" else 0.0
                print(
                    f"  {code}, {tracker}, {store} store: run {wall:.1f} s, in MLflow {inside:.1f} s ({load()})",
                    flush=True,
                )
        totals = report(results, steps, args)
        pieces(tmp, steps, tmp / f"run{runs['n']}", cache)
        headline(totals, steps)


def fastest(runs: list) -> tuple[float, dict]:
    """The fastest run's wall time, and per tracker call the fastest [wall, cpu] over the rounds."""
    calls = {name: [min(s[name][i] for _, s in runs if name in s) for i in (0, 1)] for name in runs[0][1]}
    return min(wall for wall, _ in runs), calls


def report(results: dict, steps: int, args) -> dict:
    """The table; returns per (code, store) the seconds inside MLflow: (all of it, the tracking alone)."""
    base = fastest(results[("after", "none", "-")])[0]
    print(f"{args.base_model} on {Path(args.data).name}: {steps} steps; before = {args.before}, fastest of rounds")
    print("seconds inside MLflow per run, wall (CPU), by tracker call; the run's wall time against --tracker none")
    print(f"{'code':<8} {'store':<9} " + " ".join(f"{c:>16}" for c in CALLS) + f" {'in MLflow':>14} {'run':>6}")
    totals = {}
    for (code, tracker, store), runs in results.items():
        if tracker == "none":
            continue
        wall, calls = fastest(runs)
        cells = [f"{calls[c][0]:>7.2f} ({calls[c][1]:>5.2f})" if c in calls else f"{'-':>16}" for c in CALLS]
        inside = (sum(w for w, _ in calls.values()), sum(c for _, c in calls.values()))
        tracking = sum(calls[c][0] for c in calls if c != "files and export")
        totals[(code, store)] = (inside[0], tracking)
        print(
            f"{code:<8} {store:<9} " + " ".join(cells) + f" {inside[0]:>6.2f} ({inside[1]:>5.2f}) {wall - base:>+6.1f}"
        )
    return totals


def headline(totals: dict, steps: int) -> None:
    for store in ("fresh", "existing"):
        before, after = totals[("before", store)][1], totals[("after", store)]
        print(
            f"headline ({store} store): MLflow's tracking took {before:.1f} s of a {steps}-step run before and "
            f"{after[1]:.1f} s after ({before / after[1]:.1f}x less); with the run's files and its export, "
            f"{after[0]:.1f} s"
        )


def pieces(tmp: Path, steps: int, last_run: Path, cache: str) -> None:
    """Where the time goes: each piece alone, in a fresh interpreter."""
    db = tmp / "pieces" / "mlflow.db"
    db.parent.mkdir()
    values = {"URI": f"sqlite:///{db}", "STEPS": steps, "RUN": str(last_run), "CACHE": cache}
    print(f"each piece alone, in a fresh interpreter ({load()})")
    for name, (setup, timed) in PIECES.items():
        if name == "the run's files and its export":  # a second model into the last run's MLflow run
            values["URI"] = json.loads((last_run / "config.json").read_text())["mlflow"]["tracking_uri"]
        wall, cpu = piece(setup, timed, values, tmp)
        print(f"  {name.replace('STEPS', str(steps)):<45} wall {wall:>6.2f} s, CPU {cpu:>6.2f} s")


if __name__ == "__main__":
    main()
