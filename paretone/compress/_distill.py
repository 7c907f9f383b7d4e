"""Knowledge distillation: the loss, and teacher logits computed once and cached on disk.

A search fine-tunes many students from one teacher on one dataset; re-running the teacher in
every trial would waste most of the compute, so its logits on the training set are cached in a
safetensors file keyed by a hash of the teacher's weights and of the data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from paretone._io import write_atomic
from paretone.audio import WaveformSet
from paretone.compress._recipe import Distillation
from paretone.models import AudioModel


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    distillation: Distillation,
) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross-entropy.

    The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al., 2015).
    """
    t, alpha = distillation.temperature, distillation.alpha
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return alpha * t * t * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


def _fingerprint(teacher: AudioModel, data: WaveformSet) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.waveforms.contiguous().numpy().tobytes())
    digest.update(data.targets.numpy().tobytes())
    return digest.hexdigest()[:32]


@torch.inference_mode()
def teacher_logits(
    teacher: AudioModel, data: WaveformSet, *, cache_dir: str | os.PathLike[str] | None = None
) -> torch.Tensor:
    """The teacher's logits on ``data`` (eval mode), read from or written to ``cache_dir``."""
    path = (
        Path(cache_dir) / f"teacher-logits-{_fingerprint(teacher, data)}.safetensors" if cache_dir else None
    )
    if path is not None and path.is_file():
        try:
            cached = load_file(str(path))["logits"]
            if cached.shape == (len(data), teacher.config.num_classes):
                return cached
        except (SafetensorError, OSError, KeyError):
            pass  # a damaged cache entry is recomputed and overwritten below
    was_training = teacher.training
    teacher.eval()
    logits = torch.cat([teacher(chunk) for chunk in data.waveforms.split(256)])
    teacher.train(was_training)
    if path is not None:
        write_atomic(path, lambda tmp: save_file({"logits": logits.contiguous()}, str(tmp)))
    return logits
