"""rulealign: compile a written policy into a model that follows it, and prove it per clause."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rulealign")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"


def package_versions(names: tuple[str, ...], missing: str | None = None) -> dict[str, str]:
    """Installed versions of ``names`` (for provenance); a missing package maps to
    ``missing``, or is left out when that is None."""
    from importlib.metadata import PackageNotFoundError

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            if missing is not None:
                out[name] = missing
    return out
