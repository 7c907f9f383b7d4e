"""The way out: the Pareto front and its plots, ``pick`` (export, measurement beside the baselines,
model card), ``run-model`` on clips and on streams, and sound events. Reads studies through
``search``; writes only into folders it claims.
"""

from paretone.ship._card import model_card
from paretone.ship._classify import classify_files
from paretone.ship._events import detect_events, event_scores
from paretone.ship._pareto import HISTORY_CSV, PLOT_HTML, PLOT_PNG, ParetoReport, pareto_report
from paretone.ship._pick import (
    CARD_FILE,
    MODEL_FILE,
    PICK_ENTRIES,
    REPORT_FILE,
    OverBudgetError,
    claim_pick_folder,
    pick,
)
from paretone.ship._plot import ParetoPlot, Reference
from paretone.ship._report import (
    PICK_FORMAT,
    PICKED,
    TEACHER_FP32,
    TEACHER_INT8,
    TEACHER_INT8_CAREFUL,
    Attempt,
    MeasuredModel,
    PickReport,
)
from paretone.ship._select import PickSettings, Selection, pick_budget, select
from paretone.ship._stream import StreamSummary, stream_recording

__all__ = [
    "CARD_FILE",
    "HISTORY_CSV",
    "MODEL_FILE",
    "PICKED",
    "PICK_ENTRIES",
    "PICK_FORMAT",
    "PLOT_HTML",
    "PLOT_PNG",
    "REPORT_FILE",
    "TEACHER_FP32",
    "TEACHER_INT8",
    "TEACHER_INT8_CAREFUL",
    "Attempt",
    "MeasuredModel",
    "OverBudgetError",
    "ParetoPlot",
    "ParetoReport",
    "PickReport",
    "PickSettings",
    "Reference",
    "Selection",
    "StreamSummary",
    "claim_pick_folder",
    "classify_files",
    "detect_events",
    "event_scores",
    "model_card",
    "pareto_report",
    "pick",
    "pick_budget",
    "select",
    "stream_recording",
]
