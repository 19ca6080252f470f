"""`isoadapt serve` in a process of its own, with the tokenizing fake encoder as the base model (what
tests/serving.py's process_server runs): the real command line, the real uvicorn, signals included."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import isoadapt.integrations.server.model as served  # noqa: E402
from isoadapt.cli import main  # noqa: E402

from serving import TokenizingFake, fake_for  # noqa: E402

if __name__ == "__main__":
    served.open_encoder = lambda *args, **kwargs: fake_for(kind=TokenizingFake, **kwargs)
    sys.exit(main())
