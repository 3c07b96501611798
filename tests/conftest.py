"""Shared fixtures: the real CMS files shipped with the project, tiny NanoAOD files written here."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from jetfm_coffea._resources import DIMUON_2012, SINGLEMU_2012, cms_file
from jetfm_coffea.cluster import Execution

#: Test data shipped with the project (provenance and SHA-256 in its README).
TEST_DATA = Path(__file__).resolve().parent / "data"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    has_cuda = any("gpu" in item.keywords for item in items) and _has_cuda()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_net = pytest.mark.skip(reason="needs internet access (set JETFM_NETWORK_TESTS=1)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "network" in item.keywords and not os.environ.get("JETFM_NETWORK_TESTS"):
            item.add_marker(skip_net)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny batches on a shared 2-core machine: torch threading only costs."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def real_cms_file(name: str) -> Path:
    """A shipped real CMS file (``JETFM_TESTDATA`` overrides); fails the test if absent."""
    try:
        return cms_file(name, search=(TEST_DATA / "cms",))
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def singlemu() -> Path:
    """10,000 real 2012 SingleMu collision events, slim NanoAOD."""
    return real_cms_file(SINGLEMU_2012)


@pytest.fixture(scope="session")
def ttbar2015() -> Path:
    """200 events of 2015 ttbar simulation, full NanoAOD."""
    return real_cms_file("nanoAOD_2015_CMS_Open_Data_ttbar.root")


@pytest.fixture(scope="session")
def ttbar_v5() -> Path:
    """1,000 events of ttbar simulation, NanoAODv5 (has FatJet)."""
    return real_cms_file("NanoAODv5_ttbar_1000.root")


@pytest.fixture(scope="session")
def nano_dimuon() -> Path:
    """40 real collision events, full NanoAOD."""
    return real_cms_file("nano_dimuon.root")


@pytest.fixture(scope="session")
def dimuon100k() -> Path:
    """100,000 real 2012 DoubleMuParked events, muons only."""
    return real_cms_file(DIMUON_2012)


def write_nanoaod(path: Path, columns: dict, n_events: int) -> Path:
    """Write a tiny NanoAOD-format TTree with uproot (``mktree``/``extend``, not RNTuple).

    ``columns`` maps collection names to dicts of per-event lists (jagged) and top-level
    branch names (MET_pt, ...) to flat lists; run/luminosityBlock/event are added.
    """
    import awkward as ak
    import numpy as np
    import uproot

    branches: dict = {
        "run": np.ones(n_events, np.uint32),
        "luminosityBlock": np.ones(n_events, np.uint32),
        "event": np.arange(1, n_events + 1, dtype=np.uint64),
    }
    for name, value in columns.items():
        if isinstance(value, dict):
            branches[name] = ak.zip(
                {
                    k: ak.values_astype(ak.Array(v), np.float32 if k != "tightId" else bool)
                    for k, v in value.items()
                }
            )
        else:
            branches[name] = np.asarray(value, np.float32)
    types = {}
    for k, v in branches.items():
        types[k] = v.type if isinstance(v, ak.Array) else v.dtype
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", types, counter_name=lambda name: f"n{name}")
        tree.extend(branches)
    return path


@pytest.fixture
def make_nanoaod(tmp_path):
    """Factory writing a tiny NanoAOD file into the test's tmp_path."""

    def make(columns: dict, n_events: int, name: str = "tiny.root") -> Path:
        return write_nanoaod(tmp_path / name, columns, n_events)

    return make


#: The shared re-simulation sample: hard events x showers per hard event.
RESIM_HARD, RESIM_K = 40, 3


@pytest.fixture(scope="session")
def resim_sample(tmp_path_factory):
    """40 generated Z + jets hard events, each showered 3 times (``--resim 3``, seed 4)."""
    from jetfm_coffea.generate import generate

    out = tmp_path_factory.mktemp("resim_gen")
    return generate("zjets", RESIM_HARD, sqrts=13000, seed=4, out=out, resim=RESIM_K, batch_size=20)


@pytest.fixture(scope="session")
def resim_store(tmp_path_factory, resim_sample):
    """The re-simulation sample as a shard store of 3 shards (chunks cut through groups)."""
    from jetfm_coffea.jobs.shards import build_store
    from jetfm_coffea.tokens import TokenConfig

    out = tmp_path_factory.mktemp("resim_store") / "store"
    summary = build_store(
        resim_sample.fileset(),
        out,
        execution=Execution(executor="iterative", chunksize=50),
        token_config=TokenConfig(),
    )
    assert summary.events_written == RESIM_HARD * RESIM_K
    return out


@functools.cache
def _event_tokens(path: Path, n_events: int | None = None):
    """EventTokens (with their raw objects) of the first ``n_events`` events of a NanoAOD file.

    Read once per (file, count) and session with the project's quiet NanoAOD schema and
    the default TokenConfig; callers must not modify the arrays in place.
    """
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema
    from jetfm_coffea.tokens import TokenConfig, build_tokens

    events = NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual"
    ).events()
    return build_tokens(events if n_events is None else events[:n_events], TokenConfig())


@pytest.fixture(scope="session")
def event_tokens():
    """``event_tokens(path, n_events=None)``: cached EventTokens of a file's first events."""
    return _event_tokens


#: The documentation pages (Markdown) whose examples the tests run.
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _doc_blocks(page: str, heading: str) -> dict[str, list[str]]:
    """The fenced code blocks of a section of ``docs/<page>`` (``heading`` to the next one)."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n{heading}")
    end = text.find("\n#", start + len(heading) + 2)
    section = text[start : end if end > 0 else None]
    out: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S):
        out.setdefault(lang, []).append(body)
    return out


@pytest.fixture(scope="session")
def doc_blocks():
    """``doc_blocks(page, heading) -> {language: [code, ...]}``: the docs' examples to run."""
    return _doc_blocks
