"""Open Open Data files remotely with timeouts and retries; report failures per file.

uproot reads ``root://`` through fsspec-xrootd (the optional extra ``xrootd``: imported lazily,
with an install hint when missing) and ``https://`` through fsspec's HTTP filesystem.
Local paths and ``file://`` URLs work too, which is how this module is tested offline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from jetfm_coffea._optional import import_optional
from jetfm_coffea.errors import InputFileError
from jetfm_coffea.opendata.errors import UnreachableFilesError

__all__ = [
    "FileReport",
    "ReadOptions",
    "check_file",
    "check_fileset",
    "ensure_handler",
    "open_file",
]

log = logging.getLogger(__name__)

#: errors worth another attempt (network, timeouts); anything else fails at once
RETRYABLE: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)


@dataclass(frozen=True)
class ReadOptions:
    """How to open remote files.

    timeout: seconds uproot waits for a remote answer; retries: extra attempts after the
    first on network errors; backoff: seconds before the first retry, doubled each time;
    treename: the tree a file must contain.
    """

    timeout: float = 30.0
    retries: int = 2
    backoff: float = 1.0
    treename: str = "Events"

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0, got {self.backoff}")


@dataclass(frozen=True)
class FileReport:
    """Outcome of opening one file: ``ok`` with its event count, or the ``error``."""

    url: str
    ok: bool
    attempts: int
    nevents: int | None = None
    error: str | None = None
    dataset: str | None = None


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def ensure_handler(url: str) -> None:
    """Import what uproot needs to read ``url``; ImportError with an install hint if missing."""
    scheme = _scheme(url)
    if scheme in ("root", "xroot", "xrootd"):
        import_optional("fsspec_xrootd", extra="xrootd", package="fsspec-xrootd")
    elif scheme in ("http", "https"):
        import_optional("aiohttp")


def _open_once(url: str, options: ReadOptions) -> Any:
    import uproot

    return uproot.open(url, timeout=options.timeout)


def open_file(
    url: str,
    options: ReadOptions | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Open ``url`` with uproot, retrying network errors; returns the ROOT directory.

    Raises :class:`~jetfm_coffea.errors.InputFileError` naming the URL, the number of
    attempts and the last reason; ImportError (with install hint) for a missing handler.
    """
    options = options or ReadOptions()
    ensure_handler(url)
    retries = 0 if _scheme(url) == "file" else options.retries  # local errors are final
    attempts = 0
    delay = options.backoff
    while True:
        attempts += 1
        try:
            return _open_once(url, options)
        except RETRYABLE as err:
            if attempts > retries:
                raise InputFileError(
                    url, f"unreachable after {attempts} attempt(s): {_reason(err)}"
                ) from err
            log.warning("attempt %d on %s failed (%s); retrying", attempts, url, _reason(err))
            sleep(delay)
            delay *= 2
        except Exception as err:  # not a ROOT file, truncated...: retrying will not help
            raise InputFileError(url, _reason(err)) from err


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_file(
    url: str,
    options: ReadOptions | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> FileReport:
    """Open ``url`` and read its tree's entry count; never raises for a bad file."""
    options = options or ReadOptions()
    counter = {"n": 0}

    def counting_sleep(seconds: float) -> None:
        counter["n"] += 1
        sleep(seconds)

    try:
        with open_file(url, options, sleep=counting_sleep) as root:
            if options.treename not in root:
                return FileReport(
                    url, False, counter["n"] + 1, error=f"no tree {options.treename!r}"
                )
            tree = root[options.treename]
            _read_last_entry(tree)
            return FileReport(url, True, counter["n"] + 1, nevents=tree.num_entries)
    except InputFileError as err:
        return FileReport(url, False, counter["n"] + 1, error=err.reason)
    except Exception as err:  # a truncated file opens but fails on its last basket
        return FileReport(url, False, counter["n"] + 1, error=f"truncated? {_reason(err)}")


def _read_last_entry(tree: Any) -> None:
    """Read the last entry of the first branch: a truncated file fails here, not mid-run."""
    n = tree.num_entries
    if n and tree.keys():
        tree[tree.keys()[0]].array(entry_start=n - 1, entry_stop=n, library="np")


def _files_of(entry: Any) -> tuple[list[str], Callable[[Iterable[str]], Any]]:
    """URLs of one fileset entry's ``files`` and a function rebuilding it from a subset."""
    files = entry["files"] if isinstance(entry, Mapping) and "files" in entry else entry
    if isinstance(files, Mapping):
        return list(files), lambda keep: {u: files[u] for u in keep}
    if isinstance(files, str):
        return [files], list
    return list(files), list


def check_fileset(
    fileset: Mapping[str, Any],
    *,
    skip_bad: bool = True,
    options: ReadOptions | None = None,
    max_workers: int = 8,
    on_report: Callable[[FileReport], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    raise_if_none: bool = True,
) -> tuple[dict[str, Any], list[FileReport]]:
    """Try to open every file of a coffea fileset; return (reachable fileset, reports).

    Each unreachable file is reported (``on_report`` is called for every file, reports are
    returned in fileset order). With ``skip_bad`` the reachable files are kept and datasets
    left without files are dropped; otherwise, and whenever nothing at all is reachable,
    :class:`UnreachableFilesError` lists every failure (``raise_if_none=False``
    returns an empty fileset instead when nothing is reachable).
    """
    options = options or ReadOptions()
    jobs: list[tuple[str, str]] = [
        (name, url) for name, entry in fileset.items() for url in _files_of(entry)[0]
    ]

    def run(job: tuple[str, str]) -> FileReport:
        name, url = job
        report = replace(check_file(url, options, sleep=sleep), dataset=name)
        if on_report is not None:
            on_report(report)
        return report

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs) or 1))) as pool:
        reports = list(pool.map(run, jobs))
    failures = [r for r in reports if not r.ok]
    if failures and (not skip_bad or (raise_if_none and len(failures) == len(reports))):
        raise UnreachableFilesError(failures, total=len(reports))
    good = {(r.dataset, r.url) for r in reports if r.ok}
    out: dict[str, Any] = {}
    for name, entry in fileset.items():
        urls, rebuild = _files_of(entry)
        keep = [u for u in urls if (name, u) in good]
        if not keep:
            continue
        if isinstance(entry, Mapping) and "files" in entry:
            out[name] = {**entry, "files": rebuild(keep)}
        else:
            out[name] = rebuild(keep)
    for report in failures:
        log.warning("skipping unreachable file %s: %s", report.url, report.error)
    return out, reports
