"""The embedding cache (encoding/cache.py) never re-encodes, detects a damaged or foreign shard, and is shared
safely; with the model identity it is keyed by and the encoder's length batches."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from isoadapt.encoding.cache import EmbeddingCache
from isoadapt.errors import InputError


def test_cache_hit_makes_no_encoder_calls(tmp_path, fake_encoder):
    texts = ["alpha beta", "gamma", "alpha beta", "delta"]
    cache = EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity)
    first = cache.get(texts, fake_encoder.encode)
    assert fake_encoder.calls == 1 and fake_encoder.texts_encoded == 3  # duplicates encoded once
    again = cache.get(texts, fake_encoder.encode)
    assert fake_encoder.calls == 1
    reopened = EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity).get(
        list(reversed(texts)), fake_encoder.encode
    )
    assert fake_encoder.calls == 1
    assert np.array_equal(first, again) and np.array_equal(reopened, first[::-1])
    more = cache.get(["gamma", "epsilon"], fake_encoder.encode)
    assert fake_encoder.calls == 2 and fake_encoder.texts_encoded == 4
    assert np.array_equal(more[0], first[1])


def test_cache_is_namespaced_by_encoder_fingerprint(tmp_path, fake_encoder):
    from conftest import FakeEncoder

    other = FakeEncoder(dim=16, seed=1)
    EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity).get(["x"], fake_encoder.encode)
    EmbeddingCache(tmp_path, other.fingerprint, other.identity).get(["x"], other.encode)
    assert other.calls == 1


def _one_shard(tmp_path, encoder, texts):
    cache = EmbeddingCache(tmp_path, encoder.fingerprint, encoder.identity)
    cache.get(texts, encoder.encode)
    return next(cache.folder.glob("*.npy")), next(cache.folder.glob("*.keys.json"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "keys", "reordered keys", "swapped key"])
def test_damaged_cache_is_detected_and_rebuilt(tmp_path, fake_encoder, damage, caplog):
    texts = ["one", "two", "three"]
    vectors_file, keys_file = _one_shard(tmp_path, fake_encoder, texts)
    good = fake_encoder.encode(texts)
    if damage == "truncate":
        vectors_file.write_bytes(vectors_file.read_bytes()[:-20])
    elif damage == "flip":
        data = bytearray(vectors_file.read_bytes())
        data[-3] ^= 0xFF
        vectors_file.write_bytes(bytes(data))
    elif damage == "keys":
        keys_file.write_text("{not json")
    else:  # the vectors intact, the keys that name them changed: every row would answer for another text
        meta = json.loads(keys_file.read_text())
        meta["keys"] = (
            meta["keys"][::-1] if damage == "reordered keys" else [meta["keys"][1], meta["keys"][0], meta["keys"][2]]
        )
        keys_file.write_text(json.dumps(meta))
    calls = fake_encoder.calls
    again = EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity).get(texts, fake_encoder.encode)
    assert fake_encoder.calls == calls + 1  # re-encoded, not read from the damaged shard
    assert np.array_equal(again, good)
    assert "unusable" in caplog.text


def test_shard_of_another_fingerprint_is_not_used(tmp_path, fake_encoder):
    import json

    texts = ["alpha"]
    _, keys_file = _one_shard(tmp_path, fake_encoder, texts)
    meta = json.loads(keys_file.read_text())
    meta["fingerprint"] = "0" * 64
    keys_file.write_text(json.dumps(meta))
    calls = fake_encoder.calls
    EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity).get(texts, fake_encoder.encode)
    assert fake_encoder.calls == calls + 1


def test_two_processes_share_a_cache_without_damage(tmp_path):
    """Four processes encode overlapping texts into one cache at once; every shard stays valid."""
    import subprocess
    import sys

    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from conftest import FakeEncoder\n"
        "from isoadapt.encoding.cache import EmbeddingCache\n"
        "e = FakeEncoder()\n"
        f"c = EmbeddingCache(__import__('pathlib').Path({str(tmp_path)!r}), e.fingerprint, e.identity)\n"
        "for start in range(0, 200, 10):\n"
        "    c.get([f'text {i}' for i in range(start, start + 30)], e.encode)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    from conftest import FakeEncoder

    encoder = FakeEncoder()
    cache = EmbeddingCache(tmp_path, encoder.fingerprint, encoder.identity)
    texts = [f"text {i}" for i in range(220)]
    assert np.array_equal(cache.get(texts, encoder.encode), encoder.encode(texts))
    assert encoder.calls == 1  # only the comparison itself: everything came from the shared cache


def test_a_fully_cached_read_takes_no_lock_so_a_read_only_cache_works(tmp_path, fake_encoder, monkeypatch):
    """Reading needs no write access: only encoding something new takes the writer's lock. (Tests run as root,
    where permission bits do not bind, so the lock itself is made to fail as it would on a read-only cache.)"""
    from filelock import FileLock

    texts = ["one", "two"]
    EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity).get(texts, fake_encoder.encode)

    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", self.lock_file)

    monkeypatch.setattr(FileLock, "acquire", read_only)
    cache = EmbeddingCache(tmp_path, fake_encoder.fingerprint, fake_encoder.identity)
    assert np.array_equal(cache.get(texts, fake_encoder.encode), fake_encoder.encode(texts))
    with pytest.raises(
        InputError, match=r"--cache_dir .*: cannot write there \(Permission denied\), and 1 texts are not cached yet"
    ):
        cache.get(["three"], fake_encoder.encode)


def test_model_identity_follows_the_weights_content_not_their_size_and_time(tmp_path):
    """A local model rewritten in place with the same size and modification time must not keep its old
    fingerprint (it would serve stale cached vectors)."""
    from isoadapt.encoding.offline_models import model_identity

    folder = tmp_path / "model"
    weights = folder / "model.safetensors"
    (folder).mkdir()
    (folder / "modules.json").write_text("[]")
    weights.write_bytes(b"A" * 1000)
    first = model_identity(folder, tmp_path / "cache")["weights_sha256"]
    stat = weights.stat()
    weights.write_bytes(b"B" * 1000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size and weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_identity(folder, tmp_path / "cache")["weights_sha256"] != first
    assert (
        model_identity(folder, tmp_path / "cache")["weights_sha256"]
        == model_identity(folder, tmp_path / "other")["weights_sha256"]
    )


@pytest.mark.parametrize("seed", range(5))
def test_length_batches_cover_every_text_once_within_both_caps(seed):
    """Every index once; each batch at most max_texts texts and max_tokens padded tokens (a text longer
    than the budget alone); batches longest first, so padding stays within a batch's neighbours."""
    from isoadapt.encoding.encoder import length_batches

    lengths = np.random.default_rng(seed).integers(1, 400, size=300).tolist()
    batches = length_batches(lengths, 512, 32)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 32 and (len(batch) * longest <= 512 or len(batch) == 1)
        assert lengths[batch[0]] == longest
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)
    assert length_batches([], 512, 32) == []


def _cheapest_by_enumeration(lengths, max_tokens, max_texts, overhead):
    """The reference: every way to cut the longest-first order into consecutive batches, the cheapest kept."""
    widths = sorted(lengths, reverse=True)
    best = None
    for mask in range(1 << max(len(widths) - 1, 0)):
        cuts = [0, *(i + 1 for i in range(len(widths) - 1) if mask >> i & 1), len(widths)]
        sizes = [(widths[a], b - a) for a, b in zip(cuts, cuts[1:])]
        if any(n > max_texts or (n > 1 and n * w > max_tokens) for w, n in sizes):
            continue
        cost = sum(overhead + n * w for w, n in sizes)
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_batches_cost_the_least_of_every_cut(seed):
    """The batches cost (one overhead per batch plus padded tokens) exactly the cheapest of all 2^(n-1)
    ways to cut the sorted texts, within both caps."""
    from isoadapt.encoding.encoder import length_batches

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, size=int(rng.integers(1, 12))).tolist()
    max_tokens, max_texts, overhead = 120, 5, float(rng.choice([0.5, 10, 32, 200]))
    batches = length_batches(lengths, max_tokens, max_texts, overhead)
    cost = sum(overhead + len(b) * max(lengths[i] for i in b) for b in batches)
    assert cost == pytest.approx(_cheapest_by_enumeration(lengths, max_tokens, max_texts, overhead))


def test_length_batches_split_a_small_call_at_a_length_drop():
    """A served request's 17 texts of 3 to 27 tokens: filling one batch would pad all 17 to 27 tokens
    (459); cut at the drops, the long three and the short rest pad to 81 + 18 + 33 tokens, three passes."""
    from isoadapt.encoding.encoder import length_batches

    lengths = [27, 3, 3, 4, 5, 6, 20, 22, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    batches = length_batches(lengths, 512, 32, overhead=32)
    assert [sorted(lengths[i] for i in b) for b in batches] == [[20, 22, 27], [4, 5, 6], [3] * 11]
