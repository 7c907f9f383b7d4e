"""New student architectures are distilled once per teacher and shared by every trial that uses them."""

from __future__ import annotations

import pytest
import torch

from paretone.compress import Recipe, StudentArchitecture, load_student
from paretone.evaluators import TrialEvaluator
from paretone.evaluators._students import STUDENTS_DIR, distilled_student

pytestmark = pytest.mark.slow


def test_a_new_student_is_distilled_once_cached_beside_the_teacher_and_fine_tuned(tiny_teacher, tmp_path):
    evaluator = TrialEvaluator(tiny_teacher, threads=2)
    architecture = StudentArchitecture("lstm", {"hidden": [8]}, epochs=1)
    recipe = Recipe.of(architecture)
    result = evaluator.fine_tune(recipe.to_dict(), epochs=1, out_dir=tmp_path / "trial")
    assert 0.0 <= result.score <= 1.0 and result.params < 3000
    student, loaded_recipe = load_student(tmp_path / "trial")
    assert student.config.family == "lstm" and loaded_recipe == recipe
    (entry,) = (tiny_teacher / "cache" / STUDENTS_DIR).iterdir()
    weights = entry / "weights.safetensors"
    stamp = weights.stat().st_mtime_ns

    evaluator._students.clear()  # a new worker: from the teacher's cache, not trained again
    logits = evaluator._logits
    again = distilled_student(architecture, evaluator.context, logits)
    assert weights.stat().st_mtime_ns == stamp
    first = distilled_student(architecture, evaluator.context, logits)
    pairs = zip(again.state_dict().values(), first.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)

    weights.write_bytes(b"not a safetensors file")  # a damaged entry is trained again, not fatal
    rebuilt = distilled_student(architecture, evaluator.context, logits)
    assert rebuilt.config == again.config
    assert weights.read_bytes()[:8] != b"not a sa"  # replaced by the retrained weights
    gru = StudentArchitecture("gru", {"hidden": [8]}, epochs=1)
    other = distilled_student(gru, evaluator.context, logits)
    assert other.config.family == "gru" and len(list((tiny_teacher / "cache" / STUDENTS_DIR).iterdir())) == 2
