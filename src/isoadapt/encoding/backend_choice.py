"""How the frozen encoder runs (`--encode_backend`), and `auto`: the fastest installed backend whose vectors
stay within a stated tolerance of PyTorch's, measured on this machine.

Why measure instead of fixing a default: bench/encode_backends.py found the ranking moves with the machine
and the run (ONNX Runtime fp32 0.91x to 1.48x PyTorch on MiniLM, OpenVINO 1.22x to 2.06x, int8 1.65x to
1.86x), so the right answer is the one this CPU gives. On first use per CPU, model and library versions,
`auto` encodes a held slice of the run's validation data with every installed backend (interleaved
rounds, so a load spike on a shared machine hits them all, best round kept), scores each against
PyTorch's vectors, writes what it measured to `<cache_dir>/backend-choice-<key>.json` and reuses it
afterwards. The resolved name is what the encoder, the cache fingerprint and the run's config carry:
`auto` is never a cache identity, so its vectors never mix with another backend's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from filelock import FileLock

from isoadapt.data.formats import EvalSet
from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.metrics.normalize import l2_normalize

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")  # how the frozen encoder runs; vectors are cached per backend
AUTO = "auto"  # a request, never an identity: it resolves to one of BACKENDS
BACKEND_CHOICES = (*BACKENDS, AUTO)
REFERENCE = "torch"
WITHIN = "within tolerance"  # a backend's verdict when it may replace PyTorch
NEEDS = {  # the packages each backend imports (the ONNX export itself needs `onnx`)
    "torch": ("torch",),
    "onnx": ("onnx", "onnxruntime"),
    "onnx-int8": ("onnx", "onnxruntime"),
    "openvino": ("onnx", "openvino"),
}

# The tolerance, stated once (it is also part of the cached choice's key):
MIN_COSINE = 0.95  # per text, against PyTorch: int8's per-channel weights gave 0.963 on MiniLM (bench/README 2)
MAX_NDCG_LOSS_PCT = 1.0  # NDCG@10 on the probe may fall at most 1% (relative) below PyTorch's
MIN_SPEEDUP = 1.10  # another backend must be 10% faster than PyTorch to replace it: smaller gains are within
# the timing noise of a shared machine, and each switch costs a full re-encode under a new fingerprint
PROBE_QUERIES = 64  # the held slice: the first validation queries with a judged document
PROBE_DOCUMENTS = 256  # their judged documents, then the corpus in order, up to this many
ROUNDS = 2  # interleaved timing rounds; each backend keeps its fastest

clock = time.perf_counter  # the timer of every measurement (tests give it a clock their fake encoders advance)


@dataclass
class Probe:
    """What `auto` measures on: texts to time and compare by cosine, and a split to score NDCG@10 on
    (None when no validation data is at hand: then cosine alone decides quality, as the record says)."""

    texts: list[str]
    split: EvalSet | None
    source: str


def probe_from_split(split: EvalSet, source: str) -> Probe:
    """The held slice of a validation split: its first PROBE_QUERIES judged queries, their judged documents
    and the first other documents of the corpus, PROBE_DOCUMENTS in all."""
    judged = [q for q in split.queries if any(g > 0 for g in split.qrels.get(q, {}).values())][:PROBE_QUERIES]
    relevant = dict.fromkeys(d for q in judged for d, g in split.qrels[q].items() if g > 0 and d in split.corpus)
    others = [d for d in split.corpus if d not in relevant][: max(0, PROBE_DOCUMENTS - len(relevant))]
    documents = {d: split.corpus[d] for d in [*relevant, *others]}
    qrels = {q: {d: g for d, g in split.qrels[q].items() if d in documents} for q in judged}
    queries = {q: split.queries[q] for q in judged}
    texts = list(dict.fromkeys([*queries.values(), *documents.values()]))
    return Probe(
        texts, EvalSet(queries, documents, qrels), f"{source}: {len(queries)} queries, {len(documents)} documents"
    )


def probe_from_texts(texts: list[str], source: str) -> Probe:
    """The stated alternative when no validation split is at hand: the first texts, cosine only."""
    first: dict[str, None] = {}
    for text in texts:  # the first distinct ones, without reading a long list to its end
        first.setdefault(text, None)
        if len(first) == PROBE_QUERIES + PROBE_DOCUMENTS:
            break
    sample = list(first)
    return Probe(sample, None, f"{source}: first {len(sample)} texts (no validation split: cosine only)")


def installed_backends() -> list[str]:
    """The backends whose packages are installed here, PyTorch first."""
    return [b for b in BACKENDS if all(importlib.util.find_spec(p) is not None for p in NEEDS[b])]


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one, else every CPU)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_signature() -> dict:
    """The CPU as the choice depends on it: model name, instruction-set flags, cores and torch threads."""
    import torch

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())  # the first core's; every core is alike here
    except OSError:
        pass  # not Linux: platform's name, no flags
    return {
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "flags": " ".join(sorted((info.get("flags") or info.get("Features") or "").split())),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def backend_versions(backends: list[str]) -> dict[str, str]:
    packages = sorted({p for b in backends for p in NEEDS[b]})
    return {p: importlib.metadata.version(p) for p in packages if _distribution_exists(p)}


def _distribution_exists(package: str) -> bool:
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def choice_key(identity: dict, backends: list[str]) -> dict:
    """Everything the choice depends on: the CPU, the model's weights, the installed backends and their
    versions, and the tolerance. A change in any of them means measuring again."""
    return {
        "cpu": cpu_signature(),
        "model": identity.get("weights_sha256") or identity.get("name"),
        "backends": backends,
        "libraries": backend_versions(backends),
        "rule": {"min_cosine": MIN_COSINE, "max_ndcg_loss_pct": MAX_NDCG_LOSS_PCT, "min_speedup": MIN_SPEEDUP},
    }


def choice_file(cache_dir: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"backend-choice-{digest}.json"


def probe_ndcg(split: EvalSet, vectors: dict[str, np.ndarray]) -> float:
    """NDCG@10 of the probe's queries over its documents, from vectors by text."""
    from isoadapt.metrics.retrieval import exact_search, retrieval_scores  # torch: not for --help

    query_ids, doc_ids = list(split.queries), list(split.corpus)
    queries = np.stack([vectors[split.queries[q]] for q in query_ids])  # (queries, d)
    documents = np.stack([vectors[split.corpus[d]] for d in doc_ids])  # (documents, d)
    run = exact_search(queries, documents, query_ids, doc_ids, top_k=10)
    return retrieval_scores(split.qrels, run)[0]["ndcg@10"]


def min_cosine(vectors: np.ndarray, reference: np.ndarray) -> float:  # (n, d), (n, d)
    return float((l2_normalize(vectors) * l2_normalize(reference)).sum(axis=1).min())


def time_backends(encoders: dict[str, object], texts: list[str]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds per backend for all `texts` (fastest of ROUNDS interleaved rounds, after a warm-up batch that
    pays first-call compilation), and each backend's vectors."""
    for encoder in encoders.values():
        encoder.encode(texts[:32])
    seconds = dict.fromkeys(encoders, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for _ in range(ROUNDS):
        for name, encoder in encoders.items():
            started = clock()
            vectors[name] = encoder.encode(texts)
            seconds[name] = min(seconds[name], clock() - started)
    return seconds, vectors


def verdict(row: dict) -> str:
    """Why a backend may not replace PyTorch, or '' when it may."""
    if row["min_cosine"] < MIN_COSINE:
        return f"refused: min cosine {row['min_cosine']:.4f} < {MIN_COSINE}"
    if row["ndcg_change_pct"] is not None and row["ndcg_change_pct"] < -MAX_NDCG_LOSS_PCT:
        return f"refused: NDCG@10 {row['ndcg_change_pct']:+.2f}% < -{MAX_NDCG_LOSS_PCT:g}%"
    if row["speedup"] < MIN_SPEEDUP:
        return f"not chosen: {row['speedup']:.2f}x PyTorch < {MIN_SPEEDUP:.2f}x"
    return ""


def measure_backends(encoders: dict[str, object], probe: Probe) -> list[dict]:
    """One row per backend: speed, its ratio to PyTorch, min cosine and NDCG@10 against PyTorch, verdict."""
    from isoadapt.metrics.retrieval import percent_change

    seconds, vectors = time_backends(encoders, probe.texts)
    reference = vectors[REFERENCE]
    base_ndcg = probe_ndcg(probe.split, dict(zip(probe.texts, reference))) if probe.split else None
    rows = []
    for name in encoders:
        ndcg = probe_ndcg(probe.split, dict(zip(probe.texts, vectors[name]))) if probe.split else None
        row = {
            "backend": name,
            "texts_per_s": round(len(probe.texts) / seconds[name], 1),
            "speedup": round(seconds[REFERENCE] / seconds[name], 3),
            "min_cosine": round(min_cosine(vectors[name], reference), 5),
            "ndcg@10": None if ndcg is None else round(ndcg, 4),
            "ndcg_change_pct": None if ndcg is None else round(percent_change(ndcg, base_ndcg) or 0.0, 3),
        }
        row["verdict"] = "reference" if name == REFERENCE else verdict(row) or WITHIN
        rows.append(row)
    return rows


def decide(rows: list[dict]) -> tuple[str, str]:
    """The fastest backend within tolerance (PyTorch when no other is), and why, in one line. The chosen
    row's verdict becomes "chosen"."""
    eligible = [r for r in rows if r["verdict"] in ("reference", WITHIN)]
    best = max(eligible, key=lambda r: r["texts_per_s"])
    others = "; ".join(
        f"{r['backend']} {r['speedup']:.2f}x: {r['verdict']}"
        for r in rows
        if r is not best and r["backend"] != REFERENCE
    )
    if best["backend"] == REFERENCE:
        return REFERENCE, f"no other backend is within tolerance and {MIN_SPEEDUP:.2f}x faster ({others or 'none'})"
    best["verdict"] = "chosen"
    quality = f"min cosine {best['min_cosine']:.4f}"
    if best["ndcg_change_pct"] is not None:
        quality += f", NDCG@10 {best['ndcg_change_pct']:+.2f}%"
    why = f"{best['speedup']:.2f}x PyTorch's speed, {quality} against PyTorch"
    return best["backend"], why + (f" (others: {others})" if others else "")


def measure_choice(encoders: dict[str, object], key: dict, probe: Probe) -> dict:
    """Time and score every installed backend on the probe; the record that is cached and kept with runs."""
    log.info("--encode_backend auto: first use on this CPU and model: timing %s", ", ".join(encoders))
    rows = measure_backends(encoders, probe)
    backend, why = decide(rows)
    return {
        "requested": AUTO,
        "backend": backend,
        "why": why,
        "measured_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "probe": {"source": probe.source, "texts": len(probe.texts), "rounds": ROUNDS},
        "backends": rows,
        "key": key,
    }


def read_choice(path: Path, key: dict) -> dict | None:
    """A cached choice made under the same key, or None (absent, damaged or another key: measure again)."""
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except InputError as err:
        log.warning("%s: unreadable (%s): the backends are measured again", path, err)
        return None
    if not isinstance(record, dict) or record.get("key") != key or record.get("backend") not in BACKENDS:
        log.warning("%s: not a choice for this CPU and model: the backends are measured again", path)
        return None
    wrong = _inconsistent(record, key)
    if wrong:
        log.warning("%s: %s (edited by hand?): the backends are measured again", path, wrong)
        return None
    return record


def _inconsistent(record: dict, key: dict) -> str | None:
    """Why a record's choice does not follow from its own measurements, or None. A hand-edited `backend`
    would encode with one backend while the run records another's speed and quality, and one that is not
    installed would fail to load."""
    rows = record.get("backends")
    if record["backend"] not in key["backends"]:
        return f"it names {record['backend']}, which is not installed"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return "its measurements are malformed"
    if sorted(str(r.get("backend")) for r in rows) != sorted(key["backends"]):
        return "its measurements are not those of the installed backends"
    try:
        fresh = [{**r, "verdict": "reference" if r["backend"] == REFERENCE else verdict(r) or WITHIN} for r in rows]
        chosen, _ = decide(fresh)
    except (KeyError, TypeError, ValueError):
        return "its measurements are malformed"
    if chosen != record["backend"]:
        return f"it names {record['backend']}, but its own measurements choose {chosen}"
    return None


def choose_encoder(build: Callable[[str], object], cache_dir: Path, device: str, probe: Probe | None):
    """The encoder `auto` resolves to, built by `build(backend)`, carrying the record of the choice
    (`backend_choice`). PyTorch is built first: its identity keys the choice and it is the reference."""
    reference = build(REFERENCE)
    if device != "cpu":  # the other backends run on the CPU only
        reference.backend_choice = {"requested": AUTO, "backend": REFERENCE, "why": f"--device {device}: PyTorch only"}
        log.info("--encode_backend auto: torch (--device %s: the other backends run on the CPU only)", device)
        return reference
    key = choice_key(reference.identity, installed_backends())
    path = choice_file(cache_dir, key)
    built = {REFERENCE: reference}
    with _choice_lock(path):  # one process measures at a time: two timing at once would slow each other
        record = read_choice(path, key)
        how = f"chosen {record['measured_utc']} UTC, reused from {path}" if record else f"measured now, saved to {path}"
        if record is None:
            if probe is None:
                raise InputError("--encode_backend auto: no texts to measure the backends on; name a backend instead")
            built.update({b: build(b) for b in key["backends"] if b != REFERENCE})
            record = measure_choice(built, key, probe)
            atomic_write_json(path, record)
    log.info("--encode_backend auto: %s: %s (%s)", record["backend"], record["why"], how)
    chosen = built.get(record["backend"]) or build(record["backend"])
    chosen.backend_choice = {**record, "file": str(path)}
    return chosen


@contextmanager
def _choice_lock(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        lock.acquire()
    except OSError as err:
        raise InputError(f"--cache_dir {path.parent}: cannot write the backend choice there ({err.strerror})") from None
    try:
        yield
    finally:
        lock.release()
