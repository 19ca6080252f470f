"""isoadapt: projection heads (adapters) over frozen sentence encoders, measured against the base model.

Importing the package changes nothing in the host process: offline mode (HF_HUB_OFFLINE) is set by the
command line's entry point and the Makefile, never here, so a user's other models can still download."""

__version__ = "0.1.0"
