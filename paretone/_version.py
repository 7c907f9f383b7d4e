"""The installed package's version, stamped into every file paretone writes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paretone")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
