"""The installed package's version (written into checkpoints and stores)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("convention")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
