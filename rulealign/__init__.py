"""rulealign: compile a written policy into a model that follows it, and prove it per clause."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rulealign")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
