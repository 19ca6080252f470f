"""sentence-transformers' `encode` keyword arguments, as `Adapter.encode` takes them: checked once, applied
to whichever model encodes (the run's base encoder or the exported SentenceTransformer), and the output
shaped as sentence-transformers shapes it (numpy, one tensor, or a list of tensors; one row for a string)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from isoadapt.errors import InputError
from isoadapt.training.config import check_device


def _flag(name: str, value: object, allow_none: bool = False) -> None:
    if not isinstance(value, bool) and not (allow_none and value is None):
        raise InputError(f"{name}={value!r}: expected True or False")


@dataclass(frozen=True)
class EncodeOptions:
    batch_size: int
    show_progress_bar: bool | None
    convert_to_numpy: bool
    convert_to_tensor: bool
    device: str | None

    @classmethod
    def checked(cls, batch_size, show_progress_bar, convert_to_numpy, convert_to_tensor, device) -> EncodeOptions:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size={batch_size!r}: expected an integer >= 1")
        _flag("show_progress_bar", show_progress_bar, allow_none=True)
        _flag("convert_to_numpy", convert_to_numpy)
        _flag("convert_to_tensor", convert_to_tensor)
        if device is not None:
            if not isinstance(device, str):
                raise InputError(f"device={device!r}: expected a torch device name (cpu, cuda, cuda:N or mps)")
            check_device(device)
        return cls(int(batch_size), show_progress_bar, convert_to_numpy, convert_to_tensor, device)

    def sentence_transformers(self) -> dict:
        """The arguments for a SentenceTransformer's own encode_query / encode_document."""
        return {"batch_size": self.batch_size, "show_progress_bar": self.show_progress_bar, "device": self.device}

    @contextmanager
    def applied_to(self, encoder) -> Iterator[None]:
        """isoadapt's encoder for one call: its batch size and progress bar set for the call, its model moved
        to `device` (and left there, as sentence-transformers' `encode(device=...)` leaves it)."""
        if self.device is not None:
            model = getattr(encoder, "model", None)
            if model is not None and getattr(encoder, "runner", None) is None:
                model.to(self.device)
            elif self.device != "cpu":
                raise InputError(f"device={self.device!r}: this adapter's base encoder runs on the CPU only")
        saved = {name: getattr(encoder, name, None) for name in ("batch_size", "show_progress")}
        encoder.batch_size = self.batch_size
        encoder.show_progress = self.show_progress_bar is not False
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(encoder, name, value)

    def output(self, vectors: np.ndarray, single: bool):
        """numpy (n, d) or (d,) by default; a tensor with `convert_to_tensor`; a list of tensors when neither
        (sentence-transformers' `convert_to_numpy=False`)."""
        if self.convert_to_tensor or not self.convert_to_numpy:
            import torch

            tensor = torch.from_numpy(np.ascontiguousarray(vectors))
            tensor = tensor.to(self.device) if self.device is not None else tensor
            if self.convert_to_tensor:
                return tensor[0] if single else tensor
            return tensor[0] if single else list(tensor)
        return vectors[0] if single else vectors
