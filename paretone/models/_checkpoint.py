"""Model checkpoints: ``config.json`` (architecture, task, labels, version) + ``weights.safetensors``.

Nothing is unpickled: weights are read with safetensors and the architecture from JSON, so a
checkpoint from an untrusted source cannot run code. The safetensors header is checked against the
configuration before anything is allocated (the model is first built on PyTorch's ``meta`` device,
which holds shapes only), so a config naming absurd sizes is refused instead of exhausting memory.
Anything else (``.pt`` files, a pickle renamed to ``.safetensors``, mismatched shapes) is refused
with a message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from paretone._io import read_json, write_atomic, write_json
from paretone._version import __version__
from paretone.errors import CheckpointError, ConfigError
from paretone.models._base import AudioModel
from paretone.models._registry import build_model, config_from_dict, config_to_dict

CHECKPOINT_FORMAT = "paretone.model/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
DEFAULT_TASK = "classification"  # checkpoints written before tasks were named


@dataclass
class LoadedModel:
    model: AudioModel
    config: Any  # the family's configuration
    labels: tuple[str, ...]
    metadata: dict[str, Any]
    task: str = DEFAULT_TASK


def save_model(
    directory: str | os.PathLike[str],
    model: AudioModel,
    *,
    labels: tuple[str, ...],
    task: str = DEFAULT_TASK,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint atomically, file by file; ``metadata`` lands in config.json."""
    out = Path(directory)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_atomic(out / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
    write_json(
        out / CONFIG_FILE,
        {
            "format": CHECKPOINT_FORMAT,
            "paretone_version": __version__,
            "model": config_to_dict(model.config),
            "task": task,
            "labels": list(labels),
            "metadata": metadata or {},
        },
    )
    return out


def _header_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights_path}: not a readable safetensors file ({exc}); re-create the checkpoint"
        ) from None


def _compare(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], source: Path) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [k for k in expected if k in found and found[k] != expected[k]]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise CheckpointError(f"{source}: weights do not match config.json ({detail})")


def read_header(directory: str | os.PathLike[str]) -> tuple[Any, tuple[str, ...], str, dict[str, Any]]:
    """(config, labels, task, metadata) of a checkpoint folder, without touching its weights."""
    root = Path(directory)
    config_path, weights_path = root / CONFIG_FILE, root / WEIGHTS_FILE
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a checkpoint folder; pass the folder that `paretone train` wrote")
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(
                f"{path}: missing; a paretone checkpoint holds {CONFIG_FILE} and {WEIGHTS_FILE} "
                "(pickled .pt/.pth files are never loaded)"
            )
    try:
        header = read_json(config_path, missing="", fix="re-create the checkpoint", max_bytes=16 * 2**20)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{config_path}: not a {CHECKPOINT_FORMAT} checkpoint; re-create it with this paretone"
        )
    try:
        config = config_from_dict(header["model"])
        labels = tuple(str(x) for x in header["labels"])
        task = str(header.get("task", DEFAULT_TASK))
        metadata = header.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ConfigError("metadata must be an object")
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    if len(labels) != config.num_classes:
        raise CheckpointError(f"{config_path}: {len(labels)} labels for {config.num_classes} classes")
    return config, labels, task, dict(metadata)


def load_model(
    directory: str | os.PathLike[str],
    *,
    prepare: Callable[[AudioModel], AudioModel] | None = None,
) -> LoadedModel:
    """Rebuild a model from ``save_model`` output, in eval mode.

    ``prepare`` transforms the freshly built model before its weights load (a compressed student
    swaps in its fake-quantized layers there, whose state includes activation ranges).
    """
    root = Path(directory)
    config, labels, task, metadata = read_header(root)
    weights_path = root / WEIGHTS_FILE
    found = _header_shapes(weights_path)
    with torch.device("meta"):  # shapes only: nothing is allocated for a config that lies
        skeleton = build_model(config)
        if prepare is not None:
            skeleton = prepare(skeleton)
    _compare({k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, found, weights_path)
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights_path}: not a readable safetensors file ({exc}); re-create the checkpoint"
        ) from None
    model = build_model(config)
    if prepare is not None:
        model = prepare(model)
    _compare(
        {k: tuple(v.shape) for k, v in model.state_dict().items()},
        {k: tuple(v.shape) for k, v in tensors.items()},
        weights_path,
    )
    model.load_state_dict(tensors, strict=True)
    return LoadedModel(model.eval(), config, labels, metadata, task)
