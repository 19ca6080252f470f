"""isoadapt: isotropy-regularized projection heads over frozen sentence encoders."""

import os

__version__ = "0.1.0"

# Offline by design, set once for every entry point (CLI, scripts, benches, tests): nothing may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
