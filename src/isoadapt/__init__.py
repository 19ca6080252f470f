"""isoadapt: projection heads (adapters) over frozen sentence encoders, measured against the base model.

The public API (docs/python-api.md): `Adapter` (load, encode_query / encode_document / encode as in
sentence-transformers, transform, metrics, card, export, save), `fit` (train one on pairs, a dataset or
arrays, by default with the recipe the reports recommend), `evaluate` (score one as `isoadapt evaluate`
does), `Vectors` (your own vectors as arrays) and `TrainConfig` (every setting). They live in
isoadapt.api and are imported on first use (PEP 562 `__getattr__`), so `import isoadapt` loads no torch
and `isoadapt --help` stays fast.
Importing the package changes nothing in the host process: offline mode (HF_HUB_OFFLINE) is set by the
command line's entry point and the Makefile, never here, so a user's other models can still download."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Adapter", "Fit", "TrainConfig", "Vectors", "__version__", "evaluate", "fit"]
_API = frozenset(__all__) - {"__version__"}  # defined in isoadapt.api, imported on first use

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports them on first use
    from isoadapt.api import Adapter, Fit, TrainConfig, Vectors, evaluate, fit


def __getattr__(name: str):
    if name in _API:
        from isoadapt import api

        return getattr(api, name)
    raise AttributeError(f"module 'isoadapt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
