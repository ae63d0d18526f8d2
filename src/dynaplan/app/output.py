"""How the commands print: progress-bar-safe lines, or nothing with --quiet."""

from __future__ import annotations

from collections.abc import Callable


def echo_for(quiet: bool) -> Callable[[str], object]:
    if quiet:
        return lambda *a, **k: None
    from tqdm.auto import tqdm

    return tqdm.write
