"""Sound events from a model's outputs over a recording, and their evaluation against strong labels.

Detection: a label is active at a step (a stream's frame, a sliding window) when the task decides it
present there (multi-label: its probability reaches the model's threshold for it); a median filter
over ``median_steps`` (``MEDIAN_MS`` of audio) removes flickers; each run of active steps is an
event from the start of its first step to the end of its last.
Evaluation uses sed_eval, DCASE's own implementation: event-based F1 (onsets within a 0.2 s
collar, offsets within 0.2 s or 20% of the event's length) and segment-based F1 (1 s segments).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from paretone.audio import Event

EVENT_COLLAR_S = 0.2
SEGMENT_S = 1.0
# The median filter's span: frame decisions flicker within a spoken digit (a few hundred ms), and
# DCASE baselines smooth over a few hundred ms too; a window model's steps are coarser already.
MEDIAN_MS = 250.0


def median_steps(median_ms: float, step_ms: float) -> int:
    """The odd number of steps nearest ``median_ms``; 1 (no filter) when a step is that long."""
    return max(1, round(median_ms / step_ms)) | 1


def detect_events(
    active: np.ndarray,
    step_end_samples: np.ndarray,
    *,
    step_samples: int,
    sample_rate: int,
    labels: Sequence[str],
    median_steps: int = 5,
) -> list[Event]:
    """Events of the decisions ``active`` (steps, labels) (see ``Task.decide``); each step covers the
    ``step_samples`` before its end."""
    from scipy.ndimage import median_filter

    if active.ndim != 2 or active.shape[1] != len(labels):
        raise ValueError("one decision column per label")
    if median_steps > 1 and len(active) >= median_steps:
        active = median_filter(active.astype(np.uint8), size=(median_steps, 1), mode="nearest").astype(bool)
    events = []
    for column, label in enumerate(labels):
        runs = np.flatnonzero(np.diff(np.concatenate([[0], active[:, column].astype(int), [0]])))
        for start, stop in zip(runs[::2], runs[1::2], strict=True):
            onset = max(0, int(step_end_samples[start]) - step_samples) / sample_rate
            events.append(Event(onset, int(step_end_samples[stop - 1]) / sample_rate, label))
    return sorted(events, key=lambda e: (e.onset_s, e.label))


def event_scores(
    reference: Mapping[str, Sequence[Event]], estimated: Mapping[str, Sequence[Event]], labels: Sequence[str]
) -> dict[str, float]:
    """Event-based and segment-based F1 (micro over labels), precision, recall and error rate, over
    every recording of ``reference`` (recording name -> events)."""
    import dcase_util
    import sed_eval

    event_based = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(labels), t_collar=EVENT_COLLAR_S, percentage_of_length=0.2
    )
    segment_based = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(labels), time_resolution=SEGMENT_S
    )
    for name, events in reference.items():
        ref = dcase_util.containers.MetaDataContainer([_row(name, e) for e in events])
        est = dcase_util.containers.MetaDataContainer([_row(name, e) for e in estimated.get(name, ())])
        event_based.evaluate(ref, est)
        segment_based.evaluate(ref, est)
    ev, seg = event_based.results_overall_metrics(), segment_based.results_overall_metrics()
    return {
        "event_f1": ev["f_measure"]["f_measure"],
        "event_precision": ev["f_measure"]["precision"],
        "event_recall": ev["f_measure"]["recall"],
        "event_error_rate": ev["error_rate"]["error_rate"],
        "segment_f1": seg["f_measure"]["f_measure"],
        "segment_error_rate": seg["error_rate"]["error_rate"],
    }


def _row(name: str, event: Event) -> dict[str, float | str]:
    return {
        "filename": Path(name).name,
        "event_label": event.label,
        "onset": event.onset_s,
        "offset": event.offset_s,
    }
