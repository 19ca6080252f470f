"""A/B of `isoadapt serve` variants on one load: each variant (a source tree and serve flags) runs as its own
server, all up at once; in each round every variant serves bench/serve.py's load (2,000 Semanlink texts in
requests of 1 to 32) between two in-process `Adapter.encode_query` calls, and its ratio is its texts/s over
the mean of those two calls. Rounds alternate the variants' order. Medians per variant: on a VM whose speed
drifts by 20% between runs, only paired, interleaved ratios compare code.

    git worktree add /tmp/old <commit>   # the code to compare with
    .venv/bin/python bench/serve_ab.py --variant old1 /tmp/old/src --variant new2 src --encode_workers 2 \\
        [--rounds 6] [--clients 16] [--run_dir runs/minilm-smoke]

Flags after a variant's source tree are that variant's serve flags, up to the next --variant.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from isoadapt.api.adapter import Adapter  # noqa: E402
from isoadapt.training.config import DEFAULT_CACHE_DIR  # noqa: E402
from serve import REPO, free_port, in_process_rate, load, min_cosine, requests_of, semanlink_texts, vectors, wait_for  # noqa: E402


def variants_of(argv: list[str]) -> tuple[list[str], dict[str, tuple[str, list[str]]]]:
    """The arguments before the first --variant, and each variant's (source tree, serve flags)."""
    if "--variant" not in argv:
        raise SystemExit("name at least one --variant NAME SRC [serve flags]")
    first = argv.index("--variant")
    out, rest = {}, argv[first:]
    while rest:
        nxt = rest.index("--variant", 1) if "--variant" in rest[1:] else len(rest)
        name, src, *flags = rest[1:nxt]
        out[name] = (src, flags)
        rest = rest[nxt:]
    return argv[:first], out


def start(name: str, src: str, flags: list[str], run: Path, cache: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "isoadapt.cli", "serve", "--run_dir", str(run), "--port", str(port)]
    command += ["--name", "m", "--cache_dir", str(cache), *flags]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port


def main() -> None:
    own, variants = variants_of(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--run_dir", type=Path, default=REPO / "runs/minilm-smoke", help="a both-sides MiniLM run")
    parser.add_argument("--data", type=Path, default=REPO / "data/processed/semanlink")
    parser.add_argument("--cache_dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args(own)
    texts = semanlink_texts(args.data, 2000)
    batches = requests_of(texts)
    adapter = Adapter.load(args.run_dir, args.cache_dir)
    reference = adapter.encode_query(texts[:64])
    servers = {name: start(name, src, flags, args.run_dir, args.cache_dir) for name, (src, flags) in variants.items()}
    try:
        for name, (process, port) in servers.items():
            wait_for(port, "/health", process)
            cosine = min_cosine(vectors(port, "/v1/embeddings", "m:query", texts[:64], {}), reference)
            print(f"{name}: served vectors vs Adapter.encode_query, min cosine {cosine:.6f}")
        ratios = {name: [] for name in servers}
        for round_ in range(args.rounds):
            for name in list(servers) if round_ % 2 == 0 else list(servers)[::-1]:
                process, port = servers[name]
                before = in_process_rate(adapter, texts)
                served = load(port, "/v1/embeddings", "m:query", batches, args.clients, {}, process.pid)["texts/s"]
                ratios[name].append(served / ((before + in_process_rate(adapter, texts)) / 2))
            print(f"round {round_}: " + ", ".join(f"{n} {r[-1]:.3f}x" for n, r in ratios.items()), flush=True)
        for name, r in ratios.items():
            print(f"{name} @ {args.clients}: median {np.median(r):.3f}x (rounds {min(r):.2f}-{max(r):.2f}x)")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(120)


if __name__ == "__main__":
    main()
