"""Helpers shared by the benchmark scripts: interleaved timing, JSON output, table rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jetfm_coffea._resources import cms_file

__all__ = ["interleaved", "load_average", "real_file", "write_result"]

#: The tests' shipped real CMS files (the 2012 ones are package data).
TEST_CMS = Path(__file__).resolve().parents[1] / "tests" / "data" / "cms"


def real_file(name: str) -> Path:
    """A real CMS file shipped with the project (``JETFM_TESTDATA`` overrides)."""
    return cms_file(name, search=(TEST_CMS,))


def interleaved(funcs: dict[str, Callable[[], Any]], repeat: int = 5) -> dict[str, float]:
    """Run each function ``repeat`` times, interleaved; return the best wall time of each.

    Interleaving makes the ratios robust on a shared, noisy machine.
    """
    best = {name: float("inf") for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def write_result(result: dict[str, Any], out: str | None) -> None:
    """Print the result as JSON and write it to ``out`` when given."""
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (recorded with every timing)."""
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return [float("nan")] * 3
