"""The device's speed during a search: probed before the first candidate and every few minutes.

Screening compares a candidate's predicted latency with the budget. A device running 9% slower than
when it was calibrated, or slowing its int8 kernels and not its fp32 ones (README, Hardware
models), would let through candidates that break the budget now and screen out ones that fit. So a
search on the device itself probes its speed (``hw_models.probe_speed``, about 0.6 s) before it
screens anything, then again before a batch of proposals whenever the last probe is
``interval_s`` old, and screens every candidate at the speed the latest probe read: each kernel
scaled by its group's factor, as ``calibrate --validate`` and ``pick`` do.

Probing beside the search's own busy workers reads the device, not their load: a sentinel's time is
the median run of its quietest pass, which a few preempted runs do not move.
``benchmarks/probe_beside_training.py`` (2 real workers fine-tuning, 6 rounds) puts the busy probe
over the idle one at 0.99x overall, and 40 students' screening predictions at 0.99x, within the
probe's own round-to-round noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from paretone.errors import ConfigError
from paretone.hw_models import DeviceProfile, SpeedProbe, probe_speed, unprobeable_reason

PROBE_INTERVAL_S = 180.0  # a speed phase of this machine kind lasts minutes


@dataclass(frozen=True)
class SpeedLog:
    """What probing cost a search and what it read (``overall``: the median group's factor)."""

    probes: int = 0
    seconds: float = 0.0
    lowest: float | None = None  # the fastest overall factor read (1.0: as at calibration)
    highest: float | None = None
    not_probed: str | None = None  # why the search screened at the calibrated speed, if it did


class SpeedWatch:
    """The latest speed probe of one device, taken again when it is ``interval_s`` old.

    ``probe`` takes a probe (``probe_speed`` of the device's profile); its errors (ConfigError for a
    profile whose probe files are gone) propagate. Not thread-safe: the driver's loop owns it.
    """

    def __init__(
        self,
        *,
        probe: Callable[[], SpeedProbe] | None,
        not_probed: str | None = None,
        interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``probe=None`` with ``not_probed`` (why): a watch that never probes, so the search screens
        at the calibrated speed and its summary says why."""
        if (probe is None) == (not_probed is None):
            raise ConfigError("a SpeedWatch takes a probe or the reason it has none, not both or neither")
        if not interval_s > 0:
            raise ConfigError(f"the speed probe's interval must be positive seconds, got {interval_s!r}")
        self._probe, self.not_probed = probe, not_probed
        self.interval_s, self._clock = interval_s, clock
        self._latest: SpeedProbe | None = None
        self._taken_at = 0.0
        self._overall: list[float] = []
        self._seconds = 0.0

    @classmethod
    def of_profile(
        cls, profile: DeviceProfile, folder: str | os.PathLike[str], *, interval_s: float = PROBE_INTERVAL_S
    ) -> SpeedWatch:
        """A watch over the profile's device (one that never probes if this machine cannot)."""
        reason = unprobeable_reason(profile)
        if reason is not None:
            return cls(probe=None, not_probed=reason)
        return cls(probe=lambda: probe_speed(profile, folder), interval_s=interval_s)

    def current(self) -> SpeedProbe | None:
        """The latest probe, probing first if there is none or it is ``interval_s`` old; None for a
        watch that never probes."""
        if self._probe is None:
            return None
        now = self._clock()
        if self._latest is None or now - self._taken_at >= self.interval_s:
            self._latest = self._probe()
            self._taken_at = self._clock()
            self._overall.append(self._latest.overall)
            self._seconds += self._latest.seconds
        return self._latest

    def log(self) -> SpeedLog:
        if not self._overall:
            return SpeedLog(not_probed=self.not_probed)
        return SpeedLog(len(self._overall), self._seconds, min(self._overall), max(self._overall))
