"""`isoadapt encode`: fill the embedding cache on purpose, before training, locally or on Ray.

Encoding is the cost that grows with the corpus; everything after it reads the cache. This collects every
text of a processed dataset (or a parquet / JSONL text column), skips the ones already cached (so an
interrupted encode resumes from the shards it wrote), and encodes the rest: in this process, or on a pool
of Ray actors (`ray_encode.py`). Either way the cache is written by this process alone, in the cache's own
format, so `train` and `experiment` read the result unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from isoadapt.data.formats import load_eval, load_sts, load_train
from isoadapt.data.layout import DatasetFolder, is_sts_file
from isoadapt.data.readers import check_text, read_jsonl
from isoadapt.encoding.backend_choice import AUTO, Probe, probe_from_split, probe_from_texts
from isoadapt.encoding.cache import EmbeddingCache
from isoadapt.encoding.encoder import open_encoder
from isoadapt.errors import InputError, describe

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EncoderSpec:
    """How to build the encoder; picklable, so each Ray actor builds its own copy of the model."""

    base_model: str
    cache_dir: str
    backend: str = "torch"
    batch_size: int = 32
    query_prompt: str | None = None  # None: the model's own
    document_prompt: str | None = None

    def __call__(self, probe: Probe | None = None):
        return open_encoder(
            self.base_model,
            Path(self.cache_dir),
            batch_size=self.batch_size,
            show_progress=False,
            backend=self.backend,
            probe=probe,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
        )


def auto_probe(spec: EncoderSpec, data: Path, texts: list[str]) -> Probe | None:
    """What `--encode_backend auto` measures on: the dataset's dev.json when --data is a processed dataset
    holding one, else the first texts to encode (then cosine alone judges quality). None for a named backend."""
    if spec.backend != AUTO:
        return None
    dev = DatasetFolder(data).dev
    return probe_from_split(load_eval(dev), str(dev)) if dev.is_file() else probe_from_texts(texts, str(data))


def _json_texts(path: Path) -> list[str]:
    """A processed file of any kind: a split, train pairs or STS pairs."""
    with path.open("rb") as handle:
        first = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"{":
        split = load_eval(path)
        return [*split.queries.values(), *split.corpus.values()]
    if is_sts_file(path):
        pairs = load_sts(path)
        return pairs.sentence1 + pairs.sentence2
    return [t for e in load_train(path) for t in (e.query, e.positive, e.negative) if t]


def _parquet_texts(path: Path, column: str) -> list[str]:
    import pyarrow as pa  # here: the command line imports this module (ENGINES) and starts without pyarrow
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"--data {path}: not a readable parquet file ({describe(err)})") from None
    if column not in file.schema_arrow.names:
        raise InputError(f"{path}: no column {column!r} (columns: {', '.join(file.schema_arrow.names)})")
    texts = []
    for group in range(file.num_row_groups):
        for batch in file.iter_batches(row_groups=[group], columns=[column]):
            start = len(texts)
            texts += [
                check_text(f"{path}: row group {group}", f"row {start + i}", column, v)
                for i, v in enumerate(batch.column(0).to_pylist())
            ]
    return texts


def collect_texts(data: Path, text_column: str = "text") -> list[str]:
    """Every distinct text to encode, in first-seen order."""
    if data.is_dir():
        files = DatasetFolder(data).text_files()
        if not files:
            raise InputError(f"--data {data}: no train.json, dev.json or test.json; not a processed dataset")
        texts = [t for f in files for t in _json_texts(f)]
    elif not data.is_file():
        raise InputError(f"--data {data}: no such file or folder")
    elif data.suffix == ".parquet":
        texts = _parquet_texts(data, text_column)
    elif data.suffix == ".jsonl":
        texts = [check_text(data, f"line {n}", text_column, r.get(text_column)) for n, r in read_jsonl(data)]
    elif data.suffix == ".json":
        texts = _json_texts(data)
    else:
        raise InputError(f"--data {data}: expected a processed dataset folder, a .json, .jsonl or .parquet file")
    return list(dict.fromkeys(texts))


def encode_into_cache(
    texts: list[str],
    spec,
    cache_dir: Path,
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    probe: Probe | None = None,
) -> dict:
    """Encode the texts the cache lacks; `spec` builds an encoder (here, and in every Ray actor). `probe`:
    what `--encode_backend auto` measures on, when it has to. With prompts every text is cached on both
    sides (prompted as a query and as a document), since a text column does not say which it is."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine}: expected one of {list(ENGINES)}")
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    encoder = spec(probe)
    spec = replace(spec, backend=encoder.backend)  # Ray actors build what `auto` resolved to, never `auto` again
    cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.identity)
    texts = encoder.prompts.both_sides(texts) if encoder.prompts else texts
    missing = cache.missing(texts)
    summary = {"texts": len(texts), "cached_before": len(texts) - len(missing), "encoded": len(missing)}
    if missing and engine == "local":
        cache.ensure(missing, _with_progress(encoder))
    elif missing:
        from isoadapt.encoding.ray_encode import encode_on_ray

        del encoder  # the actors load their own copies; the driver only writes the cache
        encode_on_ray(missing, spec, cache, workers, ray_address)
    summary["cache"] = str(cache.folder)
    return summary


def _with_progress(encoder):
    encoder.show_progress = True
    return encoder.encode


def format_summary(summary: dict, engine: str) -> str:
    return (
        f"encoded {summary['encoded']} texts ({summary['cached_before']} of {summary['texts']} were cached) "
        f"with the {engine} engine -> {summary['cache']}"
    )
