"""Parquet files of precomputed vectors: an id column, a vector column (fixed-size list or list of
floats) and an optional text column. Read with pyarrow one row group at a time, in bounded batches, so a
10M-vector file is never loaded whole. Every check names the file, the row group and the row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from isoadapt.data.readers import check_id, check_text
from isoadapt.errors import InputError

BATCH_ROWS = 65_536  # rows read at once: 192 MiB of float32 at width 768, whatever the file's row groups


@dataclass(frozen=True)
class VectorColumns:
    """The column names; the text column is used when the file has it."""

    id: str = "id"
    vector: str = "vector"
    text: str = "text"


@dataclass
class VectorBatch:
    ids: list[str]
    texts: list[str] | None  # None: the file has no text column
    vectors: np.ndarray  # (rows, dim) float32, every value finite
    table: pa.RecordBatch  # every column of these rows, as read (apply keeps the ones it does not change)
    where: str  # "FILE: row group G"
    first_row: int  # the file row of the batch's first row


def _is_float_list(kind: pa.DataType) -> bool:
    lists = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    return lists and pa.types.is_floating(kind.value_type)


class VectorFile:
    """One parquet file of vectors, its schema checked on open; `batches()` checks every row it yields."""

    def __init__(self, path: Path, columns: VectorColumns = VectorColumns(), flag: str = "--vectors"):
        self.path, self.columns = Path(path), columns
        if not self.path.is_file():
            raise InputError(f"{flag} {path}: file not found")
        try:
            self.file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{path}: not a readable parquet file ({err})") from None
        self.schema = self.file.schema_arrow
        self._check_schema()
        self.has_text = columns.text in self.schema.names
        self.rows = self.file.metadata.num_rows

    def _check_schema(self) -> None:
        names, c = self.schema.names, self.columns
        for name in (c.id, c.vector):
            if name not in names:
                raise InputError(f"{self.path}: no column {name!r} (columns: {', '.join(names)})")
        id_type, vector_type = self.schema.field(c.id).type, self.schema.field(c.vector).type
        if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type) or pa.types.is_integer(id_type)):
            raise InputError(f"{self.path}: column {c.id!r} is {id_type}; ids must be strings or integers")
        if not _is_float_list(vector_type):
            raise InputError(
                f"{self.path}: column {c.vector!r} is {vector_type}; vectors must be a (fixed-size) list of floats"
            )
        if c.text in names:
            text_type = self.schema.field(c.text).type
            if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
                raise InputError(f"{self.path}: column {c.text!r} is {text_type}; texts must be strings")

    @property
    def metadata(self) -> dict[str, str]:
        raw = self.schema.metadata or {}
        return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}

    def batches(self, all_columns: bool = False) -> Iterator[VectorBatch]:
        """Checked batches in file order; ids are unique across the file (the one thing kept per row:
        about 80 bytes per id, while vectors stay bounded by BATCH_ROWS)."""
        c = self.columns
        read = None if all_columns else [c.id, c.vector, *([c.text] if self.has_text else [])]
        first_row, seen = 0, set()
        for group in range(self.file.num_row_groups):
            where = f"{self.path}: row group {group}"
            for batch in self.file.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=read):
                yield VectorBatch(
                    self._ids(batch, where, first_row, seen),
                    self._texts(batch, where, first_row) if self.has_text else None,
                    self._vectors(batch, where, first_row),
                    batch,
                    where,
                    first_row,
                )
                first_row += batch.num_rows

    def _ids(self, batch: pa.RecordBatch, where: str, first_row: int, seen: set[str]) -> list[str]:
        ids = batch.column(self.columns.id)
        if ids.null_count:
            raise InputError(f"{where}, row {first_row + _first(ids.is_null())}: the id is null")
        values = [str(v) for v in ids.to_pylist()]
        empty = next((i for i, v in enumerate(values) if not v.strip()), None)
        if empty is not None:
            raise InputError(f"{where}, row {first_row + empty}: the id is empty")
        for row, item_id in enumerate(values):
            check_id(f"{where}, row {first_row + row}", "id", item_id)
            if item_id in seen:
                raise InputError(f"{where}, row {first_row + row}: duplicate id {item_id!r}")
            seen.add(item_id)
        return values

    def _texts(self, batch: pa.RecordBatch, where: str, first_row: int) -> list[str]:
        values = batch.column(self.columns.text).to_pylist()
        return [check_text(where, f"row {first_row + i}", self.columns.text, v) for i, v in enumerate(values)]

    def _vectors(self, batch: pa.RecordBatch, where: str, first_row: int) -> np.ndarray:  # (rows, dim)
        column = batch.column(self.columns.vector)
        if column.null_count:
            raise InputError(f"{where}, row {first_row + _first(column.is_null())}: the vector is null")
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InputError(
                f"{where}, row {first_row + row}: vector has {lengths[row]} values, earlier rows {lengths[0]} "
                "(ragged vectors: one width throughout)"
            )
        values = column.flatten()
        if values.null_count:
            raise InputError(f"{where}: a vector holds a null value")
        dim = int(lengths[0]) if len(lengths) else 0
        if len(lengths) and dim == 0:
            raise InputError(f"{where}, row {first_row}: the vector is empty")
        # a writable copy: arrow's buffers are read-only, and torch refuses to wrap those without a warning
        vectors = np.array(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(lengths), dim)
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InputError(
                f"{where}, row {first_row + row}: the vector holds NaN or infinity (or a float32 overflow)"
            )
        return vectors


def _first(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def check_width(where: str, dim: int, expected: int | None, what: str) -> None:
    if expected is not None and dim != expected:
        raise InputError(f"{where}: vectors have {dim} values, but {what} has {expected}")
