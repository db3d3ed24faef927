"""Pausing the cyclic garbage collector around bulk work on a policy graph."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large graph is built or checked.

    Building 400k triples, or tens of thousands of conflicts, allocates millions of objects
    that all stay alive; every collection the allocations trigger rescans them for nothing
    (measured at 10k rules: 15% of the RDF build, 30% of conflict finding). Nothing built
    there forms reference cycles to collect.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
