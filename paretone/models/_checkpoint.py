"""Model checkpoints: ``config.json`` (architecture, labels, version) + ``weights.safetensors``.

Nothing is unpickled: weights are read with safetensors and the architecture from JSON, so a
checkpoint from an untrusted source cannot run code. Anything else (``.pt`` files, a pickle
renamed to ``.safetensors``, mismatched shapes) is refused with a message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from paretone import __version__
from paretone._io import write_atomic, write_json
from paretone.errors import CheckpointError, ConfigError
from paretone.models._base import AudioModel
from paretone.models._config import ModelConfig, config_from_dict, config_to_dict

CHECKPOINT_FORMAT = "paretone.model/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class LoadedModel:
    model: AudioModel
    config: ModelConfig
    labels: tuple[str, ...]
    metadata: dict[str, Any]


def save_model(
    directory: str | os.PathLike[str],
    model: AudioModel,
    *,
    labels: tuple[str, ...],
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
            "labels": list(labels),
            "metadata": metadata or {},
        },
    )
    return out


def load_model(
    directory: str | os.PathLike[str],
    *,
    prepare: Callable[[AudioModel], AudioModel] | None = None,
) -> LoadedModel:
    """Rebuild a model from ``save_model`` output, in eval mode.

    ``prepare`` transforms the freshly built model before its weights load (a compressed student
    swaps in its fake-quantized layers there, whose state includes activation ranges).
    """
    from paretone.models import build_model  # local: the package __init__ imports this module

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
        header = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc}); re-create the checkpoint") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{config_path}: not a {CHECKPOINT_FORMAT} checkpoint; re-create it with this paretone"
        )
    try:
        config = config_from_dict(header["model"])
        labels = tuple(str(x) for x in header["labels"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    if len(labels) != config.num_classes:
        raise CheckpointError(f"{config_path}: {len(labels)} labels for {config.num_classes} classes")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights_path}: not a readable safetensors file ({exc}); re-create the checkpoint"
        ) from None
    model = build_model(config)
    if prepare is not None:
        model = prepare(model)
    _load_state(model, tensors, weights_path)
    return LoadedModel(model.eval(), config, labels, dict(header.get("metadata") or {}))


def _load_state(model: AudioModel, tensors: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise CheckpointError(f"{source}: weights do not match config.json ({detail})")
    model.load_state_dict(tensors, strict=True)
