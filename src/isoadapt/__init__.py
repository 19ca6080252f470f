"""isoadapt: projection heads (adapters) over frozen sentence encoders, measured against the base model.

The public API is `Adapter`. It is imported on first use (PEP 562 `__getattr__`), so `import isoadapt`
loads no torch and `isoadapt --help` stays fast. Importing the package changes nothing in the host
process: offline mode (HF_HUB_OFFLINE) is set by the command line's entry point and the Makefile, never
here, so a user's other models can still download."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Adapter", "__version__"]


def __getattr__(name: str):
    if name == "Adapter":
        from isoadapt.api import Adapter

        return Adapter
    raise AttributeError(f"module 'isoadapt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
