"""The README.md model card that `isoadapt export` writes, as sentence-transformers writes one: what the
model is, what it was trained on, how it scored against its base model on validation and test, how
isotropic its space is, how to load it, and the commands that made it. Every figure is read from the
run folder; nothing is typed in by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from isoadapt.fileio import atomic_write_bytes, read_json
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS, percent_change
from isoadapt.training.config import INPUT, OPERATION, PLACE, TrainConfig, fields_with
from isoadapt.training.validation_plot import VALIDATION_PLOT

ISOTROPY_FIGURES = ("isoscore", "mean_cosine", "embedding_std_mean")


def _metric_rows(split: dict, names: tuple[str, ...]) -> list[str]:
    rows = []
    for name in names:
        base, trained = split["baseline"].get(name), split["trained"].get(name)
        if base is None or trained is None:
            continue
        change = f"{percent_change(trained, base):+.1f}%" if base else "n/a"
        rows.append(f"| {name} | {base:.4f} | {trained:.4f} | {change} |")
    return rows


def results_section(metrics: dict | None) -> list[str]:
    if not metrics:
        return ["No metrics were recorded for this run (a plan's post-hoc transform: see its plan report)."]
    lines = []
    for key, title in (("val", "Validation"), ("test", "Test")):
        if key in metrics:
            lines += [
                f"**{title}** (`{key}`)",
                "",
                "| metric | base model | this model | change |",
                "|---|---|---|---|",
            ]
            lines += _metric_rows(metrics[key], RETRIEVAL_METRICS) + [""]
    selected = (metrics.get("validation") or {}).get("selected")
    if selected:
        lines.append(f"The head was selected on validation at step {selected['step']} (epoch {selected['epoch']}).")
    sts = metrics.get("sts_spearman")
    if sts:
        lines.append(f"STS Spearman ({sts['data']}): base {sts['baseline']:.4f}, this model {sts['trained']:.4f}.")
    primary = "test" if "test" in metrics else "val"
    if primary in metrics:
        lines += [
            "",
            f"**Isotropy** ({primary} queries and documents)",
            "",
            "| figure | base model | this model | change |",
        ]
        lines += ["|---|---|---|---|", *_metric_rows(metrics[primary], ISOTROPY_FIGURES)]
    return lines


def shown(path) -> str:
    """A path as a card shows it: a relative one as given, an absolute one by its last two parts, so no
    user's home or temp folder leaks into a card meant for a model hub."""
    path = Path(str(path))
    return str(path) if not path.is_absolute() else str(Path(*path.parts[-2:]))


PATH_FIELDS = tuple(fields_with(TrainConfig, INPUT, PLACE))  # the settings that name files or folders


def without_local_paths(config: dict) -> dict:
    return {k: (shown(v) if k in PATH_FIELDS and isinstance(v, str) and v else v) for k, v in config.items()}


def dataset_name(config: dict) -> str | None:
    """The processed dataset's folder name (`data/processed/semanlink/test.json` -> semanlink)."""
    split = config.get("test_data") or config.get("val_data")
    return Path(split).parent.name or None if split else None


def base_name(config: dict) -> str:
    """The base model's hub name, or a local folder's last parts."""
    base = config["base_model"]
    return shown(base) if Path(base).is_absolute() else base


def query_model_row(config: dict) -> list[str]:
    """A cross-model run's query model, in the card's table (none for an ordinary run)."""
    query = config.get("query_model")
    if not query:
        return []
    return [f"| query model | {base_name({'base_model': query})} (queries; documents stay on the base model) |"]


def front_matter(config: dict, metrics: dict | None) -> list[str]:
    """The YAML a model hub reads: library, task, base model, data, and the test NDCG@10 (model-index)."""
    base, dataset = base_name(config), dataset_name(config)
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity", f"base_model: {base}"]
    lines += ["tags: [sentence-transformers, isoadapt, adapter]"]
    lines += [f"datasets: [{dataset}]"] if dataset else []
    test = (metrics or {}).get("test")
    if test and dataset:
        lines += [
            "model-index:",
            f"- name: isoadapt adapter over {base}",
            "  results:",
            "  - task:",
            "      type: retrieval",
            "    dataset:",
            f"      name: {dataset}",
            f"      type: {dataset}",
            "      split: test",
            "    metrics:",
            "    - type: ndcg_at_10",
            f"      value: {test['trained']['ndcg@10']:.4f}",
        ]
    return [*lines, "---"]


def train_command(config: dict) -> str:
    """The `isoadapt train` line that reproduces the run: every setting that differs from the default, but
    none that only places files or carries the run out (TrainConfig's PLACE and OPERATION roles), except
    the run folder the command needs."""
    defaults = TrainConfig.settings_only().to_dict()
    skip = set(fields_with(TrainConfig, PLACE, OPERATION)) - {"output_dir"}
    flags = [
        f"--{name} {json.dumps(value) if isinstance(value, str) and ' ' in value else value}"
        for name, value in without_local_paths(config).items()
        if name not in skip
        and value is not None
        and (name in ("train_data", "val_data") or value != defaults.get(name))
    ]
    return "isoadapt train " + " ".join(flags)


def how_to_load(out_dir: Path, adapt: str) -> list[str]:
    lines = [
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        f'model = SentenceTransformer("path/to/{out_dir.name}")  # this folder, or its id on a model hub',
        'queries = model.encode_query(["how do I adapt embeddings?"])',
        'documents = model.encode_document(["An adapter is a small projection head over a frozen encoder."])',
        "scores = model.similarity(queries, documents)  # cosine: the vectors are L2-normalised",
        "```",
    ]
    if adapt == "query":
        lines.append(
            "This head adapts queries only: `encode_document` gives the base model's vectors, so an index "
            "built with the base model stays valid. `model.encode(texts)` names no side and raises here; use "
            '`encode_query` / `encode_document`, or `encode(texts, task="query")` / `task="document"`.'
        )
    return lines


def in_other_libraries(out_dir: Path, adapt: str) -> list[str]:
    """The call that gives each side its vectors in LangChain, LlamaIndex and LanceDB (isoadapt.integrations):
    with a query-only head the stock wrappers that call `encode` without a task fail, loudly."""
    folder = f'"path/to/{out_dir.name}"'
    if adapt == "query":
        langchain = (
            f"`isoadapt.integrations.langchain.AdapterEmbeddings(isoadapt.Adapter.load({folder}))`, which routes "
            f"each side; or the stock `HuggingFaceEmbeddings(model_name={folder}, "
            'encode_kwargs={"task": "document"}, query_encode_kwargs={"task": "query"})` (set both: LangChain '
            "falls back to `encode_kwargs` for queries, and this folder cannot tell a query from a document there)"
        )
        llama_index = (
            f"`isoadapt.integrations.llama_index.AdapterEmbedding(model_name={folder})` (`pip install isoadapt`; "
            "the stock `HuggingFaceEmbedding` names no task)"
        )
    else:
        langchain = f"`HuggingFaceEmbeddings(model_name={folder})`"
        llama_index = f"`HuggingFaceEmbedding(model_name={folder})`, or isoadapt's `AdapterEmbedding`"
    return [
        f"- LangChain (`langchain-huggingface`): {langchain}.",
        f"- LlamaIndex (`llama-index-embeddings-huggingface`): {llama_index}.",
        "- LanceDB: a table written by `isoadapt index --run_dir RUN` (the run this model was exported from) "
        "records isoadapt's embedding function: `import isoadapt.integrations.lancedb`, then "
        '`table.search("text")` embeds the query on the right side.',
    ]


def what_was_trained(config: dict) -> str:
    """One sentence that says what changed: the head alone over a frozen base, the base too, or nothing."""
    if config.get("kind") == "posthoc":
        return (
            f"A {config.get('transform')} transform fitted by isoadapt (no training) over the base model, "
            "exported as a SentenceTransformer."
        )
    if config.get("freeze_base", True):
        return "A projection head trained by isoadapt over the frozen base model, exported as a SentenceTransformer."
    return (
        "The base model fine-tuned by isoadapt together with a projection head (full fine-tuning: the "
        "encoder's weights changed), exported as a SentenceTransformer."
    )


@dataclass(frozen=True)
class ModelCard:
    """The card `isoadapt export` writes as README.md (`text`, markdown), with the metrics it shows
    (`metrics`, the run's metrics.json): what `Adapter.card` returns. Printed or shown in a notebook, it
    is the markdown."""

    text: str
    metrics: dict

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:  # Jupyter renders it
        return self.text

    def save(self, path: str | Path) -> Path:
        """Write the card as a markdown file (what a model hub shows as the model's page)."""
        atomic_write_bytes(Path(path), self.text.encode("utf-8"))
        return Path(path)


def model_card(run_dir: Path, out_dir: Path, head_config: dict) -> str:
    doc = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else None
    return card_text(doc, metrics, head_config, run_dir, out_dir, (run_dir / VALIDATION_PLOT).is_file())


def card_text(doc: dict, metrics: dict | None, head_config: dict, run_dir: Path, out_dir: Path, plot: bool) -> str:
    """The card of a run from its config.json (`doc`) and metrics, as `out_dir` will hold it (`plot`: the
    validation plot is copied beside it)."""
    config = doc["config"]
    adapt = head_config.get("adapt", "both")
    lines = [
        *front_matter(config, metrics),
        "",
        f"# isoadapt adapter over {base_name(config)}",
        "",
        what_was_trained(config),
        "",
        "## Base model and head",
        "",
        "| | |",
        "|---|---|",
        f"| base model | {base_name(config)} |",
        *query_model_row(config),
        f"| head | {head_config.get('type')}, init {config.get('head_init', 'identity')} |",
        f"| adapts | {'queries only' if adapt == 'query' else 'queries and documents'} |",
        f"| width | {head_config.get('dim')} -> {head_config.get('out_dim', head_config.get('dim'))} |",
    ]
    if metrics and "train" in metrics:
        train = metrics["train"]
        lines += [
            "",
            "## Training data",
            "",
            f"{train['examples']} (query, positive) pairs from `{shown(config['train_data'])}` "
            f"({train['unique_texts']} unique texts), {train['steps']} steps in {train['seconds']} s; validation on "
            f"`{shown(config['val_data'])}`"
            + (f", test on `{shown(config['test_data'])}`." if config.get("test_data") else "."),
        ]
    lines += ["", "## Results against the base model", "", *results_section(metrics)]
    if plot:  # export copies it beside the card
        lines += [
            "",
            f"![Validation NDCG@10 against the training step; the dot is the selected state]({VALIDATION_PLOT})",
        ]
    lines += ["", "## How to load", "", *how_to_load(out_dir, adapt)]
    lines += ["", "## In LangChain, LlamaIndex and LanceDB", "", *in_other_libraries(out_dir, adapt)]
    lines += ["", "## How it was made", "", "```"]
    if config.get("kind") != "posthoc" and "train_data" in config:
        lines.append(train_command(config))
    lines += [f"isoadapt export --run_dir {shown(run_dir)} --out {shown(out_dir)}", "```", ""]
    lines += [
        "## Configuration",
        "",
        "```json",
        json.dumps(without_local_paths(config), indent=2, sort_keys=True),
        "```",
        "",
    ]
    if "versions" in doc:
        lines += ["Library versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()), ""]
    return "\n".join(lines)
