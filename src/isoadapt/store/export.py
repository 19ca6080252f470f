"""Export a run as a standard SentenceTransformer folder: the base modules, a Dense module carrying the
head, and a final Normalize (the run scores by cosine), so `SentenceTransformer(DIR)` loads it anywhere.
A query-only head becomes a sentence-transformers Router: `encode_query` applies the head, and
`encode_document` gives the base vectors, so an existing index needs no re-embedding. The Router has no
default route: `encode(texts)` without a task raises (sentence-transformers: "Could not determine route
for task=None ...") instead of answering a query with base vectors, as the stock default route ("document")
does, silently. Every wrapper that calls `encode` must name the side (see isoadapt.integrations)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch

from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.encoding.prompts import Prompts
from isoadapt.errors import NOTHING_KEPT, InputError, describe, disk_error
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.head import CONFIG_FILE, WEIGHTS_FILE, AffineHead, LinearHead, side_head
from isoadapt.head_options import SIDES
from isoadapt.owned_folders import check_output_folder, staged_folder
from isoadapt.store.model_card import model_card
from isoadapt.training.run_folder import HEAD, OpenedRun, open_run
from isoadapt.training.validation_plot import VALIDATION_PLOT

EXPORT_ADAPTER = "adapter"  # in an export: the head in isoadapt's own format, for isoadapt.Adapter.load
ADAPTER_FILE = "adapter.json"  # beside it: {"run": the run's config.json, "card": its metrics, "fine_tuned"}


def head_as_affine(head: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (out, in), bias (out,)) of a linear or post-hoc head."""
    if isinstance(head, (LinearHead, AffineHead)):
        return head.linear.weight.detach().clone(), head.linear.bias.detach().clone()
    raise InputError(
        f"export: a {head.config()['type']} head is not a single linear map; export supports linear heads "
        "and post-hoc transforms"
    )


def check_export_target(run_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """--out must be a new folder or an earlier export, and never the run being exported or around it."""
    run, out = run_dir.resolve(), out_dir.resolve()
    if out == run or out in run.parents or run in out.parents:
        raise InputError(
            f"--out {out_dir}: is, holds or lies inside the run being exported ({run_dir}); choose a folder outside it"
        )
    check_output_folder(out_dir, "--out", "export", overwrite)


def side_models(run: OpenedRun, cache_dir: Path) -> dict[str, tuple[object, Prompts]]:
    """Each side's SentenceTransformer and prompts, as the run encoded that side (`OpenedRun.side_encoder`:
    a cross-model run's queries on its query model, everything else on the encoder the head was trained
    over), each checked against the weights and width the run recorded. A same-model run's two sides are one
    model: loaded once, held once in the export."""
    for side in ("document", "query"):
        name = run.side_model(side)
        if is_precomputed(name):
            raise InputError(
                f"export --run_dir {run.folder}: its {side} side is {name}, precomputed vectors: there is no model "
                "to export; `isoadapt apply` takes your vectors through the head"
            )
    run = replace(run, config={**run.config, "encode_backend": "torch"})  # the export holds torch modules:
    # an ONNX runtime for the run's --encode_backend would be built only to be dropped
    documents = run.side_encoder("document", cache_dir)
    query = documents if run.side_model("query") == run.side_model("document") else run.side_encoder("query", cache_dir)
    return {"query": (query.model, query.prompts), "document": (documents.model, documents.prompts)}


def sentence_transformer(run: OpenedRun, cache_dir: Path):
    """The run as one SentenceTransformer on the CPU: what `export` saves and what MLflow logs. A query-only
    head (or a cross-model run, whose head is always query-only) is a Router: the query route is the query
    model's modules, the head (Dense) and Normalize; the document route is the base model's modules,
    untouched, so an existing index needs no re-embedding."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Router

    head = run.head
    weight, bias = head_as_affine(head)  # an MLP head is refused here, before the model loads
    models = side_models(run, cache_dir)
    (query, query_prompts), (documents, document_prompts) = models["query"], models["document"]
    dense = Dense(
        weight.shape[1],
        weight.shape[0],
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=weight,
        init_bias=bias,
    )
    if head.adapt == "query":  # encode_query applies the head, encode_document keeps the base vectors
        router = Router.for_query_document(
            query_modules=[*query, dense, Normalize()],
            document_modules=list(documents),
            default_route=None,  # encode() must name its side (task="query" or "document"): no silent default
            allow_empty_key=False,
        )
        exported = SentenceTransformer(modules=[router], device="cpu")
    else:
        exported = SentenceTransformer(modules=[*documents, dense, Normalize()], device="cpu")
    if query is documents:  # a cross-model Router keeps each route's own window (each Transformer saves its own)
        exported.max_seq_length = documents.max_seq_length
    # The run's prompts under sentence-transformers' names, so encode_query / encode_document apply them.
    prompts = {"query": query_prompts.query, "document": document_prompts.document}
    exported.prompts = {**documents.prompts, **prompts}
    return exported


def export_run(run_dir: Path, out_dir: Path, cache_dir: Path, overwrite: bool = False) -> Path:
    """The SentenceTransformer folder, its model card, and the run's validation.png that the card shows;
    nothing else of the run folder."""
    run = open_run(run_dir)  # a damaged head fails here, before the model is loaded
    check_export_target(run_dir, out_dir, overwrite)
    exported = sentence_transformer(run, cache_dir)
    try:
        with staged_folder(out_dir, "export") as staging:
            exported.save(str(staging))
            write_adapter(run, staging / EXPORT_ADAPTER)
            card = model_card(run_dir, out_dir, run.head.config())  # replaces sentence-transformers' generic card
            (staging / "README.md").write_text(card, encoding="utf-8")
            if (run_dir / VALIDATION_PLOT).is_file():
                shutil.copyfile(run_dir / VALIDATION_PLOT, staging / VALIDATION_PLOT)
            for path in staging.rglob("*"):  # readable by every user of the hub or the share it goes to
                path.chmod(0o755 if path.is_dir() else 0o644)
    except Exception as err:
        if isinstance(err, InputError) or not disk_error(err):
            raise
        where = err.filename if isinstance(err, OSError) and err.filename else f"--out {out_dir}"
        raise InputError(f"{where}: {disk_error(err)} while writing the export; {NOTHING_KEPT}") from err
    return out_dir


def write_adapter(run: OpenedRun, folder: Path) -> None:
    """The head as the run saved it (its files copied, so its sha256 is the run's), its settings, metrics
    and digest: what `isoadapt.Adapter.load` reads from an export (sentence-transformers ignores the folder;
    its Dense module holds the same weights, and `check_modules` holds it to them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copyfile(run.folder / HEAD / name, folder / name)
    metrics = run.folder / "metrics.json"
    card = read_json(metrics) if metrics.is_file() else {}
    adapter = {"run": run.document, "card": card, "fine_tuned": run.fine_tuned is not None}
    atomic_write_json(folder / ADAPTER_FILE, {**adapter, "head_sha256": run.head_sha256})


def module_kind(entry: dict) -> str:
    """ "Dense" for "sentence_transformers.base.modules.dense.Dense" (the module path moves between versions)."""
    return entry["type"].rsplit(".", 1)[-1]


def export_routes(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """Each side's modules in a SentenceTransformer folder, as (kind, folder): a Router's two routes, or one
    chain that both sides share. Read from the files (modules.json, router_config.json); nothing loads."""
    modules_file = folder / "modules.json"
    modules = read_json(modules_file)
    if not isinstance(modules, list) or not all(
        isinstance(m, dict) and isinstance(m.get("type"), str) and isinstance(m.get("path"), str) for m in modules
    ):
        raise InputError(f"{modules_file}: expected a list of modules, each with a 'type' and a 'path' string")
    if len(modules) == 1 and module_kind(modules[0]) == "Router":
        router = folder / modules[0]["path"]
        config_file = router / "router_config.json"
        config = read_json(config_file)
        types, structure = (config.get(k) if isinstance(config, dict) else None for k in ("types", "structure"))
        if not isinstance(types, dict) or not isinstance(structure, dict) or set(SIDES) - set(structure):
            raise InputError(f"{config_file}: expected 'types' and a 'structure' with routes {list(SIDES)}")
        return {
            side: [(str(types.get(n, "")).rsplit(".", 1)[-1], router / n) for n in structure[side]] for side in SIDES
        }
    chain = [(module_kind(m), folder / m["path"]) for m in modules]
    return dict.fromkeys(SIDES, chain)


def check_modules(folder: Path, head: torch.nn.Module) -> None:
    """An export answers with the head of its adapter/ folder on the sides the head adapts: the side's route
    ends with a Dense module holding the head's weights, then Normalize; a query-only head's document route
    holds no Dense. A modules.json that lost its Dense module would otherwise give base vectors in silence."""
    modules_file = folder / "modules.json"
    for side, chain in export_routes(folder).items():
        expected = side_head(head, side)
        if expected is None:
            if any(kind == "Dense" for kind, _ in chain):
                raise InputError(
                    f"{modules_file}: the {side} route holds a Dense module; {folder / EXPORT_ADAPTER} "
                    "holds a query-only head, which leaves documents as base vectors"
                )
            continue
        if [kind for kind, _ in chain[-2:]] != ["Dense", "Normalize"]:
            raise InputError(
                f"{modules_file}: the {side} route does not end with the head of {folder / EXPORT_ADAPTER} (a Dense "
                "module, then Normalize): it would give other vectors than the adapter; export the run again"
            )
        check_dense(chain[-2][1], expected, folder / EXPORT_ADAPTER)


def check_dense(dense: Path, head: torch.nn.Module, adapter: Path) -> None:
    """The Dense module's weights are the head's, exactly (export copies them)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = dense / "model.safetensors"
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{weights}: not a readable safetensors file ({describe(err)})") from None
    weight, bias = head_as_affine(head)
    found = (state.get("linear.weight"), state.get("linear.bias"))
    if any(f is None or f.shape != e.shape or not torch.equal(f.float(), e) for f, e in zip(found, (weight, bias))):
        raise InputError(f"{weights}: not the weights of the head in {adapter}; export the run again")
