"""What a Python caller hands the API, checked before it reaches a tokenizer or NumPy: texts to encode,
vectors to transform. Each refusal is one `InputError` naming the argument, the index and what is wrong
(sentence-transformers would fail deep inside its tokenizer, NumPy with a broadcasting message)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from isoadapt.errors import InputError


def text_problem(item: object) -> str | None:
    """Why `item` is not a text the model can read, or None when it is one."""
    if isinstance(item, str):
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as err:
            return f"holds a lone surrogate at character {err.start} (not valid Unicode text)"
        return None
    if item is None:
        return "is None, not a string"
    if isinstance(item, (bytes, bytearray)):
        return "is bytes; decode it to str first (e.g. .decode('utf-8'))"
    return f"is {type(item).__name__} {item!r:.40}, not a string"


def check_texts(where: str, sentences: object) -> tuple[list[str], bool]:
    """(the texts as a list, whether one bare string was given). A bare string is one text, as
    sentence-transformers' `encode` takes it; any other iterable is a list of texts."""
    if isinstance(sentences, str):
        problem = text_problem(sentences)
        if problem:
            raise InputError(f"{where}: the text {problem}")
        return [sentences], True
    if isinstance(sentences, (bytes, bytearray, dict)) or not isinstance(sentences, Iterable):
        raise InputError(f"{where}: expected a string or a list of strings, got {type(sentences).__name__}")
    texts = list(sentences)
    for index, item in enumerate(texts):
        problem = text_problem(item)
        if problem:
            raise InputError(f"{where}[{index}]: {problem}")
    return texts, False


def _ragged_row(rows: object) -> str | None:
    """For a list of rows that NumPy refused: which row's length differs from the first's."""
    try:
        lengths = [len(row) for row in rows]  # type: ignore[union-attr]
    except TypeError:
        return None
    for index, length in enumerate(lengths):
        if length != lengths[0]:
            return f"row {index} has {length} values, row 0 has {lengths[0]}"
    return None


def check_vectors(where: str, vectors: object, dim: int, reads: str = "") -> tuple[np.ndarray, bool]:
    """(the vectors as a float32 matrix (n, dim), whether one vector (dim,) was given). Refuses what is not
    numbers, ragged rows, another width, NaN or infinity, and all-zero rows: a zero vector has no direction,
    so no cosine (the head would map it to its bias, a unit vector that means nothing; `isoadapt search
    --vector` refuses zeros too). `reads` says whose vectors are expected, for the width's message."""
    if isinstance(vectors, (str, bytes)):
        raise InputError(f"{where}: expected numbers (an array (n, {dim}) or one vector ({dim},)), got a string")
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        ragged = _ragged_row(vectors)
        reason = f"rows of different lengths ({ragged})" if ragged else "not an array of numbers"
        raise InputError(f"{where}: {reason}; expected an array (n, {dim})") from None
    single = array.ndim == 1
    matrix = array[None, :] if single else array
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        expected = f"{reads} (shape (n, {dim}))" if reads else f"expected (n, {dim}) or ({dim},)"
        raise InputError(f"{where}: vectors of shape {array.shape}; {expected}")
    if not np.isfinite(matrix).all():
        raise InputError(f"{where}: the vectors hold NaN or infinite values")
    zero = np.flatnonzero(~matrix.any(axis=1))
    if len(zero):
        raise InputError(f"{where}: row {int(zero[0])} is all zeros; a cosine needs a direction")
    return matrix, single
