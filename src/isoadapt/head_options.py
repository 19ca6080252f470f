"""What a head can be, as plain data (no torch): the kinds that train and the sides a head adapts.
TrainConfig offers them as choices, so the command line builds its flags without loading torch;
head.py builds the modules from them."""

from __future__ import annotations

TRAINABLE_HEADS = ("linear", "mlp")  # --head: the kinds of head a run trains (post-hoc transforms are fitted)
ADAPT_SIDES = ("both", "query")  # which texts pass through the head; documents keep base vectors with "query"
SIDES = ("query", "document")  # which side a vector is on; head.side_head routes each (no default: see there)
