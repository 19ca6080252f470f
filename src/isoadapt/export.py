"""Export a run as a standard SentenceTransformer folder: the base modules, a Dense module carrying the
head, and a final Normalize (the run scores by cosine), so `SentenceTransformer(DIR)` loads it anywhere."""

from __future__ import annotations

from pathlib import Path

import torch

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_directory, read_json
from isoadapt.head import AffineHead, LinearHead, load_head
from isoadapt.models import resolve_model


def head_as_affine(head: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (out, in), bias (out,)) of a linear or post-hoc head."""
    if isinstance(head, (LinearHead, AffineHead)):
        return head.linear.weight.detach().clone(), head.linear.bias.detach().clone()
    raise InputError(f"export: a {head.config()['type']} head is not a single linear map; export supports linear heads and post-hoc transforms")


def export_run(run_dir: Path, out_dir: Path, cache_dir: Path, overwrite: bool = False) -> Path:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise InputError(f"--run_dir {run_dir}: no config.json; not a run folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"--out {out_dir}: already exists and is not empty; pass --overwrite to replace it")
    config = read_json(config_file)["config"]
    fine_tuned = run_dir / "encoder"
    base_folder = fine_tuned if fine_tuned.is_dir() else resolve_model(config["base_model"], cache_dir)
    model = SentenceTransformer(str(base_folder), device="cpu", local_files_only=True)
    head = load_head(run_dir / "head", expected_dim=model.get_embedding_dimension())
    weight, bias = head_as_affine(head)
    dense = Dense(weight.shape[1], weight.shape[0], bias=True, activation_function=torch.nn.Identity(), init_weight=weight, init_bias=bias)
    exported = SentenceTransformer(modules=[*model, dense, Normalize()], device="cpu")
    exported.max_seq_length = model.max_seq_length
    with atomic_directory(out_dir) as staging:
        exported.save(str(staging))
    return out_dir
