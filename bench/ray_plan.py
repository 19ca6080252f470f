"""`isoadapt experiment --engine ray` on a fully cached plan: what the trials cost beyond the jobs, and
whether each trial loads the model. Runs the command line in a subprocess whose code is `--src` (this
checkout's by default; the before/after in bench/README.md gave an older checkout's src/ the second time).

    .venv/bin/python bench/ray_plan.py [--base_model sentence-transformers/all-MiniLM-L6-v2] [--src DIR]

The plan (six cheap rows on Semanlink's smoke pairs) runs locally first, which also fills the cache; then
on a local Ray with two trials at once. Both wall times include starting the process; the Ray one also
starting Ray. The headline is the Ray run's time over the local run's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isoadapt.encoding.offline_models import MINILM

PLAN = """
name = "rayplan"
[defaults]
train = "smoke"
epochs = 1
[[configs]]
name = "baseline"
kind = "baseline"
[[configs]]
name = "whitening-256"
kind = "posthoc"
transform = "whitening"
keep = 256
[[configs]]
name = "exp1"
[[configs]]
name = "infonce"
contrastive_loss = "infonce"
lambda_contrastive = 1.0
lambda_isotropy = 0.0
"""


def run(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "isoadapt.cli", *argv], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data_root", default="data/processed")
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"), help="the code measured")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": args.src}
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "rayplan.toml"
        plan.write_text(PLAN)
        common = ["experiment", "--plan", str(plan), "--data", "semanlink", "--data_root", args.data_root]
        common += ["--seeds", args.seeds, "--base_model", args.base_model, "--cache_dir", str(Path(tmp) / "cache")]
        run([*common, "--runs_root", str(Path(tmp) / "warm")], env)  # fills the cache: every text encoded once
        local = run([*common, "--runs_root", str(Path(tmp) / "local")], env)
        on_ray = run([*common, "--runs_root", str(Path(tmp) / "ray"), "--engine", "ray", "--workers", "2"], env)
    jobs = 2 + 2 * len(args.seeds.split(","))
    print(f"{args.base_model}, {jobs} jobs on a cached plan, code from {args.src}")
    print(f"{'engine':<10}{'wall s':>8}")
    print(f"{'local':<10}{local:>8.1f}")
    print(f"{'ray (2)':<10}{on_ray:>8.1f}")
    print(f"headline: the Ray run took {on_ray / local:.2f}x the local run's wall time on a cached plan")


if __name__ == "__main__":
    main()
