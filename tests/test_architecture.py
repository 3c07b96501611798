"""One-way imports: every module imports on its own, no import cycle, the layers hold.

The layering is declared once, as import-linter contracts in ``pyproject.toml``
(``[tool.importlinter]``); these tests run them, so the README's test command checks
them. grimp (import-linter's graph) sees function-local imports too, so a cycle dodged
with a function-local import still fails :func:`test_no_import_cycles`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter.contracts.layers import LayersContract

import jetfm_coffea
import jetfm_coffea.processors

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
ROOTS = ("jetfm_coffea",)

# Runs in a fresh interpreter: each module of the package is imported with none of the
# package's modules loaded before it (third-party libraries stay loaded: only the order
# of the package's own imports matters for a cycle), warnings are errors.
_IMPORT_EACH = """
import importlib, json, pkgutil, sys, warnings
roots = sys.argv[1].split(",")
names = set(roots)
for root in roots:
    pkg = importlib.import_module(root)
    names |= {m.name for m in pkgutil.walk_packages(pkg.__path__, root + ".")}
failures = {}
for name in sorted(names):
    for loaded in [m for m in sys.modules if m.split(".")[0] in roots]:
        del sys.modules[loaded]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        try:
            importlib.import_module(name)
        except BaseException as err:
            failures[name] = f"{type(err).__name__}: {err}"
            continue
print(json.dumps({"modules": sorted(names), "failures": failures}))
"""


def _package_root() -> Path:
    return Path(jetfm_coffea.__file__).resolve().parents[1]


def test_every_module_imports_first_in_a_fresh_interpreter():
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, ",".join(ROOTS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=_package_root(),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["failures"], "\n".join(f"{k}: {v}" for k, v in result["failures"].items())
    # the walk found the package (not an empty directory): layers top to bottom
    for name in ("jetfm_coffea.cli", "jetfm_coffea.jobs.shards", "jetfm_coffea.processors.shards"):
        assert name in result["modules"]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    adjacency = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(adjacency):
        if start in index:
            continue
        work = [(start, iter(adjacency[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(adjacency[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOTS, exclude_type_checking_imports=True, cache_dir=None)


def test_no_import_cycles():
    graph = _graph()
    cycles = _cycles(graph)
    detail = []
    for component in cycles:
        for importer in component:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported in component:
                    lines = graph.get_import_details(importer=importer, imported=imported)
                    where = ", ".join(str(d["line_number"]) for d in lines)
                    detail.append(f"{importer} -> {imported} (line {where})")
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_cycle_finder_finds_a_cycle():
    graph = _graph()
    graph.add_import(importer="jetfm_coffea.errors", imported="jetfm_coffea.tokens.config")
    pair = {"jetfm_coffea.errors", "jetfm_coffea.tokens.config"}  # tokens.config -> errors
    assert any(pair <= set(component) for component in _cycles(graph))


def test_import_linter_contracts_are_kept():
    # what `lint-imports` runs, in its own interpreter (it puts its cwd on sys.path)
    run = (
        "from importlinter.cli import lint_imports; "
        f"raise SystemExit(lint_imports(config_filename={str(PYPROJECT)!r}, no_cache=True, "
        "no_logo=True))"
    )
    done = subprocess.run(
        [sys.executable, "-c", run],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PYPROJECT.parent,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    kept = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(kept)} kept" in done.stdout


def _layers_contract() -> LayersContract:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (options,) = [c for c in config["contracts"] if c["id"] == "layers"]
    return LayersContract(
        name=options["name"],
        session_options={k: v for k, v in config.items() if k != "contracts"},
        contract_options={k: v for k, v in options.items() if k not in ("id", "name", "type")},
    )


@pytest.mark.parametrize(
    "importer, imported",
    [
        ("jetfm_coffea.pipelines.demo", "jetfm_coffea.cli.score_cmd"),  # the old back-door
        ("jetfm_coffea.shards.loader", "jetfm_coffea.train.data"),  # the old back-door
        ("jetfm_coffea.shards.store", "jetfm_coffea.jobs.shards"),
        ("jetfm_coffea.tokens.config", "jetfm_coffea.errors"),  # downward: allowed
    ],
)
def test_layers_contract_refuses_an_upward_import(importer, imported):
    graph = _graph()
    contract = _layers_contract()
    assert contract.check(graph, verbose=False).kept
    graph.add_import(importer=importer, imported=imported)
    upward = imported.split(".")[:2] != ["jetfm_coffea", "errors"]
    assert contract.check(graph, verbose=False).kept is not upward


def test_processors_are_analysed_where_they_are_imported_from():
    # the contracts see the same copy of the package that the tests import
    graph = _graph()
    assert "jetfm_coffea.processors.analysis" in graph.modules
    assert Path(jetfm_coffea.processors.__file__).parent.parent.parent == _package_root()


#: What a coffea worker loads to score: the scorer, the model and its run directory,
#: the token path. A worker that scores never needs the training code.
SCORE_MODULE_BUDGET = 30
_LOADED_BY = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "jetfm_coffea")))
"""


def test_scoring_loads_no_training_code():
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_BY, "jetfm_coffea.score"],
        capture_output=True, text=True, timeout=300, cwd=_package_root(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "jetfm_coffea.model.rundir" in loaded  # the walk saw the run-directory owner
    training = [m for m in loaded if m.split(".")[1:2] in (["train"], ["finetune"])]
    assert not training, f"import jetfm_coffea.score loads training code: {training}"
    assert len(loaded) <= SCORE_MODULE_BUDGET, loaded


def test_scoring_imports_no_training_module_even_inside_functions():
    # the graph sees function-local imports too (the forbidden contract in pyproject.toml
    # runs on it in test_import_linter_contracts_are_kept); a planted edge is found
    graph = _graph()
    for stage in ("jetfm_coffea.train", "jetfm_coffea.finetune"):
        assert not graph.chain_exists("jetfm_coffea.score", stage, as_packages=True)
    graph.add_import(
        importer="jetfm_coffea.score.artifact", imported="jetfm_coffea.train.pretrain_run"
    )
    assert graph.chain_exists("jetfm_coffea.score", "jetfm_coffea.train", as_packages=True)


def test_no_module_reaches_another_package_through_importlib():
    """A module name given to importlib as a string is invisible to the contracts: only
    lazy loads of a package's own modules are allowed (the CLI's commands, the shard
    package's loader); shards/views.py once reached augment this way."""
    offenders = []
    root = Path(jetfm_coffea.__file__).parent
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        if "import_module" not in source:
            continue
        package = ".".join(("jetfm_coffea", *path.relative_to(root).parent.parts))
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value.split(":")[0]
                if name.startswith("jetfm_coffea.") and not name.startswith(package + "."):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {node.value}")
    assert not offenders, "\n".join(offenders)


def test_a_module_exports_only_what_it_owns():
    """``__all__`` of a module (not a package's ``__init__``, which gathers its public
    names) lists names it defines, never names it imports: one owner per name."""
    offenders = []
    root = Path(jetfm_coffea.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        imported, exported = set(), []
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                imported |= {a.asname or a.name for a in node.names}
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                exported = [e.value for e in getattr(node.value, "elts", [])]
        offenders += [f"{path.relative_to(root)}: {n}" for n in exported if n in imported]
    assert not offenders, "re-exported (import them from their owner):\n" + "\n".join(offenders)


def public_definitions(root: Path) -> dict[str, list[str]]:
    """Public top-level name -> the modules under ``root`` that define it (def, class or a
    constant in capitals). Package data (``_data/``: the Open Data maintenance scripts an
    installed package carries) holds scripts, not modules, and is not read."""
    defined: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "_data" in path.relative_to(root).parts:
            continue
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()]
            for name in names:
                if not name.startswith("_"):
                    defined.setdefault(name, []).append(path.relative_to(root).as_posix())
    return defined


def test_a_public_name_has_one_owner():
    """One meaning per name: no two modules define the same public name (``main`` of an
    entry point aside). Twenty-three names once had two owners (two ``Objective`` classes,
    two ``resolve_device``, a CLI ``finetune`` beside the trainer's)."""
    root = Path(jetfm_coffea.__file__).parent
    twice = {
        name: paths
        for name, paths in public_definitions(root).items()
        if len(set(paths)) > 1 and name != "main"
    }
    assert not twice, "\n".join(f"{n}: {', '.join(sorted(set(p)))}" for n, p in twice.items())


def test_the_owner_check_finds_a_second_definition(tmp_path):
    (tmp_path / "a.py").write_text("def resolve_device():\n    pass\n")
    (tmp_path / "b.py").write_text("RATE = 1\ndef resolve_device(d):\n    pass\n_private = 2\n")
    (tmp_path / "_data").mkdir()
    (tmp_path / "_data" / "script.py").write_text("RATE = 2\n")
    assert public_definitions(tmp_path) == {
        "resolve_device": ["a.py", "b.py"],
        "RATE": ["b.py"],
    }
