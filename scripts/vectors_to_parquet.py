"""Write a processed dataset's vectors to parquet, as a user's own pipeline (or an embedding API) would:
queries.parquet and documents.parquet with id, text and vector columns. The vectors come from isoadapt's
embedding cache (encoded once when missing), so this is also how cached vectors leave isoadapt.

    .venv/bin/python scripts/vectors_to_parquet.py --data data/processed/semanlink --out data/vectors \
        --base_model sentence-transformers/all-MiniLM-L6-v2

Ids: the split's own ids for dev/test texts; train-only texts get `train-q<n>` / `train-d<n>`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from isoadapt.data.formats import load_eval, load_train
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.encoder import open_encoder
from isoadapt.encoding.offline_models import ALIASES
from isoadapt.store.apply import MODEL_KEY

DEFAULT_CACHE = Path.home() / ".cache" / "isoadapt"


def texts_by_id(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(queries, documents) of every split, {id: text}; train-only texts get generated ids."""
    queries, documents = {}, {}
    for name in ("dev.json", "test.json"):
        split = load_eval(folder / name)
        queries.update(split.queries)
        documents.update(split.corpus)
    known_q, known_d = set(queries.values()), set(documents.values())
    for example in load_train(folder / "train.json"):
        if example.query not in known_q:
            known_q.add(example.query)
            queries[f"train-q{len(queries)}"] = example.query
        for text in (example.positive, example.negative):
            if text and text not in known_d:
                known_d.add(text)
                documents[f"train-d{len(documents)}"] = text
    return queries, documents


def write(path: Path, items: dict[str, str], vectors: CachedVectors, model: str) -> None:
    ids, texts = list(items), list(items.values())
    array = vectors(texts)  # (n, dim)
    table = pa.table(
        {
            "id": pa.array(ids),
            "text": pa.array(texts),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), array.shape[1]),
        },
        metadata={MODEL_KEY: model},
    )
    pq.write_table(table, path, row_group_size=4096)
    print(f"{path}: {len(ids)} vectors, width {array.shape[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a processed dataset folder (train/dev/test.json)")
    parser.add_argument("--out", required=True, help="folder for queries.parquet and documents.parquet")
    parser.add_argument("--base_model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--cache_dir", default=str(DEFAULT_CACHE))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vectors = CachedVectors(open_encoder(args.base_model, Path(args.cache_dir)), Path(args.cache_dir))
    queries, documents = texts_by_id(Path(args.data))
    model = ALIASES.get(args.base_model, args.base_model)
    write(out / "queries.parquet", queries, vectors, model)
    write(out / "documents.parquet", documents, vectors, model)


if __name__ == "__main__":
    main()
