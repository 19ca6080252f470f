"""The settings of a cross-model run (`--query_model NEW` beside `--base_model OLD`, docs/upgrade.md), checked
once, before any file is read: the head is query-only (documents keep the OLD model's vectors: nothing is
re-embedded), linear, over frozen encoders, and starts at the identity or at an alignment fitted on paired
texts. No torch here: the command line checks these before it loads anything."""

from __future__ import annotations

from isoadapt.errors import InputError
from isoadapt.training.config import ALIGNMENT_INITS

CROSS_INITS = ("identity", *ALIGNMENT_INITS)


def check_cross_settings(cfg) -> None:
    """`cfg` is a TrainConfig with a query_model."""
    new, old = cfg.query_model, cfg.base_model
    if not isinstance(new, str) or not new:
        raise InputError(f"--query_model {new!r}: expected a model name, a folder or vectors:NAME")
    if new == old:
        raise InputError(
            f"--query_model {new}: the same model as --base_model; a head over one model is an ordinary "
            "adapter: drop --query_model"
        )
    if cfg.adapt != "query":
        raise InputError(
            f"--query_model {new}: a cross-model head is query-only (the documents keep the vectors of "
            f"--base_model {old}, so nothing is re-embedded): add --adapt query"
        )
    if cfg.head != "linear" or not cfg.freeze_base or cfg.out_dim is not None:
        raise InputError(
            f"--query_model {new}: a cross-model head is a linear map over frozen encoders whose width is the "
            "base model's (--head linear, --freeze_base, no --out_dim)"
        )
    if cfg.head_init not in CROSS_INITS:
        raise InputError(f"--head_init {cfg.head_init}: a cross-model head starts at one of {list(CROSS_INITS)}")
    if cfg.init_texts != "pairs":
        raise InputError(f"--init_texts {cfg.init_texts}: a cross-model start is fitted on --paired_texts instead")
    if cfg.paired_texts is not None:
        if isinstance(cfg.paired_texts, bool) or cfg.paired_texts < 2:
            raise InputError(f"--paired_texts {cfg.paired_texts}: must be at least 2")
        if cfg.head_init == "identity" and cfg.train_on != "paired_texts":
            raise InputError(
                f"--paired_texts {cfg.paired_texts}: nothing reads paired texts here; they are for --head_init "
                "least_squares / procrustes and --train_on paired_texts"
            )
    if cfg.train_on == "paired_texts" and (
        cfg.negatives != "file" or cfg.train_pairs is not None or cfg.max_train_examples
    ):
        raise InputError(
            "--train_on paired_texts: the map learns from texts, not labelled pairs: --negatives hard, "
            "--train_pairs and --max_train_examples are for --train_on labels (use --paired_texts to cut the texts)"
        )
