"""Loss terms that score embeddings (they never encode), and their weighted sum."""

from isoadapt.losses.contrastive import margin_contrastive_loss
from isoadapt.losses.isotropy import covariance_isotropy_loss
from isoadapt.losses.objective import Batch, WeightedObjective
from isoadapt.losses.variance import variance_hinge_loss

__all__ = ["Batch", "WeightedObjective", "covariance_isotropy_loss", "margin_contrastive_loss", "variance_hinge_loss"]
