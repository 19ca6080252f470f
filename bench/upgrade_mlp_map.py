"""Does a residual-MLP map (Drift-Adapter, arXiv 2509.23471) keep >= 95% of the full re-embed where the linear
label-free maps do not (issue 27)? map(x) = P x + b + MLP(x): P, b the orthogonal-Procrustes fit (kept fixed),
MLP = Linear(d_new, h) -> GELU -> Linear(h, d_old) with its last layer zero, so training starts at Procrustes.
Trained on paired texts only (no label) with Adam (lr 1e-3, batch 256) on a cosine or MSE objective; after each
epoch the mapped dev queries are scored against the old model's dev corpus, and the best epoch (0 = Procrustes
itself) and the best h are kept ON DEV; test is only reported. Cached vectors only, no model is loaded:

    OMP_NUM_THREADS=1 .venv/bin/python bench/upgrade_mlp_map.py [--epochs 50] [--patience 10] [--seeds 0 1 2]

Also prints two references that are NOT selectable maps: the old model on both sides (a perfect label-free
map reproduces it exactly) and an ORACLE, Procrustes / least squares fitted on the test queries themselves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from isoadapt.training.alignment import least_squares_map, procrustes_map

# bench/ is on sys.path when this file is run as a script
from upgrade_paired_texts import MODELS, open_cache, paired_sets, split_scorer, vectors


class ResidualMap(torch.nn.Module):
    """P x + b + MLP(x); P, b fixed buffers (the Procrustes fit), the MLP's last layer starts at zero."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, hidden: int):
        super().__init__()
        self.register_buffer("weight", torch.from_numpy(weight.astype(np.float32)))  # (d_new, d_old)
        self.register_buffer("bias", torch.from_numpy(bias.astype(np.float32)))  # (d_old,)
        d_new, d_old = weight.shape
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d_new, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, d_old))
        torch.nn.init.zeros_(self.mlp[2].weight)
        torch.nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias + self.mlp(x)  # (batch, d_old)


def objective(kind: str, mapped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "cosine":
        return 1 - torch.nn.functional.cosine_similarity(mapped, target).mean()
    return torch.nn.functional.mse_loss(mapped, target)


def mean_cosine(vectors: np.ndarray) -> float:
    """Mean cosine between two different rows: how much the vectors share one direction (lower = more spread)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    total = unit.sum(axis=0)
    return float((total @ total - len(unit)) / (len(unit) * (len(unit) - 1)))


SELECTIONS = ("any epoch", "trained, epoch >= 1")  # epoch 0 is Procrustes itself


def train_selected(args, fit, paired_new, paired_old, dev_new, dev_ndcg, kind: str, seed: int) -> dict:
    """Every h, up to args.epochs epochs each (stopped when dev has not improved for args.patience epochs): for
    each selection, the (dev NDCG@10, h, epoch, state) with the best dev NDCG@10."""
    best = {name: (-1.0, None, None, None) for name in SELECTIONS}
    x, y = torch.from_numpy(paired_new), torch.from_numpy(paired_old)
    dev = torch.from_numpy(dev_new)
    for hidden in args.hidden:
        torch.manual_seed(seed)
        model = ResidualMap(*fit, hidden)
        optimiser = torch.optim.Adam(model.mlp.parameters(), lr=1e-3)
        best_here, best_epoch = -1.0, 0
        for epoch in range(args.epochs + 1):
            if epoch:
                model.train()
                for rows in torch.randperm(len(x)).split(256):
                    optimiser.zero_grad()
                    objective(kind, model(x[rows]), y[rows]).backward()
                    optimiser.step()
            with torch.no_grad():
                score = dev_ndcg(model.eval()(dev).numpy())
            if score > best_here:
                best_here, best_epoch = score, epoch
            for name in SELECTIONS[: 1 + (epoch > 0)]:
                if score > best[name][0]:
                    best[name] = (score, hidden, epoch, {k: v.clone() for k, v in model.state_dict().items()})
            if epoch - best_epoch >= args.patience:
                break
    return best


def mlp_rows(args, fit, paired_new, paired_old, dev_new, dev_ndcg, test_new, test_ndcg, reembed, label) -> None:
    """One printed row per objective and selection: test NDCG@10 of the dev-selected state, 3 seeds."""
    for kind in args.objectives:
        rows = {name: ([], [], []) for name in SELECTIONS}
        for seed in args.seeds:
            best = train_selected(args, fit, paired_new, paired_old, dev_new, dev_ndcg, kind, seed)
            for name, (dev, hidden, epoch, state) in best.items():
                model = ResidualMap(*fit, hidden)
                model.load_state_dict(state)
                with torch.no_grad():
                    mapped = model.eval()(torch.from_numpy(test_new)).numpy()
                rows[name][0].append(test_ndcg(mapped))
                rows[name][1].append(mean_cosine(mapped))
                rows[name][2].append(f"h{hidden}/e{epoch}/dev {dev:.4f}")
        for name, (scores, cosines, picks) in rows.items():
            mean, spread = float(np.mean(scores)), float(np.std(scores))
            print(
                f"  residual MLP, {kind:6}, paired {label}, {name:19}: {mean:.4f} ± {spread:.4f} "
                f"({mean / reembed:.1%}), mean cos {np.mean(cosines):.3f}; selected on dev: {', '.join(picks)}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/processed"))
    parser.add_argument("--cache_dir", type=Path, default=Path.home() / ".cache/isoadapt")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--patience", type=int, default=10, help="epochs without a better dev score before stopping")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objectives", nargs="+", default=["cosine", "mse"], choices=["cosine", "mse"])
    parser.add_argument("--sets", nargs="+", default=["train", "all"], choices=["train", "all"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    caches = {name: open_cache(args.cache_dir, folder) for name, folder in MODELS.items()}
    splits = {name: json.loads((args.data / f"semanlink/{name}.json").read_text()) for name in ("dev", "test")}
    sets = paired_sets(args.data, list(caches.values()))
    dev_queries = set(splits["dev"]["queries"].values())
    sets["all"] = [t for t in sets["all"] if t not in dev_queries]  # dev selects: its queries are not paired texts
    texts = {name: (list(s["queries"].values()), list(s["corpus"].values())) for name, s in splits.items()}

    for old, new in [("mpnet", "MiniLM"), ("MiniLM", "mpnet")]:
        enc_new, enc_old = caches[new], caches[old]
        test_new, test_old = vectors(enc_new, texts["test"][0]), vectors(enc_old, texts["test"][0])
        dev_new = vectors(enc_new, texts["dev"][0])
        test_ndcg = split_scorer(splits["test"], vectors(enc_old, texts["test"][1]))
        dev_ndcg = split_scorer(splits["dev"], vectors(enc_old, texts["dev"][1]))
        reembed = split_scorer(splits["test"], vectors(enc_new, texts["test"][1]))(test_new)
        print(f"{old} index, {new} queries; the full re-embed ({new} both sides): {reembed:.4f}", flush=True)
        score = test_ndcg(test_old)
        share = f"{score:.4f} ({score / reembed:.1%}), mean cos {mean_cosine(test_old):.3f}"
        print(f"  old model on both sides (a perfect label-free map): {share}")
        for fit in (procrustes_map, least_squares_map):
            w, b = fit(test_new, test_old)
            score = test_ndcg(test_new @ w + b)
            print(f"  ORACLE {fit.__name__} on the test queries: {score:.4f} ({score / reembed:.1%})")
        for label in args.sets:
            paired_new, paired_old = vectors(enc_new, sets[label]), vectors(enc_old, sets[label])
            fit = procrustes_map(paired_new, paired_old)
            base = test_ndcg(test_new @ fit[0] + fit[1])
            mapped = f"{base:.4f} ({base / reembed:.1%}), mean cos {mean_cosine(test_new @ fit[0] + fit[1]):.3f}"
            print(f"  procrustes, paired {label} ({len(sets[label])} texts): {mapped}")
            mlp_rows(args, fit, paired_new, paired_old, dev_new, dev_ndcg, test_new, test_ndcg, reembed, label)


if __name__ == "__main__":
    main()
