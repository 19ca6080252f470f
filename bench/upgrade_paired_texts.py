"""Does the label-free map (issue 27) keep more of the full re-embed with more paired texts? Fits the closed
forms (training/alignment.py) on three paired sets and scores the mapped test queries against the old
model's test corpus, both directions, from the two models' cached vectors only (no model is loaded; run the
upgrade plan first so both caches hold every Semanlink text):

    .venv/bin/python bench/upgrade_paired_texts.py [--data data/processed] [--cache_dir ~/.cache/isoadapt]

Paired sets: `train` = the plan's (train queries and positives, deduplicated), `queries` = the train queries
only, `all` = every text both caches hold except the test queries (adds STS-B sentences, dev and probe texts
and the test corpus: the issue names the corpus as paired texts)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from isoadapt.encoding.cache import EmbeddingCache, text_key
from isoadapt.metrics.retrieval import exact_search, retrieval_scores
from isoadapt.training.alignment import least_squares_map, procrustes_map

MODELS = {"mpnet": "0770a63a31c08f2bdc21d39d", "MiniLM": "0df9f62ad2db36cc940cea6a"}  # cache folders
SPLITS = ["dev", "test", "probe_arxiv", "probe_titles", "probe_documents"]


def open_cache(root: Path, folder: str) -> EmbeddingCache:
    identity_file = root / "embeddings" / folder / "identity.json"
    if not identity_file.is_file():
        raise SystemExit(f"{identity_file}: no such cache (this machine's shipped models, torch backend)")
    identity = json.loads(identity_file.read_text())
    return EmbeddingCache(root, identity["fingerprint"], identity["identity"], create=False)


def vectors(cache: EmbeddingCache, texts: list[str]) -> np.ndarray:
    def missing(texts):
        raise SystemExit(f"{len(texts)} texts are not cached for {cache.identity['name']}: run the upgrade plan first")

    return cache.get(texts, missing)


def paired_sets(data: Path, caches: list[EmbeddingCache]) -> dict[str, list[str]]:
    train = json.loads((data / "semanlink/train.json").read_text())
    test_queries = set(json.loads((data / "semanlink/test.json").read_text())["queries"].values())
    plan = list(dict.fromkeys([p["query"] for p in train] + [p["positive"] for p in train]))
    texts = set(plan)
    for name in SPLITS:
        split = json.loads((data / f"semanlink/{name}.json").read_text())
        texts |= set(split["corpus"].values()) | set(split["queries"].values())
    for name in ["sts_train", "sts_dev", "sts_test"]:
        for pair in json.loads((data / f"stsb/{name}.json").read_text()):
            texts |= {pair["sentence1"], pair["sentence2"]}
    held = [t for t in sorted(texts - test_queries) if all(text_key(t) in c for c in caches)]
    return {"train": plan, "queries": list(dict.fromkeys(p["query"] for p in train)), "all": held}


def split_scorer(split: dict, doc_vectors: np.ndarray):
    """NDCG@10 of query vectors (one row per query, the split's order) against `doc_vectors` (the split's
    corpus, in its order, by whichever model the row scores with)."""
    qids, dids = list(split["queries"]), list(split["corpus"])

    def ndcg(query_vectors: np.ndarray) -> float:
        run = exact_search(query_vectors.astype(np.float32), doc_vectors, qids, dids, top_k=100)
        return retrieval_scores(split["qrels"], run)[0]["ndcg@10"]

    return ndcg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    parser.add_argument("--cache_dir", type=Path, default=Path.home() / ".cache/isoadapt")
    args = parser.parse_args()
    caches = {name: open_cache(args.cache_dir, folder) for name, folder in MODELS.items()}
    test = json.loads((args.data / "semanlink/test.json").read_text())
    queries, docs = list(test["queries"].values()), list(test["corpus"].values())
    sets = paired_sets(args.data, list(caches.values()))

    for old, new in [("mpnet", "MiniLM"), ("MiniLM", "mpnet")]:
        reembed = split_scorer(test, vectors(caches[new], docs))(vectors(caches[new], queries))
        print(f"{old} index, {new} queries; the full re-embed ({new} both sides): {reembed:.4f}")
        for label, paired in sets.items():
            for fit in (procrustes_map, least_squares_map):
                weight, bias = fit(vectors(caches[new], paired), vectors(caches[old], paired))
                score = split_scorer(test, vectors(caches[old], docs))(vectors(caches[new], queries) @ weight + bias)
                share = f"{score:.4f} ({score / reembed:.1%})"
                print(f"  {fit.__name__:18} paired {label:8} {len(paired):6d} texts: {share}")


if __name__ == "__main__":
    main()
