#!/usr/bin/env python
"""The research command line: `python scripts/train.py --train_data ... --output_dir ...`.

A thin wrapper over `isoadapt train`, accepting the same flags.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from isoadapt.cli import Parser, add_train_arguments, main  # noqa: E402

if __name__ == "__main__":
    parser = Parser(
        prog="scripts/train.py",
        description="Train an isotropy-regularized projection head (same flags as `isoadapt train`).",
    )
    add_train_arguments(parser)
    parser.set_defaults(command="train")
    sys.exit(main(parser=parser))
