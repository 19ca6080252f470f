"""Training checkpoints: module weights, optimizer state and RNG state in safetensors, positions in JSON.

Saved every epoch and every `save_steps` steps, atomically, into the run's staging folder, so `--resume`
continues an interrupted run and ends where an uninterrupted run with the same seed ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from isoadapt.errors import InputError, describe
from isoadapt.fileio import atomic_write_bytes, atomic_write_json, read_json
from isoadapt.training.selection import ValidationSelector

TENSORS = "checkpoint.safetensors"
STATE = "checkpoint.json"


@dataclass
class Position:
    """Where training stands: the next batch of `epoch`, and the generator state that epoch began with."""

    step: int
    epoch: int
    batch: int
    epoch_generator_state: torch.Tensor
    history: list[dict]


def save_checkpoint(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    position: Position,
    selector: ValidationSelector | None = None,
) -> None:
    tensors = {
        f"module.{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            tensors[f"optimizer.{index}.{key}"] = (
                (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
            )
    selection = None
    if selector is not None:
        best, selection = selector.to_checkpoint()
        tensors.update({k: v.detach().cpu().contiguous() for k, v in best.items()})
    tensors["rng.epoch_generator"] = position.epoch_generator_state
    tensors["rng.torch_global"] = torch.get_rng_state()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / TENSORS, save(tensors))
    atomic_write_json(
        folder / STATE,
        {
            "step": position.step,
            "epoch": position.epoch,
            "batch": position.batch,
            "param_groups": optimizer_state["param_groups"],
            "history": position.history,
            "selection": selection,
        },
        indent=None,
    )


def load_checkpoint(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    selector: ValidationSelector | None = None,
) -> Position | None:
    """Restore modules, optimizer and the global RNG in place; None when there is no complete checkpoint.
    A damaged or hand-edited checkpoint stops with one line instead of resuming from garbage."""
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    try:
        return _restore(folder, modules, optimizer, selector)
    except (SafetensorError, KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise InputError(
            f"{folder}: damaged checkpoint ({describe(err)}); rerun without --resume to start over"
        ) from None


def _restore(folder: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, selector) -> Position:
    state = read_json(folder / STATE)
    tensors = load((folder / TENSORS).read_bytes())
    for name, module in modules.items():
        prefix = f"module.{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    torch.set_rng_state(tensors["rng.torch_global"])
    if selector is not None:
        selector.from_checkpoint(tensors, state["selection"])
    return Position(state["step"], state["epoch"], state["batch"], tensors["rng.epoch_generator"], state["history"])
