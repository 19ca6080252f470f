"""Typed settings for a training run: each field's default, --help text and role in one place (the train
command's flags and every 'which settings ...' list are generated from them), validated once, saved as JSON."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from isoadapt.encoding.backend_choice import BACKEND_CHOICES
from isoadapt.encoding.encoder import TOKEN_BUDGET
from isoadapt.encoding.offline_models import MINILM, MPNET
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.fileio import sha256_file
from isoadapt.head_options import ADAPT_SIDES, TRAINABLE_HEADS
from isoadapt.losses import CONTRASTIVE_LOSSES, INFONCE_TEMPERATURE, ISOTROPY_LOSS_NAMES
from isoadapt.owned_folders import check_folder_path
from isoadapt.training.tracking import TRACKERS

if TYPE_CHECKING:
    from isoadapt.losses.objective import WeightedObjective

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "isoadapt"
CACHE_DIR_HELP = "where models are unpacked, embeddings cached and plan results stored"  # every command's --cache_dir
MAX_SEED = 2**32 - 1  # numpy.random.seed accepts 0 .. 2**32 - 1
HEAD_INITS = ("identity", "whitening", "abtt", "least_squares", "procrustes")  # the identity or a fitted start
ALIGNMENT_INITS = ("least_squares", "procrustes")  # a cross-model start fitted on paired texts (training/alignment.py)
TRAIN_ON = ("labels", "paired_texts")  # what the loop learns from: the labelled pairs, or texts paired across models
INIT_TEXTS = ("pairs", "all")  # what a fitted start sees: the pairs trained on, or every text of the training file
NEGATIVES = ("file", "hard")  # each pair's negative: as the training file gives it, or mined from the base model
MAX_EPOCHS = 10_000  # far beyond any useful run over cached vectors; 10**12 would only look like a hang


def _at_least(name: str, value: int, low: int, high: int | None = None, why: str = "") -> None:
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InputError(f"--{name} {value}: must be {bound}" + (f" ({why})" if why else ""))


def check_seeds(seeds: list, where: str) -> list[int]:
    """The one seed rule, for --seed, --seeds and a plan's seeds: integers NumPy accepts, none twice."""
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InputError(f"{where}: seed {seed!r} must be an integer between 0 and {MAX_SEED} (NumPy's seed range)")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"{where}: a seed is listed twice in {seeds} (each seed is one run folder)")
    return seeds


def check_seed(seed: int) -> None:
    check_seeds([seed], "--seed")


def check_device(device: str) -> None:
    """A torch device that exists on this machine, refused before any work (not in the middle of a run)."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise InputError(f"--device {device}: not a torch device (expected cpu, cuda, cuda:N or mps)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if (
        kind == "cuda"
        and torch.device(device).index is not None
        and torch.device(device).index >= torch.cuda.device_count()
    ):
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    if kind not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {device}: isoadapt runs on cpu, cuda or mps")


_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool}


def declared_types(f) -> list[str]:
    """A field's annotation as type names (`int | None` -> ["int", "None"]): what check_types accepts
    and what the command line parses the flag as (the first name)."""
    return [t.strip() for t in str(f.type).split("|")]


def check_types(cfg) -> None:
    """Every field holds a value of its declared type (a plan's `epochs = 1.5` or `freeze_base = "no"`
    must not slip through). bool is refused where a number is expected; finiteness and ranges are
    checked by validate(), with the flag's name."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        allowed = declared_types(f)
        if value is None and "None" in allowed:
            continue
        ok = any(
            t in _TYPES and isinstance(value, _TYPES[t]) and (t == "bool" or not isinstance(value, bool))
            for t in allowed
        )
        if not ok:
            expected = " or ".join(t if t != "None" else "absent" for t in allowed)
            raise InputError(f"{f.name} = {value!r}: expected {expected}, got {type(value).__name__}")


# A field's role, in its metadata; every list of "which settings ..." is derived from these.
RESULT = "result"  # changes what the run computes: --resume refuses a change; plans key result reuse by it
INPUT = "input"  # an input file: changes the result by its content (hashed), not by its path
PER_RUN = "per-run"  # the run's seed, model, device and backend: set by the command for each run, never by a plan
PLACE = "place"  # where things are written or read from: changes nothing a run computes
OPERATION = "operation"  # how the run is carried out (progress, trackers, checkpoints): changes no result
ROLES = (RESULT, INPUT, PER_RUN, PLACE, OPERATION)


def setting(default=MISSING, help: str = "", role: str = RESULT, **cli):
    """A TrainConfig field: its default, its --help text, its role, and argparse options beyond what its
    type implies (choices, metavar, `flag=True` for a store_true switch, `negatable=True` for --no-X)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return field(default=default, metadata={"help": help, "role": role, "cli": cli})


def fields_with(cfg_or_class, *roles: str) -> list[str]:
    """The names of the fields whose role is one of `roles`, in declaration order."""
    return [f.name for f in fields(cfg_or_class) if f.metadata.get("role") in roles]


def resume_view(cfg) -> dict:
    """What --resume compares: every result setting, the input files' paths and their contents' hashes."""
    values = {name: getattr(cfg, name) for name in fields_with(cfg, RESULT, PER_RUN, INPUT)}
    return {**values, **{f"{name} sha256": digest for name, digest in input_hashes(cfg).items()}}


def reuse_view(cfg) -> dict:
    """What identifies a run's result for reuse across plans: result settings and the inputs' contents (the
    paths differ from plan to plan; the content is what counts)."""
    return {**{name: getattr(cfg, name) for name in fields_with(cfg, RESULT, PER_RUN)}, "inputs": input_hashes(cfg)}


def plan_settable(cfg_class) -> set[str]:
    """What a plan's [defaults] and [[configs]] may set: everything but the per-run names, places and inputs."""
    return set(fields_with(cfg_class, RESULT, OPERATION))


def input_hashes(cfg) -> dict[str, str]:
    """sha256 of each input file the config names (the one place inputs are hashed)."""
    return {name: sha256_file(getattr(cfg, name)) for name in fields_with(cfg, INPUT) if getattr(cfg, name)}


@dataclass
class TrainConfig:
    """Every setting of a training run, once: default, --help text and role (see ROLES). `isoadapt train`'s
    flags are generated from these fields, and plans may set the RESULT and OPERATION ones."""

    train_data: str = setting(help="train.json: a list of {query, positive, negative?}", role=INPUT)
    val_data: str = setting(
        help="dev.json: {queries, corpus, qrels}, scored at every check; selects the head", role=INPUT
    )
    output_dir: str = setting(help="run folder to create (config, metrics, head weights, step log)", role=PLACE)
    test_data: str | None = setting(None, "test.json in the same format, also evaluated (optional)", INPUT)
    sts_data: str | None = setting(
        None, "sts_*.json ({sentence1, sentence2, score} list): also report STS Spearman (optional)", INPUT
    )
    base_model: str = setting(
        MPNET,
        f"{MPNET}, {MINILM}, any Hugging Face hub id in the local Hugging Face cache (HF_HUB_CACHE), a local "
        "SentenceTransformer folder, or vectors:NAME (see docs/models.md)",
        PER_RUN,
    )
    query_model: str | None = setting(
        None,
        "a cross-model run (change the embedding model without re-embedding the corpus): the NEW model whose "
        "vectors the head reads on the query side, mapped into the space of --base_model (the OLD model of the "
        "index: its document vectors never change); same forms as --base_model, vectors:NAME too; default: "
        "none, one model on both sides (see docs/upgrade.md)",
        PER_RUN,
    )
    query_prompt: str | None = setting(
        None,
        "text prepended to every query before it is encoded; overrides the model's own 'query' prompt "
        "(default: the model's own, if any; '' for none)",
        PER_RUN,
    )
    document_prompt: str | None = setting(
        None,
        "text prepended to every document before it is encoded; overrides the model's own 'document' / "
        "'passage' prompt (default: the model's own, if any; '' for none)",
        PER_RUN,
    )
    freeze_base: bool = setting(
        True,
        "train only the head on cached vectors (true); false fine-tunes the encoder too (slow, forgets)",
        negatable=True,
    )
    lambda_contrastive: float = setting(0.1, "weight of the contrastive loss")
    lambda_isotropy: float = setting(1.0, "weight of the scale-invariant isotropy loss")
    lambda_reg: float = setting(0.0, "weight of the VICReg variance regulariser")
    margin: float = setting(0.1, "margin of the contrastive hinge, in cosine (--contrastive_loss margin)")
    projection_learning_rate: float = setting(5e-4, "AdamW learning rate of the head")
    base_learning_rate: float = setting(2e-5, "AdamW learning rate of the encoder (only with --freeze_base false)")
    epochs: int = setting(2, "passes over the training pairs")
    batch_size: int = setting(16, "pairs per step (>= 2; the other positives are in-batch negatives)")
    seed: int = setting(0, "seed for shuffling and initialisation", PER_RUN)
    head: str = setting("linear", "linear d->d (identity init) or a residual MLP", choices=TRAINABLE_HEADS)
    isotropy_loss: str = setting("covariance", "which isotropy loss to use", choices=ISOTROPY_LOSS_NAMES)
    variance_target: float = setting(1.0, "per-dimension std target of the variance hinge")
    cache_dir: str = setting(str(DEFAULT_CACHE_DIR), CACHE_DIR_HELP, PLACE)
    device: str = setting("cpu", "torch device (cpu, cuda, cuda:N or mps)", PER_RUN)
    encode_batch_size: int = setting(
        32, f"most texts per encoder batch; a batch also stops at {TOKEN_BUDGET} padded tokens", OPERATION
    )
    encode_backend: str = setting(
        "torch",
        "how the frozen encoder runs: PyTorch, ONNX Runtime (fp32 or int8 weights), or OpenVINO on the fp32 "
        "ONNX export (vectors cached per backend); auto: the fastest installed one whose vectors stay within "
        "tolerance of PyTorch's, measured once per CPU and model on validation texts, then reused",
        PER_RUN,
        choices=BACKEND_CHOICES,
    )
    overwrite: bool = setting(False, "replace an --output_dir that already holds a run", PLACE, flag=True)
    max_train_examples: int | None = setting(
        None, "use only the first N training pairs (e.g. to bound full fine-tuning)"
    )
    save_steps: int | None = setting(
        None, "also checkpoint every N steps (a checkpoint is always written after each epoch)", OPERATION
    )
    resume: bool = setting(False, "continue an interrupted run from its last checkpoint", OPERATION, flag=True)
    tracker: str = setting("tensorboard", "where per-step losses and metrics go", OPERATION, choices=TRACKERS)
    tracking_uri: str | None = setting(
        None, "MLflow tracking URI (default: sqlite:///<output_dir's parent>/mlflow.db)", OPERATION
    )
    contrastive_loss: str = setting(
        "margin",
        "margin: the research's hinge on cosine; infonce: cross-entropy over in-batch candidates "
        "(sentence-transformers' MultipleNegativesRankingLoss), other relevant candidates masked; cosine: "
        "1 - cos(query, positive), no negatives (a cross-model map trained on --train_on paired_texts)",
        choices=CONTRASTIVE_LOSSES,
    )
    temperature: float | None = setting(
        None, f"InfoNCE temperature, scale = 1 / temperature (infonce only; default {INFONCE_TEMPERATURE})"
    )
    head_init: str = setting(
        "identity",
        "where the linear head starts: the identity, or whitening / all-but-the-top fitted on the training texts",
        choices=HEAD_INITS,
    )
    out_dim: int | None = setting(None, "output width of a whitening-initialised head (default: the encoder's)")
    adapt: str = setting(
        "both",
        "both: queries and documents pass through the head; query: only queries do, documents keep their "
        "base vectors (no re-indexing)",
        choices=ADAPT_SIDES,
    )
    eval_steps: int | None = setting(
        None,
        "also score validation every N steps (it is always scored at the start and after each epoch); "
        "the head with the best validation NDCG@10 is kept",
    )
    early_stopping_patience: int | None = setting(
        None, "stop after this many validation scores in a row without a new best"
    )
    train_pairs: int | None = setting(
        None,
        "train on N pairs drawn at random with --seed (a point of a learning curve: each seed draws its own "
        "sample), where --max_train_examples takes the first N",
    )
    init_texts: str = setting(
        "pairs",
        "the texts a whitening / all-but-the-top start is fitted on: pairs (those of the pairs trained on) or all "
        "(every text of --train_data, labels unused, as the post-hoc rows are fitted: with --train_pairs, the "
        "texts of the pairs left out count too)",
        choices=INIT_TEXTS,
    )
    negatives: str = setting(
        "file",
        "each pair's explicit negative: file (as --train_data gives it) or hard (mined from the base model's "
        "top 50 training documents, every judged-relevant document excluded)",
        choices=NEGATIVES,
    )
    hard_negative_margin: float = setting(
        0.05,
        "with --negatives hard: drop a candidate scoring above the query's lowest positive score minus this "
        "fraction of it (a likely unjudged positive; sentence-transformers' relative_margin)",
    )

    train_on: str = setting(
        "labels",
        "labels: the labelled pairs of --train_data; paired_texts (a cross-model run only): the training texts "
        "themselves, each the query (new model) and the positive (old model) of its own pair, no labels read "
        "(an unlabelled alignment; use it with --contrastive_loss cosine)",
        choices=TRAIN_ON,
    )
    paired_texts: int | None = setting(
        None,
        "a cross-model run: align on N paired texts drawn at random with --seed from the training texts (queries "
        "and positives, deduplicated), for --head_init least_squares / procrustes and --train_on paired_texts "
        "(default: all of them)",
    )

    def validate(self) -> WeightedObjective:
        """Check every setting before any file is read or written; return the objective they define."""
        check_types(self)
        _at_least("epochs", self.epochs, 1, MAX_EPOCHS)
        _at_least("batch_size", self.batch_size, 2, None, "in-batch candidates need company")
        check_seed(self.seed)
        for name in ("projection_learning_rate", "base_learning_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"--{name} {value}: must be a finite number > 0")
        if not math.isfinite(self.variance_target) or self.variance_target < 0:
            raise InputError(f"--variance_target {self.variance_target}: must be a finite number >= 0")
        if self.temperature is not None and self.contrastive_loss != "infonce":
            raise InputError(
                f"--temperature {self.temperature}: only InfoNCE has a temperature (--contrastive_loss infonce); "
                f"the {self.contrastive_loss} loss would ignore it"
            )
        if self.head not in TRAINABLE_HEADS:
            raise InputError(f"--head {self.head}: expected one of {list(TRAINABLE_HEADS)}")
        if self.max_train_examples is not None:
            _at_least("max_train_examples", self.max_train_examples, 2)
        self._validate_data_settings()
        if self.save_steps is not None:
            _at_least("save_steps", self.save_steps, 1)
        if self.tracker not in TRACKERS:
            raise InputError(f"--tracker {self.tracker}: expected one of {list(TRACKERS)}")
        if self.encode_backend not in BACKEND_CHOICES:
            raise InputError(f"--encode_backend {self.encode_backend}: expected one of {list(BACKEND_CHOICES)}")
        if self.encode_backend != "torch" and not self.freeze_base:
            raise InputError(f"--encode_backend {self.encode_backend}: full fine-tuning needs the torch backend")
        if is_precomputed(self.base_model) and not self.freeze_base:
            raise InputError(
                f"--freeze_base false: {self.base_model} is precomputed vectors; there is no encoder to tune"
            )
        _at_least("encode_batch_size", self.encode_batch_size, 1, 1 << 16)
        self._validate_head_settings()
        for name in ("eval_steps", "early_stopping_patience", "out_dim"):
            if getattr(self, name) is not None:
                _at_least(name, getattr(self, name), 1)
        check_folder_path(Path(self.cache_dir), "--cache_dir")
        check_device(self.device)
        return self.objective()

    def _validate_data_settings(self) -> None:
        """Which pairs, which negatives, which texts the start sees."""
        if self.train_pairs is not None:
            _at_least("train_pairs", self.train_pairs, 2)
            if self.max_train_examples is not None:
                raise InputError(
                    f"--train_pairs {self.train_pairs}: a random sample, --max_train_examples the first N: give one"
                )
        if self.init_texts not in INIT_TEXTS:
            raise InputError(f"--init_texts {self.init_texts}: expected one of {list(INIT_TEXTS)}")
        if self.init_texts != "pairs" and self.head_init == "identity":
            raise InputError(
                f"--init_texts {self.init_texts}: only a fitted start (--head_init whitening or abtt) fits texts"
            )
        if self.train_on not in TRAIN_ON:
            raise InputError(f"--train_on {self.train_on}: expected one of {list(TRAIN_ON)}")
        if self.negatives not in NEGATIVES:
            raise InputError(f"--negatives {self.negatives}: expected one of {list(NEGATIVES)}")
        if not math.isfinite(self.hard_negative_margin) or not 0 <= self.hard_negative_margin < 1:
            raise InputError(f"--hard_negative_margin {self.hard_negative_margin}: must be >= 0 and < 1")
        margin_default = next(f.default for f in fields(self) if f.name == "hard_negative_margin")
        if self.negatives == "file" and self.hard_negative_margin != margin_default:
            raise InputError(
                f"--hard_negative_margin {self.hard_negative_margin}: only mined negatives have a margin "
                "(--negatives hard); with the file's negatives it would be ignored"
            )

    def _validate_head_settings(self) -> None:
        """Which head, started where, on which side: combinations that cannot work are refused up front."""
        if self.head_init not in HEAD_INITS:
            raise InputError(f"--head_init {self.head_init}: expected one of {list(HEAD_INITS)}")
        if self.adapt not in ADAPT_SIDES:
            raise InputError(f"--adapt {self.adapt}: expected one of {list(ADAPT_SIDES)}")
        if self.head != "linear" and (self.head_init != "identity" or self.out_dim or self.adapt != "both"):
            raise InputError(f"--head {self.head}: --head_init, --out_dim and --adapt query need the linear head")
        if self.head_init != "whitening" and self.out_dim is not None:
            raise InputError(
                f"--out_dim {self.out_dim}: only a whitening-initialised head changes the width (--head_init whitening)"
            )
        if self.query_model is not None:
            from isoadapt.training.cross_settings import check_cross_settings  # the cross-model rules, in one place

            check_cross_settings(self)
            return
        if self.head_init in ALIGNMENT_INITS or self.train_on != "labels" or self.paired_texts is not None:
            raise InputError(
                "--head_init least_squares / procrustes, --train_on paired_texts and --paired_texts align one "
                "model onto another: they need --query_model (see docs/upgrade.md)"
            )
        if self.adapt == "query" and (self.head_init != "identity" or not self.freeze_base):
            raise InputError(
                "--adapt query: documents keep their base vectors, so the head starts at the identity "
                "over a frozen encoder (--head_init identity, --freeze_base)"
            )

    def objective(self) -> WeightedObjective:
        from isoadapt.losses.objective import WeightedObjective  # torch: the flags are built without it

        return WeightedObjective(
            self.lambda_contrastive,
            self.lambda_isotropy,
            self.lambda_reg,
            self.margin,
            self.variance_target,
            self.isotropy_loss,
            self.contrastive_loss,
            INFONCE_TEMPERATURE if self.temperature is None else self.temperature,
        )

    @classmethod
    def settings_only(cls, **overrides) -> TrainConfig:
        """A config of settings with no files (no data, no run folder, no tracker): the recipe that
        `train_head` (the benches) trains with, the defaults being the same as `isoadapt train`'s."""
        return cls(train_data="", val_data="", output_dir="", **{"tracker": "none", **overrides})

    def to_dict(self) -> dict:
        return asdict(self)
