"""`isoadapt serve` under load: texts/s, requests/s and p50/p99 latency at 1, 16 and 64 concurrent clients
sending 1 to 32 Semanlink texts per request (sizes seeded), against (a) the same texts through
`Adapter.encode_query` in process (one call) and (b) infinity-emb serving the base MiniLM from its own
virtual environment (bench/README.md, section 14, says how to make it), same texts and clients. Also: the
single-text p50 latency, whether infinity keeps our export's head (its vectors against
`Adapter.encode_query`) and what it does with a query-only (Router) export, and with `--ray` one against two
Ray Serve replicas at 16 clients. The machine's load average is printed at the start and the end.

    .venv/bin/python bench/serve.py [--data data/processed/semanlink] [--texts 2000] [--ray]
        [--infinity /work/infinity-venv/bin/infinity_emb]   # omit infinity: --infinity ''
    .venv/bin/python bench/serve.py --texts 200 --clients 1 16 --infinity ''   # a smoke run
    .venv/bin/python bench/serve.py --clients 16 --infinity '' --interleave 7   # the 16-client ratio, drift-proof

Without --run_dir it trains two MiniLM heads first (one epoch on data/processed/semanlink_smoke, both sides
and query-only) into a temporary folder and exports them; the served speed does not depend on the head.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from isoadapt.api.adapter import Adapter  # noqa: E402
from isoadapt.cli import main as isoadapt  # noqa: E402
from isoadapt.data.formats import load_eval  # noqa: E402
from isoadapt.encoding.offline_models import MINILM, resolve_model  # noqa: E402
from isoadapt.training.config import DEFAULT_CACHE_DIR  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def semanlink_texts(data: Path, count: int) -> list[str]:
    """The test split's documents then queries, the first `count` distinct ones."""
    split = load_eval(data / "test.json")
    return list(dict.fromkeys([*split.corpus.values(), *split.queries.values()]))[:count]


def requests_of(texts: list[str], seed: int = 0) -> list[list[str]]:
    """The texts cut into requests of 1 to 32 texts (sizes seeded), each text sent once."""
    rng, out, start = np.random.default_rng(seed), [], 0
    while start < len(texts):
        size = int(rng.integers(1, 33))
        out.append(texts[start : start + size])
        start += size
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, path: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before it was ready")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"port {port} not ready after {timeout}s")


@contextlib.contextmanager
def server(command: list[str], port: int, health: str):
    """A server process on the port, ready; SIGTERM at the end."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_for(port, health, process)
        yield process
    except RuntimeError:
        log.seek(0)
        print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        process.terminate()
        process.wait(120)
        log.close()


def post(connection: http.client.HTTPConnection, path: str, body: dict) -> dict:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {payload[:300]!r}")
    return json.loads(payload)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process (the bench: only its client threads work during a load) or
    of the server process `pid`, all its threads; NaN where /proc is missing."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    port: int, path: str, model: str, batches: list[list[str]], clients: int, extra: dict, server_pid: int | None = None
) -> dict:
    """`clients` threads, each with one keep-alive connection, take the next request until none is left; the
    CPU seconds the client threads and the server spent on it."""
    latencies, lock, next_index = [], threading.Lock(), iter(range(len(batches)))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            start = time.perf_counter()
            post(connection, path, {"model": model, "input": batches[index], **extra})
            with lock:
                latencies.append(time.perf_counter() - start)

    cpu_before = cpu_seconds(), cpu_seconds(server_pid) if server_pid else float("nan")
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    client_cpu = cpu_seconds() - cpu_before[0]
    server_cpu = (cpu_seconds(server_pid) if server_pid else float("nan")) - cpu_before[1]
    texts = sum(len(b) for b in batches)
    ms = np.array(latencies) * 1000
    return {
        "texts/s": texts / seconds,
        "req/s": len(batches) / seconds,
        "p50": np.percentile(ms, 50),
        "p99": np.percentile(ms, 99),
        "client cpu": client_cpu,
        "server cpu": server_cpu,
    }


def vectors(port: int, path: str, model: str, texts: list[str], extra: dict) -> np.ndarray:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    return np.array([d["embedding"] for d in post(connection, path, {"model": model, "input": texts, **extra})["data"]])


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def train_heads(root: Path, cache: Path, data: Path) -> dict[str, Path]:
    """Two one-epoch MiniLM runs on semanlink_smoke (both sides, query-only) and their exports."""
    out = {}
    for adapt in ("both", "query"):
        run = root / f"run-{adapt}"
        flags = ["--train_data", data / "train.json", "--val_data", data / "dev.json", "--output_dir", run]
        flags += ["--cache_dir", cache, "--base_model", MINILM, "--epochs", "1", "--adapt", adapt]
        assert isoadapt(["train", *map(str, flags)]) == 0
        assert (
            isoadapt(
                ["export", "--run_dir", str(run), "--out", str(root / f"export-{adapt}"), "--cache_dir", str(cache)]
            )
            == 0
        )
        out[adapt], out[f"export-{adapt}"] = run, root / f"export-{adapt}"
    return out


def row(name: str, measured: dict, reference: float | None = None) -> str:
    ratio = f"{measured['texts/s'] / reference:6.2f}x" if reference else "       "
    rates = f"{measured['texts/s']:9.1f} {measured['req/s']:8.1f}"
    cpu = f"{measured['client cpu']:8.2f} {measured['server cpu']:8.2f}"
    return f"{name:34s} {rates} {measured['p50']:9.1f} {measured['p99']:9.1f} {ratio} {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data/processed/semanlink")
    parser.add_argument("--train_data", type=Path, default=REPO / "data/processed/semanlink_smoke")
    parser.add_argument("--run_dir", type=Path, help="a both-sides MiniLM run to serve (default: train one)")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--infinity", default="/work/infinity-venv/bin/infinity_emb", help="'' to skip")
    parser.add_argument("--encode_workers", type=int, help="isoadapt serve's --encode_workers (default: its own)")
    parser.add_argument("--max_batch_tokens", type=int, help="isoadapt serve's --max_batch_tokens (default: its own)")
    parser.add_argument("--max_wait_ms", type=float, help="isoadapt serve's --max_wait_ms (default: its own)")
    parser.add_argument("--ray", action="store_true", help="also 1 vs 2 Ray Serve replicas at 16 clients")
    parser.add_argument(
        "--interleave",
        type=int,
        default=0,
        help="N > 0: at each concurrency also N rounds of (in-process call, served load), the median ratio",
    )
    parser.add_argument("--cache_dir", type=Path, default=DEFAULT_CACHE_DIR)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    texts = semanlink_texts(args.data, args.texts)
    batches = requests_of(texts)
    print(f"{len(texts)} Semanlink texts in {len(batches)} requests of 1-32 texts; clients {args.clients}")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        heads = {"both": args.run_dir} if args.run_dir else train_heads(Path(scratch), args.cache_dir, args.train_data)
        adapter = Adapter.load(heads["both"], args.cache_dir)
        adapter.encode_query(texts[:32])  # warm
        start, cpu = time.perf_counter(), cpu_seconds()
        reference = adapter.encode_query(texts)
        in_process, cpu = len(texts) / (time.perf_counter() - start), cpu_seconds() - cpu
        print(f"\nin process, Adapter.encode_query over all texts at once: {in_process:.1f} texts/s, {cpu:.2f} CPU s")
        header = f"{'server @ clients':34s} {'texts/s':>9s} {'req/s':>8s} {'p50 ms':>9s} {'p99 ms':>9s} vs in-p"
        print(header + " client CPU s / server CPU s")
        ours = serve_ours(args, heads["both"], batches, texts, reference, in_process, adapter)
        theirs = serve_infinity(args, heads, batches, texts, in_process) if args.infinity else {}
        for clients in args.clients:
            if clients in theirs:
                ratio = ours[clients]["texts/s"] / theirs[clients]["texts/s"]
                print(f"isoadapt / infinity at {clients} clients: {ratio:.2f}x")
        if args.ray:
            serve_ray(args, heads["both"], batches, in_process)
    print(f"load average at end: {os.getloadavg()}")


def in_process_rate(adapter: Adapter, texts: list[str]) -> float:
    start = time.perf_counter()
    adapter.encode_query(texts)
    return len(texts) / (time.perf_counter() - start)


def interleaved(args, adapter: Adapter, port: int, pid: int, batches, texts, clients: int) -> str:
    """N rounds of one served load between two in-process calls, back to back: on a machine whose speed
    drifts between runs (this VM's in-process rate moved 451-625 texts/s between consecutive runs), each
    round's ratio compares the load with the mean of the calls just before and just after it; the median
    ratio is the figure to read."""
    ratios, served, local = [], [], []
    for _ in range(args.interleave):
        before = in_process_rate(adapter, texts)
        served.append(load(port, "/v1/embeddings", "m:query", batches, clients, {}, pid)["texts/s"])
        local.append((before + in_process_rate(adapter, texts)) / 2)
        ratios.append(served[-1] / local[-1])
    return (
        f"  interleaved x{args.interleave} @ {clients}: median served {np.median(served):.1f} texts/s, in-process "
        f"{np.median(local):.1f}, median ratio {np.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x)"
    )


def serve_ours(args, run: Path, batches, texts, reference, in_process, adapter: Adapter) -> dict:
    port = free_port()
    command = [sys.executable, "-m", "isoadapt.cli", "serve", "--run_dir", str(run), "--port", str(port)]
    command += ["--encode_workers", str(args.encode_workers)] if args.encode_workers else []
    command += ["--max_batch_tokens", str(args.max_batch_tokens)] if args.max_batch_tokens else []
    command += ["--max_wait_ms", str(args.max_wait_ms)] if args.max_wait_ms is not None else []
    out = {}
    with server([*command, "--cache_dir", str(args.cache_dir), "--name", "m"], port, "/health") as process:
        served = vectors(port, "/v1/embeddings", "m:query", texts[:64], {})
        print(f"  (served vectors vs Adapter.encode_query: min cosine {min_cosine(served, reference[:64]):.6f})")
        single = load(port, "/v1/embeddings", "m:query", [[t] for t in texts[:200]], 1, {}, process.pid)
        print(row("isoadapt serve, 1 text, 1 client", single))
        for clients in args.clients:
            out[clients] = load(port, "/v1/embeddings", "m:query", batches, clients, {}, process.pid)
            print(row(f"isoadapt serve @ {clients}", out[clients], in_process))
            if args.interleave:
                print(interleaved(args, adapter, port, process.pid, batches, texts, clients))
    return out


def serve_infinity(args, heads: dict, batches, texts, in_process) -> dict:
    """infinity-emb on the base MiniLM (throughput, and its vectors against ours), then on our exports."""
    from isoadapt.encoding.encoder import Encoder

    out, port = {}, free_port()
    base_folder = resolve_model(MINILM, args.cache_dir)
    command = [
        args.infinity,
        "v2",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--engine",
        "torch",
        "--no-bettertransformer",
    ]
    base_command = [*command, "--model-id", str(base_folder), "--served-model-name", "minilm"]
    with server(base_command, port, "/health") as process:
        base = Encoder(MINILM, args.cache_dir, show_progress=False).encode(texts[:64])
        theirs = vectors(port, "/embeddings", "minilm", texts[:64], {})
        print(f"  (infinity's base MiniLM vs sentence-transformers: min cosine {min_cosine(theirs, base):.6f})")
        for clients in args.clients:
            out[clients] = load(port, "/embeddings", "minilm", batches, clients, {}, process.pid)
            print(row(f"infinity-emb (base MiniLM) @ {clients}", out[clients], in_process))
    for adapt in ("both", "query"):
        export = heads.get(f"export-{adapt}")
        if export is None:
            continue
        port = free_port()
        try:
            with server([*command, "--model-id", str(export), "--served-model-name", "x"], port, "/health"):
                theirs = vectors(port, "/embeddings", "x", texts[:64], {})
                ours = Adapter.load(export, args.cache_dir).encode_query(texts[:64])
                cosine = min_cosine(theirs, ours)
                print(f"  infinity on our {adapt} export: min cosine to Adapter.encode_query {cosine:.6f}")
        except RuntimeError as err:
            print(f"  infinity on our {adapt} export: failed to serve it ({err})")
    return out


def serve_ray(args, run: Path, batches, in_process) -> None:
    for replicas in (1, 2):
        port = free_port()
        command = [sys.executable, "-m", "isoadapt.cli", "serve", "--run_dir", str(run), "--port", str(port)]
        command += ["--engine", "ray", "--replicas", str(replicas), "--cache_dir", str(args.cache_dir), "--name", "m"]
        with server(command, port, "/health"):  # Ray's replicas are other processes: no server CPU here
            measured = load(port, "/v1/embeddings", "m:query", batches, 16, {})
            print(row(f"Ray Serve, {replicas} replica(s) @ 16", measured, in_process))


if __name__ == "__main__":
    main()
