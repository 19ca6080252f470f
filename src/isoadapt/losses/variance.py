"""VICReg-style variance regulariser (Bardes et al. 2022): keep every dimension's std above a target."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def variance_hinge_loss(
    embeddings: torch.Tensor, target: float = 1.0, eps: float = 1e-4
) -> torch.Tensor:  # (n, d) -> ()
    """mean_j max(0, target - sqrt(Var(z_j) + eps)), the per-dimension hinge from VICReg."""
    std = torch.sqrt(embeddings.var(dim=0) + eps)  # (d,)
    return F.relu(target - std).mean()
