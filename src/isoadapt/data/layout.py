"""The processed dataset's layout: the one place that names its files. Every writer (`prepare`, `prepare
vectors`, `fit` on arrays) and every reader (train, fit, encode, experiment) goes through here.

    DATA_ROOT/NAME/train.json          training pairs: [{query, positive, negative?}]
    DATA_ROOT/NAME/dev.json            validation split {queries, corpus, qrels}: what selects
    DATA_ROOT/NAME/test.json           test split, same format: reported only
    DATA_ROOT/NAME/probe_KIND.json     validation-only shift probes (semanlink), same format
    DATA_ROOT/NAME/placeholder_texts.json   a dataset imported from vectors without texts: {"model": NAME}
    DATA_ROOT/NAME_smoke/train.json    a smaller training file (with its own dev/test) for quick plans
    DATA_ROOT/stsb/sts_dev.json, sts_test.json   STS-B pairs [{sentence1, sentence2, score}]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_ROOT = Path("data/processed")
TRAIN = "train.json"
PLACEHOLDERS = "placeholder_texts.json"
PROBE_PREFIX = "probe_"
DOCUMENT_PROBE = "documents"  # probe_documents.json: in-domain whole documents as the queries
NEWS_PROBE = "news"  # probe_news.json: another domain's whole documents as the queries (data/news_probe.py)
DOCUMENT_PROBES = (DOCUMENT_PROBE, NEWS_PROBE)  # the documents-as-queries probes (recommend's rule 4)
STS_PREFIX = "sts_"
SMOKE_SUFFIX = "_smoke"
STSB = "stsb"  # the dataset whose STS pairs (and dev sentences, as queries) other datasets' plans borrow
EVALUATED = {"val": "dev", "test": "test"}  # a run's evaluated inputs -> their split in the folder


def split_file(split: str) -> str:
    """A retrieval split's file name: dev -> dev.json, probe_arxiv -> probe_arxiv.json."""
    return f"{split}.json"


def sts_file(split: str) -> str:
    """An STS pairs file's name: dev -> sts_dev.json."""
    return f"{STS_PREFIX}{split}.json"


def is_sts_file(path: Path) -> bool:
    return path.name.startswith(STS_PREFIX)


def smoke_name(name: str) -> str:
    """The smoke dataset beside NAME: semanlink -> semanlink_smoke."""
    return f"{name}{SMOKE_SUFFIX}"


@dataclass(frozen=True)
class DatasetFolder:
    """One processed dataset's folder, and the path of each file it may hold (present or not)."""

    path: Path

    @property
    def train(self) -> Path:
        return self.path / TRAIN

    @property
    def dev(self) -> Path:
        return self.path / split_file("dev")

    @property
    def test(self) -> Path:
        return self.path / split_file("test")

    @property
    def placeholders(self) -> Path:
        return self.path / PLACEHOLDERS

    def sts(self, split: str) -> Path:
        return self.path / sts_file(split)

    def probes(self) -> dict[str, Path]:
        """The probes present, by kind (`probe_arxiv.json` -> arxiv), in name order."""
        found = sorted(self.path.glob(split_file(f"{PROBE_PREFIX}*")))
        return {path.stem.removeprefix(PROBE_PREFIX): path for path in found}

    def inputs(self) -> dict[str, Path]:
        """A run's inputs by role: train, val (dev.json: what selects) and test."""
        return {"train": self.train, **{role: self.path / split_file(split) for role, split in EVALUATED.items()}}

    def holds_training(self) -> bool:
        """What a training run needs: train.json and dev.json (test.json is optional)."""
        return self.train.is_file() and self.dev.is_file()

    def text_files(self) -> list[Path]:
        """The files present whose texts a model encodes (pairs, splits, STS pairs), probes aside."""
        files = [self.train, self.dev, self.test, self.sts("dev"), self.sts("test")]
        return [path for path in files if path.is_file()]


def dataset(name: str, root: Path = DATA_ROOT) -> DatasetFolder:
    return DatasetFolder(Path(root) / name)


def smoke(name: str, root: Path = DATA_ROOT) -> DatasetFolder:
    return DatasetFolder(Path(root) / smoke_name(name))


def stsb(root: Path = DATA_ROOT) -> DatasetFolder:
    return DatasetFolder(Path(root) / STSB)
