"""ONNX encoding: the frozen encoder exported locally from its offline folder (torch.onnx) and run by
ONNX Runtime (fp32, or int8 from onnxruntime's dynamic quantisation of the MatMul weights, per channel),
or compiled by OpenVINO from the same fp32 file. Exports are cached by weights hash, like embeddings.

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 while
sentence-transformers 6 needs transformers >= 5; so we export with torch and run with onnxruntime directly.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from isoadapt.errors import InputError
from isoadapt.metrics.normalize import l2_normalize

log = logging.getLogger(__name__)


class _Pooled(torch.nn.Module):
    """Transformer + pooling as one graph: (input_ids, attention_mask) -> sentence embedding (unnormalised)."""

    def __init__(self, transformer: torch.nn.Module, mode: str):
        super().__init__()
        self.transformer, self.mode = transformer, mode

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (b, s, d)
        if self.mode == "cls":
            return tokens[:, 0]
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def pooling_mode(st_model) -> str:
    pooling = next((m for m in st_model if type(m).__name__ == "Pooling"), None)
    mode = getattr(pooling, "pooling_mode", None) or (
        pooling.get_config_dict().get("pooling_mode") if pooling is not None else None
    )
    if mode in ("mean", "cls"):
        return mode
    raise InputError(f"--encode_backend onnx: pooling {mode!r} is not supported (mean or cls only)")


def export_onnx(st_model, weights_sha256: str, cache_dir: Path, backend: str) -> Path:
    """Path of the (cached) ONNX file for this model and backend; exported once."""
    folder = cache_dir / "onnx" / weights_sha256[:24]
    target = folder / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if target.is_file():
            return target
        fp32 = folder / "model.onnx"
        if not fp32.is_file():
            log.info("Exporting the encoder to ONNX (once): %s", fp32)
            module = _Pooled(st_model[0].auto_model, pooling_mode(st_model)).eval()
            sample = st_model.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                path = Path(tmp) / "model.onnx"
                torch.onnx.export(
                    module,
                    (sample["input_ids"], sample["attention_mask"]),
                    str(path),
                    input_names=["input_ids", "attention_mask"],
                    output_names=["embedding"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "embedding": {0: "batch"},
                    },
                    opset_version=17,
                    dynamo=False,
                )
                shutil.move(str(path), fp32)
        if backend == "onnx-int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            log.info("Quantising the ONNX encoder to int8 (once): %s", target)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                path = Path(tmp) / target.name
                quantize_dynamic(
                    str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
                )
                shutil.move(str(path), target)
    return target


class OnnxRunner:
    """Encodes with onnxruntime (or OpenVINO): length-sorted batches, the model's tokenizer and max length,
    its normalisation. Safe to call from several threads at once (onnxruntime's `run` is; OpenVINO gets one
    infer request per thread)."""

    def __init__(self, st_model, onnx_path: Path, normalize: bool, engine: str = "onnxruntime"):
        if engine == "openvino":
            try:
                import openvino as ov
            except ImportError:
                raise InputError(
                    "--encode_backend openvino: the openvino package is not installed; pip install "
                    "'isoadapt[bench]' or openvino"
                ) from None
            compiled = ov.Core().compile_model(str(onnx_path), "CPU")
            # One infer request per thread: calling `compiled` reuses a single request, so two threads (the
            # server's encode workers) would get "Infer Request is busy" or each other's outputs.
            requests = threading.local()

            def run(feeds):
                if not hasattr(requests, "request"):
                    requests.request = compiled.create_infer_request()
                return next(iter(requests.request.infer(feeds).values()))

            self.run = run
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            self.run = lambda feeds: session.run(None, feeds)[0]
        self.tokenizer, self.max_length, self.normalize = st_model.tokenizer, st_model.max_seq_length, normalize

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim), one batch
        """One batch of texts, padded to its longest; the caller picks the batches (Encoder.encode)."""
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        vectors = self.run(
            {
                "input_ids": tokens["input_ids"].astype(np.int64),
                "attention_mask": tokens["attention_mask"].astype(np.int64),
            }
        ).astype(np.float32)
        if self.normalize:
            vectors = l2_normalize(vectors)
        return vectors
