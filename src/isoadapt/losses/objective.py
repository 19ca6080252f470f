"""The weighted sum lambda_c * contrastive + lambda_i * isotropy + lambda_reg * variance, returned by part."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from isoadapt.errors import InputError
from isoadapt.losses import CONTRASTIVE_LOSSES, INFONCE_TEMPERATURE, ISOTROPY_LOSS_NAMES
from isoadapt.losses.contrastive import cosine_alignment_loss, infonce_loss, margin_contrastive_loss
from isoadapt.losses.isotropy import covariance_isotropy_loss, istar_isotropy_loss
from isoadapt.losses.variance import variance_hinge_loss

ISOTROPY_LOSSES = dict(zip(ISOTROPY_LOSS_NAMES, (covariance_isotropy_loss, istar_isotropy_loss)))


@dataclass
class Batch:
    """Projected embeddings of one training batch."""

    queries: torch.Tensor  # (b, d)
    positives: torch.Tensor  # (b, d)
    relevant: torch.Tensor  # (b, b) bool
    negatives: torch.Tensor | None = None  # (b, d)
    has_negative: torch.Tensor | None = None  # (b,) bool
    relevant_negatives: torch.Tensor | None = None  # (b, b) bool: row j's negative is relevant to query i


class WeightedObjective:
    def __init__(
        self,
        lambda_contrastive: float,
        lambda_isotropy: float,
        lambda_reg: float,
        margin: float,
        variance_target: float = 1.0,
        isotropy_loss: str = "covariance",
        contrastive_loss: str = "margin",
        temperature: float = INFONCE_TEMPERATURE,
    ):
        for name, value in (
            ("lambda_contrastive", lambda_contrastive),
            ("lambda_isotropy", lambda_isotropy),
            ("lambda_reg", lambda_reg),
        ):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"--{name} {value}: must be a finite number >= 0")
        if lambda_contrastive == lambda_isotropy == lambda_reg == 0:
            raise InputError("--lambda_contrastive, --lambda_isotropy and --lambda_reg are all 0: nothing to train")
        if not math.isfinite(margin) or margin < 0:
            raise InputError(f"--margin {margin}: must be a finite number >= 0")
        if contrastive_loss not in CONTRASTIVE_LOSSES:
            raise InputError(f"--contrastive_loss {contrastive_loss}: expected one of {list(CONTRASTIVE_LOSSES)}")
        if not math.isfinite(temperature) or not 1e-4 <= temperature <= 10:
            raise InputError(f"--temperature {temperature}: must be between 0.0001 and 10")
        if isotropy_loss not in ISOTROPY_LOSSES:
            raise InputError(f"--isotropy_loss {isotropy_loss}: expected one of {sorted(ISOTROPY_LOSSES)}")
        self.weights = {"contrastive": lambda_contrastive, "isotropy": lambda_isotropy, "variance": lambda_reg}
        self.margin, self.temperature, self.contrastive_loss = margin, temperature, contrastive_loss
        self.variance_target = variance_target
        self.isotropy_fn = ISOTROPY_LOSSES[isotropy_loss]

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Each term already weighted; terms with weight 0 are skipped (reported as 0)."""
        both = torch.cat([batch.queries, batch.positives])  # (2b, d)
        terms = {
            "contrastive": lambda: self._contrastive(batch),
            "isotropy": lambda: self.isotropy_fn(both),
            "variance": lambda: variance_hinge_loss(both, self.variance_target),
        }
        zero = both.new_zeros(())
        return {name: self.weights[name] * compute() if self.weights[name] else zero for name, compute in terms.items()}

    def _contrastive(self, batch: Batch) -> torch.Tensor:
        if self.contrastive_loss == "cosine":
            return cosine_alignment_loss(batch.queries, batch.positives)
        if self.contrastive_loss == "infonce":
            return infonce_loss(
                batch.queries,
                batch.positives,
                batch.relevant,
                self.temperature,
                batch.negatives,
                batch.has_negative,
                batch.relevant_negatives,
            )
        return margin_contrastive_loss(
            batch.queries, batch.positives, batch.relevant, self.margin, batch.negatives, batch.has_negative
        )
