"""paretone: hardware-aware compression search for audio neural networks.

``paretone.train``, ``paretone.calibrate``, ``paretone.search`` and ``paretone.pick`` do what the
commands of the same names do (see ``paretone.api``); they are imported on first use, so
``import paretone`` stays light.
"""

from typing import Any

from paretone._version import __version__

_API = ("train", "calibrate", "search", "pick")


def __getattr__(name: str) -> Any:
    if name in _API:
        from paretone import api

        return getattr(api, name)
    raise AttributeError(f"module 'paretone' has no attribute {name!r}")


__all__ = ["__version__", *_API]
