"""Audio data: dataset layouts, splits, waveform loading and the log-mel front-end.

Knows nothing of compression or search.
"""

from paretone.audio._catalog import (
    AUDIO_SUFFIXES,
    FSDD_HINT,
    LAYOUTS,
    Catalog,
    Clip,
    default_data_path,
    open_dataset,
)
from paretone.audio._events import Event, read_events, write_events
from paretone.audio._frontend import (
    IMPLEMENTATIONS,
    DFTMelSpectrogram,
    FrontEndConfig,
    LogMel,
    mel_interpolation,
)
from paretone.audio._loading import (
    Encode,
    SplitSets,
    WaveformSet,
    class_indices,
    fit_length,
    load_splits,
    load_waveforms,
    read_recording,
    read_waveform,
)
from paretone.audio._splits import Splits, make_splits
from paretone.audio._survey import MAX_CLIP_SECONDS, AudioFormat, audio_format

__all__ = [
    "AUDIO_SUFFIXES",
    "FSDD_HINT",
    "IMPLEMENTATIONS",
    "LAYOUTS",
    "MAX_CLIP_SECONDS",
    "AudioFormat",
    "Catalog",
    "Clip",
    "DFTMelSpectrogram",
    "Encode",
    "Event",
    "FrontEndConfig",
    "LogMel",
    "SplitSets",
    "Splits",
    "WaveformSet",
    "audio_format",
    "class_indices",
    "default_data_path",
    "fit_length",
    "load_splits",
    "load_waveforms",
    "make_splits",
    "mel_interpolation",
    "open_dataset",
    "read_events",
    "read_recording",
    "read_waveform",
    "write_events",
]
