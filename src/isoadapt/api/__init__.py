"""isoadapt from Python: `Adapter` (adapter.py), `fit` and `evaluate` (fitting.py), `Vectors` (your own
vectors as arrays) and `TrainConfig` (every setting). The command line is a shell over these functions.

Importing this package loads torch (a head is a torch module); `import isoadapt` does not: its
`__getattr__` imports these names on first use (its `__all__` is the one list of them)."""

from isoadapt.api.adapter import Adapter as Adapter
from isoadapt.api.fitting import Fit as Fit
from isoadapt.api.fitting import evaluate as evaluate
from isoadapt.api.fitting import fit as fit
from isoadapt.encoding.arrays import Vectors as Vectors
from isoadapt.training.config import TrainConfig as TrainConfig
