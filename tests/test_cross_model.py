"""A cross-model run (queries on NEW, documents on OLD: tests/cross_model.py) everywhere a run is used: its
export in plain sentence-transformers, `Adapter`, and every integration give the run's vectors on each side,
held to a reference computed without isoadapt (NEW's encode with its prompt, the head's weights in numpy;
OLD's encode for documents)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cosines
from cross_model import DOCUMENTS, QUERIES

pytestmark = pytest.mark.slow


def close(found, expected) -> None:
    assert np.asarray(found).shape == expected.shape
    assert cosines(found, expected).min() >= 0.9999


def test_the_export_loads_in_plain_sentence_transformers_with_each_side_on_its_model(cross_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(cross_model["export"]), device="cpu", local_files_only=True)
    close(model.encode_query(QUERIES), cross_model["expected"]["query"])
    close(model.encode_document(DOCUMENTS), cross_model["expected"]["document"])
    # encode(task=...) routes but, as sentence-transformers does, applies a prompt only when it is named
    close(model.encode(QUERIES, task="query", prompt_name="query"), cross_model["expected"]["query"])
    with pytest.raises(ValueError, match="Could not determine route"):  # no silent default side
        model.encode(QUERIES)
