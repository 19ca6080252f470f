"""`isoadapt apply`: stored vectors through a trained head (or a plan's post-hoc transform), in bulk.

This is how a user re-indexes a corpus after a both-sides adapter, or checks a query-only one, without
the encoder: a parquet file in, a parquet file out, one bounded batch at a time, every other column kept.
Outputs are L2-normalised like the exported model's (runs score by cosine); the document side of a
query-only head is copied unchanged, and the command says so. The output is written to a temp file
beside it and renamed into place, so a failure leaves no half-written file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from isoadapt.data.vector_files import VectorColumns, VectorFile, check_width
from isoadapt.encoding.precomputed import PREFIX
from isoadapt.errors import InputError
from isoadapt.fileio import atomic_path
from isoadapt.head import apply_head, side_head
from isoadapt.metrics.normalize import l2_normalize
from isoadapt.owned_folders import check_output_file, check_replaceable
from isoadapt.progress import progress
from isoadapt.store.run_space import input_width
from isoadapt.training.run_folder import OpenedRun, open_run

log = logging.getLogger(__name__)
APPLY_KIND = "isoadapt-apply"  # parquet metadata that marks an output as ours: --overwrite may replace it
MODEL_KEY = "isoadapt.model"  # parquet metadata: the model whose space the vectors are in
HEAD_KEY = "isoadapt.head_sha256"  # parquet metadata: the head that transformed the vectors


@dataclass
class Applied:
    rows: int
    transformed: bool  # False: a query-only head's documents, copied unchanged
    out_dim: int


def model_of(base_model: str) -> str:
    return base_model.removeprefix(PREFIX)


def check_model(run_dir: Path, run_model: str, file: VectorFile, given: str | None) -> None:
    """A head trained on one provider's vectors must not transform another's (same width or not); a file
    that names no model needs --model, so the run's model is never stamped on vectors of unknown origin."""
    named = given or file.metadata.get(MODEL_KEY)
    if named is None:
        raise InputError(
            f"{file.path}: does not say which model made its vectors (no {MODEL_KEY} metadata); "
            f"pass --model (the run was trained on {run_model!r})"
        )
    if model_of(named) != run_model:
        raise InputError(
            f"{file.path}: vectors from {model_of(named)!r}, but {run_dir} was trained on {run_model!r}; "
            "apply a run trained on the same model's vectors"
        )


def check_side_model(run: OpenedRun, file: VectorFile, given: str | None, side: str | None) -> None:
    """The file's vectors come from the model the run reads on `side` (check_model). A cross-model run reads
    its query model's vectors on the query side and keeps the base model's on the document side: the index
    it was trained against is never re-embedded, so the query model's vectors are refused as documents, and
    the base model's as queries, each with what to give instead."""
    base = model_of(run.config["base_model"])
    if run.query_model is None:
        return check_model(run.folder, base, file, given)
    query = model_of(run.query_model)
    expected = query if side == "query" else base
    named = given or file.metadata.get(MODEL_KEY)
    if named is not None and model_of(named) == base and side == "query":
        raise InputError(
            f"{file.path}: vectors from {base!r}, the base (index) model of the cross-model run {run.folder}; "
            f"its queries are {query!r}'s vectors: give those with --side query (documents pass unchanged)"
        )
    if named is not None and model_of(named) == query and side != "query":
        raise InputError(
            f"{file.path}: vectors from {query!r}, the query model of the cross-model run {run.folder}; its "
            f"documents stay {base!r}'s vectors (the index is not re-embedded): give {base!r}'s document "
            f"vectors, or train a run with --base_model {query} to re-embed the corpus with it"
        )
    check_model(run.folder, expected, file, given)


def check_adaptable(run: OpenedRun) -> None:
    """Stored vectors are the base model's: a run that fine-tuned its encoder reads other vectors."""
    if run.fine_tuned:
        raise InputError(f"--run_dir {run.folder}: fine-tuned its encoder; stored base vectors cannot be adapted")


def check_apply_target(out: Path, source: Path, overwrite: bool) -> None:
    """--out is a new file, or an earlier apply output with --overwrite; never the input itself."""
    check_output_file(out, "--out")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and out.resolve() == source.resolve():
        raise InputError(f"--out {out}: is the input file; write to a new file")
    if not out.exists():
        return
    try:
        kind = (pq.read_schema(out).metadata or {}).get(b"isoadapt.kind", b"").decode()
    except (pa.ArrowException, OSError, UnicodeDecodeError):
        kind = None
    check_replaceable(f"--out {out}", kind, APPLY_KIND, "an apply output", overwrite)


def check_not_applied(file: VectorFile, head_sha256: str) -> None:
    """Vectors this head already transformed must not go through it again (the head applied twice); a
    query-only head's documents, copied unchanged, are still base vectors and may."""
    meta = file.metadata
    if meta.get("isoadapt.kind") == APPLY_KIND and meta.get(HEAD_KEY) == head_sha256:
        if meta.get("isoadapt.normalized") == "true":
            raise InputError(
                f"{file.path}: was written by `isoadapt apply` with this same head (sha256 {head_sha256[:16]}); "
                "apply it to the original vectors"
            )


def _output_schema(file: VectorFile, vector: str, out_dim: int, transformed: bool, meta: dict) -> pa.Schema:
    schema = file.schema
    if transformed:
        index = schema.get_field_index(vector)
        schema = schema.set(index, pa.field(vector, pa.list_(pa.float32(), out_dim)))
    return schema.with_metadata({**(file.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})


def prefetched(items: Iterator):
    """Yield the items while the next one is produced in a background thread: parquet reads, the head's
    matmul and parquet writes release the GIL, so I/O overlaps compute. Errors surface in order."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, None)
        while (item := future.result()) is not None:
            future = pool.submit(next, items, None)
            yield item


def _transform(head: torch.nn.Module, vectors: np.ndarray) -> pa.Array:  # (rows, dim) -> fixed-size lists
    out = l2_normalize(apply_head(head, vectors))  # (rows, out_dim)
    return pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1)), out.shape[1])


def _adapted(file: VectorFile, reads: int, head, schema: pa.Schema, what: str) -> Iterator[pa.RecordBatch]:
    """Each batch of the file with its vectors through `head` (or, when None, as read), in the output's schema;
    every batch is checked against the width the run reads on its side (`reads`)."""
    for batch in file.batches(all_columns=True):
        check_width(batch.where, batch.vectors.shape[1], reads, what)
        table = batch.table
        if head is not None:
            index = table.schema.get_field_index(file.columns.vector)
            table = table.set_column(index, schema.field(index), _transform(head, batch.vectors))
        yield pa.RecordBatch.from_arrays(table.columns, schema=schema)


def apply_run(
    run_dir: Path,
    source: Path,
    out: Path,
    side: str | None = None,
    columns: VectorColumns = VectorColumns(),
    model: str | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Applied:
    """`side` None: the head maps both sides alike; a query-only head needs "query" or "document" (side_head)."""
    run = open_run(run_dir)
    check_adaptable(run)
    head, run_model = side_head(run.head, side, "--side"), model_of(run.config["base_model"])  # None: copied
    file = VectorFile(source, columns)
    check_side_model(run, file, model, side)
    check_not_applied(file, run.head_sha256)
    check_apply_target(out, source, overwrite)
    transformed = head is not None
    reads = input_width(run.head, side)  # a query-only head's documents: the documents' own width
    out_dim = getattr(head, "out_dim", head.dim) if transformed else None
    meta = {"isoadapt.kind": APPLY_KIND, MODEL_KEY: run_model, "isoadapt.run": str(run_dir.resolve())}
    meta |= {
        HEAD_KEY: run.head_sha256,
        "isoadapt.side": side or "both",
        "isoadapt.normalized": str(transformed).lower(),
    }
    schema = _output_schema(file, columns.vector, out_dim, transformed, meta)
    rows = 0
    bar = progress(total=file.rows, desc=f"apply ({side})", unit="vec", unit_scale=True, show=show_progress)
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer, bar:  # the bar closes before an error
        for table in prefetched(_adapted(file, reads, head, schema, f"the head of {run_dir}")):
            writer.write_batch(table)
            rows += table.num_rows
            bar.update(table.num_rows)
    return Applied(rows, transformed, out_dim or reads)
