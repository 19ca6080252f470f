"""How close mpnet's fp32 encoding comes to this machine's matmul rate, and what each lever changes.

FLOPs are counted from the model's shapes for the batches actually run (padded tokens included: that is
what the CPU computes): per token and layer 8·H² (Q, K, V, output projections) + 4·H·I (feed-forward)
+ 4·S·H (attention scores and mix, S the padded length), times L layers. The matmul rate is a
(4096 x H) @ (H x I) float32 product timed in the same run and thread setting. Levers: sentence-
transformers' default encode, our own inference loop with length-bucketed (sorted) or unsorted batches,
batch size, torch threads, OpenVINO on the fp32 ONNX export, and OpenVINO after NNCF int8 weight
compression (speed and cosine to fp32; NDCG needs the full corpus, see bench/encode_backends.py).

    .venv/bin/python bench/encode_efficiency.py [--texts 256] [--base_model sentence-transformers/all-mpnet-base-v2]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isoadapt.data.formats import load_eval  # noqa: E402
from isoadapt.encoding.encoder import TOKEN_BUDGET, Encoder, length_batches  # noqa: E402
from isoadapt.encoding.offline_models import MPNET  # noqa: E402
from isoadapt.training.config import DEFAULT_CACHE_DIR  # noqa: E402


def matmul_rate(hidden: int, inner: int, seconds: float = 3.0) -> float:
    a, b = torch.randn(4096, hidden), torch.randn(hidden, inner)
    a @ b  # warm-up
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        runs += 1
    return runs * 2 * 4096 * hidden * inner / (time.perf_counter() - started)


class FlopCounter:
    def __init__(self, model):
        config = model[0].auto_model.config
        self.layers, self.hidden, self.inner = config.num_hidden_layers, config.hidden_size, config.intermediate_size

    def flops(self, batches: list[list[int]]) -> float:
        """FLOPs of running these batches (token lengths per batch), each padded to its longest text."""
        per_token = 8 * self.hidden**2 + 4 * self.hidden * self.inner
        return sum(self.layers * len(b) * max(b) * (per_token + 4 * max(b) * self.hidden) for b in batches)


def fixed_batches(lengths: list[int], order, batch: int) -> list[list[int]]:
    """Token lengths cut into fixed-size batches in the given order of texts."""
    ordered = [lengths[i] for i in order]
    return [ordered[start : start + batch] for start in range(0, len(ordered), batch)]


def by_characters(texts: list[str]):
    """sentence-transformers' order within one encode call: longest text in characters first."""
    return np.argsort([-len(t) for t in texts], kind="stable")


@torch.inference_mode()
def own_loop(model, texts: list[str], batch: int, sort: bool) -> np.ndarray:
    """Tokenise and run the modules ourselves: sorted = length-bucketed batches (little padding)."""
    order = by_characters(texts) if sort else np.arange(len(texts))
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(texts), batch):
        picked = order[start : start + batch]
        features = model.preprocess([texts[i] for i in picked])
        out[picked] = model(features)["sentence_embedding"].numpy()
    return out


def timed(encode) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    vectors = encode()
    return vectors, time.perf_counter() - started


def nncf_int8(encoder: Encoder):
    """OpenVINO's own int8 path: NNCF weight compression of the fp32 ONNX export, compiled for the CPU."""
    import nncf
    import openvino as ov

    onnx_file = Path(DEFAULT_CACHE_DIR) / "onnx" / encoder.identity["weights_sha256"][:24] / "model.onnx"
    core = ov.Core()
    model = core.read_model(str(onnx_file))  # written by the openvino row just before
    compressed = core.compile_model(nncf.compress_weights(model), "CPU")
    return lambda feeds: next(iter(compressed(feeds).values()))


def nncf_ptq(encoder: Encoder, calibration: list[str]):
    """OpenVINO int8 weights and activations: NNCF post-training quantization, calibrated on texts that
    are not the measured ones (transformer preset: the attention softmax and norms stay in float)."""
    import nncf
    import openvino as ov

    onnx_file = Path(DEFAULT_CACHE_DIR) / "onnx" / encoder.identity["weights_sha256"][:24] / "model.onnx"
    core = ov.Core()
    tokenizer, max_length = encoder.model.tokenizer, encoder.model.max_seq_length
    feeds = []
    for start in range(0, len(calibration), 16):
        tokens = tokenizer(
            calibration[start : start + 16], padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds.append({k: tokens[k].astype(np.int64) for k in ("input_ids", "attention_mask")})
    quantized = nncf.quantize(
        core.read_model(str(onnx_file)),
        nncf.Dataset(feeds),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(feeds),
    )
    compiled = core.compile_model(quantized, "CPU")
    return lambda feeds: next(iter(compiled(feeds).values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MPNET)
    parser.add_argument("--data", default="data/processed/semanlink/test.json")
    parser.add_argument("--texts", type=int, default=256)
    args = parser.parse_args()
    split = load_eval(args.data)
    texts = list(split.queries.values()) + list(split.corpus.values())
    whole_split = list(texts)
    random.Random(0).shuffle(texts)
    texts, calibration = texts[: args.texts], texts[args.texts : args.texts + 128]
    encoder = Encoder(args.base_model, DEFAULT_CACHE_DIR, show_progress=False)
    model = encoder.model.eval()
    counter = FlopCounter(model)
    lengths = encoder.token_lengths(texts)
    threads = torch.get_num_threads()
    peak = matmul_rate(counter.hidden, counter.inner)
    print(f"{args.base_model}: {len(texts)} texts, mean {np.mean(lengths):.0f} tokens, torch threads {threads}")
    print(f"matmul rate (4096x{counter.hidden} @ {counter.hidden}x{counter.inner}, fp32): {peak / 1e9:.1f} GFLOP/s")
    useful = counter.flops([[n] for n in lengths])  # one text per batch pads nothing: the texts' own work
    print(f"{'lever':<44}{'texts/s':>9}{'GFLOP/s':>9}{'of matmul':>10}{'useful':>8}{'min cos':>9}")
    own_loop(model, texts[:16], 16, True)  # warm-up
    reference, _ = timed(lambda: own_loop(model, texts, 32, True))

    def row(label: str, vectors, seconds: float, flops: float, against: float = peak) -> float:
        cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        rate = flops / seconds
        print(
            f"{label:<44}{len(texts) / seconds:>9.1f}{rate / 1e9:>9.1f}{rate / against:>10.0%}"
            f"{useful / seconds / against:>8.0%}{cosine.min():>9.5f}"
        )
        return useful / seconds / against

    st_batches = counter.flops(fixed_batches(lengths, by_characters(texts), 32))
    vectors, s = timed(lambda: model.encode(texts, batch_size=32, convert_to_numpy=True))
    default = row("sentence-transformers encode (batch 32)", vectors, s, st_batches)
    budget = [[lengths[i] for i in b] for b in length_batches(lengths, TOKEN_BUDGET, 32)]
    vectors, s = timed(lambda: encoder.encode(texts))
    ours = row(f"isoadapt encode (<= 32 texts, {TOKEN_BUDGET} tokens)", vectors, s, counter.flops(budget))
    for batch in (16, 32, 64):
        vectors, s = timed(lambda b=batch: own_loop(model, texts, b, True))
        row(
            f"own loop, length-bucketed, batch {batch}",
            vectors,
            s,
            st_batches if batch == 32 else counter.flops(fixed_batches(lengths, by_characters(texts), batch)),
        )
    vectors, s = timed(lambda: own_loop(model, texts, 32, False))
    row("own loop, unsorted, batch 32", vectors, s, counter.flops(fixed_batches(lengths, range(len(texts)), 32)))
    torch.set_num_threads(1)
    vectors, s = timed(lambda: own_loop(model, texts, 32, True))
    one_core = matmul_rate(counter.hidden, counter.inner)
    row("own loop, bucketed, batch 32, 1 thread", vectors, s, st_batches, one_core)
    torch.set_num_threads(threads)
    try:
        openvino = Encoder(args.base_model, DEFAULT_CACHE_DIR, show_progress=False, backend="openvino")
        openvino.encode(texts[:16])
        vectors, s = timed(lambda: openvino.encode(texts))
        row("OpenVINO fp32 (ONNX export), token budget", vectors, s, counter.flops(budget))
        openvino.runner.run = nncf_int8(openvino)
        openvino.encode(texts[:16])
        vectors, s = timed(lambda: openvino.encode(texts))
        row("OpenVINO + NNCF int8 weights, token budget", vectors, s, counter.flops(budget))
        openvino.runner.run = nncf_ptq(openvino, calibration)
        openvino.encode(texts[:16])
        vectors, s = timed(lambda: openvino.encode(texts))
        row("OpenVINO + NNCF int8 PTQ, token budget", vectors, s, counter.flops(budget))
    except Exception as err:  # openvino or nncf missing: the torch rows still stand
        print(f"OpenVINO rows skipped: {err}")
    whole = encoder.token_lengths(whole_split)  # a sample pads more than a whole call: sorted neighbours differ more
    own_work = counter.flops([[n] for n in whole])
    print(
        f"padding on the whole split ({len(whole)} texts), computed FLOPs / the texts' own: sentence-transformers "
        f"{counter.flops(fixed_batches(whole, by_characters(whole_split), 32)) / own_work:.2f}x, isoadapt "
        f"{counter.flops([[whole[i] for i in b] for b in length_batches(whole, TOKEN_BUDGET, 32)]) / own_work:.2f}x"
    )
    print(f"(the 1-thread row is against the 1-thread matmul rate, {one_core / 1e9:.1f} GFLOP/s)")
    print("GFLOP/s counts padded tokens (what the CPU computes); `useful` counts the texts' own tokens only")
    print(
        f"headline: useful tokens at {default:.0%} of the matmul rate with sentence-transformers' default, "
        f"{ours:.0%} with isoadapt's token-budget batches: {ours / default:.2f}x texts/s (target >= 70%)"
    )


if __name__ == "__main__":
    main()
