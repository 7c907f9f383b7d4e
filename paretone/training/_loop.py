"""The supervised training loop: AdamW, warm-up + cosine schedule, early stop on validation.

Device-agnostic: the data stays on the CPU and each batch moves to the model's device (a GPU
worker's), augmentation draws from a CPU generator, and the trained model returns to the CPU, where
it is exported and measured.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from rich.progress import Progress

from paretone.audio import WaveformSet
from paretone.models import AudioModel
from paretone.tasks import CLASSIFICATION, Task
from paretone.training._augment import augment_waveforms, spec_augment
from paretone.training._config import TrainConfig


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    validation_score: float  # the task's metric
    seconds: float


@dataclass
class FitResult:
    best_epoch: int
    best_validation_score: float  # the task's metric at the best epoch
    seconds: float
    history: list[EpochRecord] = field(default_factory=list)


@torch.inference_mode()
def predict_logits(model: AudioModel, data: WaveformSet, batch_size: int = 256) -> torch.Tensor:
    """Logits on the CPU, whatever device the model is on."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    logits = torch.cat([model(chunk.to(device)).cpu() for chunk in data.waveforms.split(batch_size)])
    model.train(was_training)
    return logits


def score(model: AudioModel, data: WaveformSet, task: Task = CLASSIFICATION) -> float:
    """The task's metric of ``model`` on ``data`` (in [0, 1], higher is better)."""
    return task.score(predict_logits(model, data), data.targets)


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, batch indices) -> loss


def fit(
    model: AudioModel,
    train: WaveformSet,
    validation: WaveformSet,
    config: TrainConfig,
    *,
    task: Task = CLASSIFICATION,
    loss_fn: LossFn | None = None,
    progress: Progress | None = None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Train ``model`` in place on ``device`` and leave it at its best validation epoch (eval mode,
    back on the CPU).

    ``loss_fn`` receives the logits (on ``device``) and the batch's indices into ``train`` (so a
    distillation loss can look up cached teacher logits); the default is the task's loss,
    label-smoothed. Epochs are selected by the task's metric on ``validation``.
    """
    if loss_fn is None:

        def loss_fn(logits: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
            targets = train.targets[batch].to(logits.device)
            return task.loss(logits, targets, label_smoothing=config.label_smoothing)

    torch.manual_seed(config.seed)
    model.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _schedule(step, total_steps, warmup)
    )
    bar = progress.add_task("training", total=total_steps) if progress else None
    result = FitResult(best_epoch=0, best_validation_score=-1.0, seconds=0.0)
    best_state = copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_start, loss_sum = time.perf_counter(), 0.0
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for batch in order.split(config.batch_size):
            waves = augment_waveforms(train.waveforms[batch], config, generator).to(device)
            features = spec_augment(model.features(waves), config, generator)
            loss = loss_fn(model.classify(features), batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(batch)
            if progress is not None:
                progress.advance(bar)
        val = score(model, validation, task)
        record = EpochRecord(epoch, loss_sum / len(train), val, time.perf_counter() - epoch_start)
        result.history.append(record)
        if val > result.best_validation_score:
            result.best_epoch, result.best_validation_score = epoch, val
            best_state = copy.deepcopy(model.state_dict())
        if progress is not None:
            line = (
                f"epoch {epoch}/{config.epochs} loss {record.train_loss:.3f} val {task.metric} "
                f"{val:.1%} (best {result.best_validation_score:.1%}) {record.seconds:.0f} s"
            )
            progress.update(bar, description=line)
            progress.console.print(line)  # a lasting line per epoch, also in logs without a terminal
        if epoch - result.best_epoch >= config.patience_epochs:
            break
    if progress is not None:
        progress.update(bar, completed=total_steps)
    model.load_state_dict(best_state)
    model.to("cpu")
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
