"""encoding/encoder.py's CachedFirst: the encoder a Ray trial sees. It answers the cache's questions from
the driver's description and builds the model only for a missing text, refusing a model that is not the
one the description names."""

from __future__ import annotations

import pytest

from isoadapt.encoding.encoder import CachedFirst, describe_encoder
from isoadapt.errors import InputError

from conftest import FakeEncoder


def test_the_model_is_built_once_and_only_when_asked_to_encode():
    built = []

    def build():
        built.append(1)
        return FakeEncoder()

    lazy = CachedFirst(describe_encoder(FakeEncoder()), build)
    assert lazy.fingerprint == FakeEncoder().fingerprint and lazy.dim == 16 and built == []
    assert lazy.encode(["a"]).shape == (1, 16) and lazy.encode(["b"]).shape == (1, 16)
    assert built == [1]


def test_a_model_other_than_the_described_one_is_refused():
    lazy = CachedFirst(describe_encoder(FakeEncoder(seed=0)), lambda: FakeEncoder(seed=1))
    with pytest.raises(InputError, match="is not the one that encoded the plan"):
        lazy.encode(["a"])
