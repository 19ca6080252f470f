"""`isoadapt --help` and `isoadapt train --help`, before and after the command line stopped importing torch,
measured in one run on this machine.

    .venv/bin/python bench/cli_startup.py [--before 9e41ca7] [--runs 7]

"Before" is the package source at commit `--before` (by default main where the `api` branch started, when
cli.py pulled torch in through TrainConfig's imports), unpacked with `git archive` into a temporary folder;
"after" is this checkout's src/. Each command runs as a fresh process (`python -m isoadapt.cli ...`, what
the `isoadapt` script runs), once to warm the file cache, then `--runs` times alternating before and after;
the table gives the median wall time. It also says whether building the parser imported torch. The
headline is before's median over after's for `isoadapt --help`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["train", "--help"])
TORCH_CHECK = "import sys, isoadapt.cli as c; c.build_parser(); print('torch' in sys.modules)"


def unpack_src(commit: str, into: Path) -> Path:
    """The package source at `commit` (git archive of src/), unpacked under `into`."""
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def seconds(argv: list[str], src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "isoadapt.cli", *argv], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def imports_torch(src: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", TORCH_CHECK], env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="9e41ca7", help="the commit whose src/ is 'before'")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command and version")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="isoadapt-bench-") as scratch:
        versions = {f"before ({args.before})": unpack_src(args.before, Path(scratch)), "after (this src)": REPO / "src"}
        times: dict[tuple[str, str], list[float]] = {}
        for argv in COMMANDS:
            for src in versions.values():
                seconds(argv, src)  # warm the file cache
            for _ in range(args.runs):
                for name, src in versions.items():
                    times.setdefault((name, " ".join(argv)), []).append(seconds(argv, src))
        torch = {name: imports_torch(src) for name, src in versions.items()}
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, load average {os.getloadavg()[0]:.2f}")
    print(f"{'version':<20}{'command':<26}{'median s':>10}{'min s':>8}  imports torch")
    for (name, command), values in times.items():
        line = f"{name:<20}{'isoadapt ' + command:<26}{statistics.median(values):>10.2f}{min(values):>8.2f}"
        print(f"{line}  {torch[name]}")
    before, after = (statistics.median(times[(name, "--help")]) for name in versions)
    print(f"headline: `isoadapt --help` takes {after:.2f} s, {before / after:.1f}x faster than before ({before:.2f} s)")


if __name__ == "__main__":
    main()
