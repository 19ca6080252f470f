"""The files a plan reads (ExperimentData) and the picklable recipe that rebuilds a plan's runner in this
process or in a Ray trial's (PlanRecipe)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from isoadapt.data import layout
from isoadapt.errors import InputError
from isoadapt.experiment.plan import Plan


@dataclass
class ExperimentData:
    train_smoke: Path
    train_full: Path
    dev: Path
    test: Path
    sts: Path | None
    sts_dev: Path | None  # STS-B dev pairs: the STS guard of selection (validation, like dev.json)
    shift: Path | None  # a second kind of input for the generalisation check (STS-B sentences as queries)
    probes: dict[str, Path] = field(default_factory=dict)  # validation-only shift probes: name -> split file

    @staticmethod
    def find_probes(data_root: Path, name: str, encodes: bool) -> dict[str, Path]:
        """The dataset's own probes (`probe_*.json`, written by `prepare`), and STS-B **dev** sentences as
        queries from another domain (texts to encode: not for precomputed vectors)."""
        probes = layout.dataset(name, data_root).probes()
        stsb_dev = layout.stsb(data_root).dev
        if encodes and name != layout.STSB and stsb_dev.is_file():
            probes["stsb_dev"] = stsb_dev
        return probes

    def paths(self) -> dict[str, Path]:
        """The single files by field name: every field but the probes, those found."""
        return {k: Path(v) for k, v in asdict(self).items() if v is not None and k != "probes"}

    def files(self) -> list[Path]:
        """Every file the plan reads, probes included: what its runs encode."""
        return [*self.paths().values(), *self.probes.values()]

    @classmethod
    def locate(cls, data_root: Path, name: str, sts: Path | None, encodes: bool = True) -> ExperimentData:
        """The plan's files; `encodes` False (precomputed vectors) leaves out the STS-B sets found by
        default: their sentences have no stored vectors."""
        base, stsb = layout.dataset(name, data_root), layout.stsb(data_root)
        smoke = layout.smoke(name, data_root).train
        shift, sts_dev = stsb.test, stsb.sts("dev")
        paths = cls(
            smoke if smoke.is_file() else base.train,
            base.train,
            base.dev,
            base.test,
            sts,
            sts_dev if sts and sts_dev.is_file() else None,
            shift if encodes and shift.is_file() and name != layout.STSB else None,
            cls.find_probes(data_root, name, encodes),
        )
        for path in (paths.train_full, paths.dev, paths.test):
            if not path.is_file():
                raise InputError(f"{path}: file not found (run `isoadapt prepare {name}` first)")
        return paths


@dataclass(frozen=True)
class PlanRecipe:
    """What builds a PlanRun, in this process or in a Ray trial's: the plan, the data's paths, where
    vectors and runs live, and the driver's encoder as the cache sees it (`encoder_described`). Plain data,
    so it pickles small; a trial rebuilds the same runner from it without loading the model."""

    plan: Plan
    data: ExperimentData
    cache_dir: Path
    staging: Path
    device: str
    encoder_described: dict  # describe_encoder() of the driver's encoder

    def absolute(self) -> PlanRecipe:
        """The same recipe with absolute paths: a trial runs in its own working folder, maybe on another node."""
        paths = {k: v.resolve() for k, v in self.data.paths().items()}
        data = replace(self.data, **paths, probes={k: v.resolve() for k, v in self.data.probes.items()})
        plan = replace(self.plan, path=self.plan.path.resolve())
        return replace(self, plan=plan, data=data, cache_dir=self.cache_dir.resolve(), staging=self.staging.resolve())
