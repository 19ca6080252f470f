"""Selection on validation, never on test: the trained modules are kept at their best validation NDCG@10.

The starting point (the identity, or the fitted transform a head starts from) is scored first and is a
candidate like any later state, and a later state must be strictly better to replace it, so a run never
ends worse than where it started on validation. Scores are taken after every epoch and every `eval_steps`
steps; `patience` stops training after that many scores in a row without a new best. Only the validation
split is ever passed in here: test metrics are computed once, afterwards, for the selected state only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from isoadapt.metrics.retrieval import percent_change


@dataclass
class ValidationSelector:
    modules: dict[str, torch.nn.Module]
    score: Callable[[int], float]  # step -> validation NDCG@10 of the modules as they are now
    patience: int | None = None
    curve: list[dict] = field(default_factory=list)
    best: dict | None = None
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    since_best: int = 0

    def observe(self, step: int, epoch: float) -> bool:
        """Score the current state and keep it when it is the best so far; True when patience ran out."""
        point = {"step": step, "epoch": round(epoch, 4), "ndcg@10": float(self.score(step))}
        self.curve.append(point)
        if self.best is None or point["ndcg@10"] > self.best["ndcg@10"]:
            self.best, self.since_best = dict(point), 0
            self.best_state = {
                name: {k: v.detach().clone() for k, v in module.state_dict().items()}
                for name, module in self.modules.items()
            }
        else:
            self.since_best += 1
        return self.patience is not None and self.since_best >= self.patience

    def restore(self) -> None:
        """Load the selected state back into the modules."""
        for name, module in self.modules.items():
            module.load_state_dict(self.best_state[name])

    def summary(self) -> dict:
        return {
            "metric": "ndcg@10",
            "split": "val",
            "curve": self.curve,
            "start": self.curve[0]["ndcg@10"] if self.curve else None,
            "selected": self.best,
            "stopped_early": self.patience is not None and self.since_best >= self.patience,
        }

    def to_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors and JSON that --resume needs to continue the selection exactly."""
        tensors = {f"best.{name}.{k}": v for name, state in self.best_state.items() for k, v in state.items()}
        return tensors, {"curve": self.curve, "best": self.best, "since_best": self.since_best}

    def from_checkpoint(self, tensors: dict[str, torch.Tensor], saved: dict) -> None:
        self.curve, self.best, self.since_best = list(saved["curve"]), saved["best"], int(saved["since_best"])
        self.best_state = {
            name: {k.removeprefix(f"best.{name}."): v for k, v in tensors.items() if k.startswith(f"best.{name}.")}
            for name in self.modules
        }


def first_best(curve: list[dict]) -> dict:
    """The point `ValidationSelector` keeps from a curve: the first of its highest scores, since a later
    state must be strictly better to replace an earlier one."""
    return max(curve, key=lambda point: point["ndcg@10"])  # max keeps the first of equal keys


def selection_line(summary: dict) -> str:
    """The line `isoadapt train` ends with: the step and epoch selection kept (from `summary()`, as
    metrics.json records it), and that state's validation NDCG@10 against the start's."""
    selected, start = summary["selected"], summary["start"]
    change = percent_change(selected["ndcg@10"], start)
    against = f"{start:.4f} at the start" + (f" ({change:+.2f}%)" if change is not None else "")
    kept = "the start: no later state scored higher" if selected["step"] == 0 else against
    stopped = "; stopped early (patience)" if summary["stopped_early"] else ""
    return (
        f"selected on validation: step {selected['step']} (epoch {selected['epoch']}), "
        f"NDCG@10 {selected['ndcg@10']:.4f}, {kept}{stopped}"
    )
