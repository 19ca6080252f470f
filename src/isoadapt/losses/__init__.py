"""Loss terms that score embeddings (they never encode), and their weighted sum (objective.py).

The names below are plain data (no torch): the settings and the trackers use them without loading torch."""

LOSS_TERMS = ("contrastive", "isotropy", "variance")  # the named, weighted parts of the objective
LOGGED_TERMS = ("total", *LOSS_TERMS)  # what every step records
CONTRASTIVE_LOSSES = ("margin", "infonce", "cosine")  # margin stays the default: the research's command runs as written
ISOTROPY_LOSS_NAMES = ("covariance", "istar")  # ours, and I-STAR's (Rudman & Eickhoff 2024)
INFONCE_TEMPERATURE = 0.05  # sentence-transformers' MultipleNegativesRankingLoss scale of 20
