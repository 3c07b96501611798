"""The summary JSON of a cell study as the checks and the README read it.

:func:`check_summary` validates the fields that checks read (a clear error naming the
first missing or mistyped field); :func:`readme_block` renders a task's README block
(every stated difference with its intervals) and :func:`rows_block` its docs block (the
AUC of every row) from the summary; ``benchmarks/label_efficiency_blocks.py`` writes
both and a test regenerates them from the committed JSON and compares them byte for
byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jetfm_coffea.errors import ConfigError

__all__ = ["block_of", "check_summary", "direction", "readme_block", "replace_block", "rows_block"]


def _slug(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


#: Fields (and types) of the summary JSON that checks read.
_SUMMARY_FIELDS = {"task": str, "scale": str, "test_events": int, "aggregate": list,
                   "differences": list, "scores": (str, type(None))}  # fmt: skip
_ROW_FIELDS = {"mode": str, "encoder": (str, type(None)), "label_fraction": float,
               "n_labels": int, "n_seeds": int, "auc_mean": float, "auc_ci68": list,
               "auc_ci95": list}  # fmt: skip
_DIFF_FIELDS = {"a": dict, "b": dict, "delta_auc": float, "ci68": list, "ci95": list}


def check_summary(summary: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first field of a summary JSON that is missing
    or of the wrong type (the format the checks and the README tables read)."""

    def need(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
        for name, kind in fields.items():
            if name not in obj:
                raise ConfigError(f"summary {where}: missing field {name!r}")
            value = obj[name]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                continue
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ConfigError(f"summary {where}: field {name!r} is {value!r}")
            if (
                isinstance(value, list)
                and name.startswith(("auc_ci", "ci"))
                and (len(value) != 2 or not value[0] <= value[1])
            ):
                raise ConfigError(f"summary {where}: interval {name!r} is {value!r}")

    need(summary, _SUMMARY_FIELDS, "")
    for i, row in enumerate(summary["aggregate"]):
        need(row, _ROW_FIELDS, f"aggregate[{i}]")
    for i, d in enumerate(summary["differences"]):
        need(d, _DIFF_FIELDS, f"differences[{i}]")
        for side in ("a", "b"):
            need(d[side], {"mode": str, "encoder": (str, type(None)), "label_fraction": float},
                 f"differences[{i}].{side}")  # fmt: skip


# ---------------------------------------------------------------------------- README tables


def direction(ci95: Sequence[float]) -> int:
    """+1 if a difference's 95% interval lies above 0, -1 if below, 0 if it holds 0: the one
    rule by which the tables and the goal checks call a difference resolved."""
    lo, hi = ci95
    return 1 if lo > 0 else (-1 if hi < 0 else 0)


def _ci(v: Sequence[float]) -> str:
    return f"[{v[0]:.4f}, {v[1]:.4f}]"


def _label(frac: float) -> str:
    return "all" if frac == 1.0 else f"{frac * 100:g}%"


def _who(x: dict[str, Any]) -> str:
    return f"{x['mode']}" + (f" ({x['encoder']})" if x["encoder"] else "")


def _progress(s: dict[str, Any]) -> str:
    if s.get("complete", True):
        return ""
    return (
        f" **In progress:** {s['groups_done']} of {s['groups_planned']} groups (arm x label "
        "count) finished, in order of value; the study resumes from its committed cells."
    )


def _header(s: dict[str, Any]) -> str:
    return (
        f"**`{s['task']}`, scale `{s['scale']}`**: {s['test_events']:,} test events "
        f"({', '.join(f'{k} {v:,}' for k, v in s['test_per_class'].items())}; test set "
        f"`{s['test_set_hash']}`), code `{s['code_version']}`"
        + (f", BDTs `{s['reference_version']}`." if s.get("reference_version") else ".")
    )


def _pending(task: str) -> str:
    return (
        f"*`{task}`: pending.* The `cpu` study has not run with this code yet; "
        f"`benchmarks/results/label_efficiency_cpu_{task}.json` will hold it, and this "
        "block is regenerated from it (`benchmarks/label_efficiency_blocks.py`; "
        "`tests/finetune/test_cell_study.py` compares).\n"
    )


def readme_block(summary: dict[str, Any] | None, task: str) -> str:
    """The README's block of ``task``: every stated difference with its 68% and 95%
    intervals (``None``: pending); the AUC rows are :func:`rows_block`'s, in the docs."""
    if summary is None:
        return _pending(task)
    s = summary
    lines = [
        _header(s) + " ΔAUC: a − b, mean over seeds, 68% and 95% intervals (paired "
        "bootstrap over test events + seed spread); resolved when the 95% interval excludes "
        "0." + _progress(s) + " The AUC of every row: docs/label-efficiency.md.",
        "",
        *_goal_lines(s),
        "| difference (a − b) | labels a / b | ΔAUC | 68% | 95% | resolved at 95% |",
        "|---|---|---|---|---|---|",
    ]
    for d in s["differences"]:
        verdict = {1: "a better", -1: "b better", 0: "no"}[direction(d["ci95"])]
        lines.append(
            f"| {_who(d['a'])} − {_who(d['b'])} | {_label(d['a']['label_fraction'])} / "
            f"{_label(d['b']['label_fraction'])} | {d['delta_auc']:+.4f} | {_ci(d['ci68'])} | "
            f"{_ci(d['ci95'])} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


#: The goal comparisons the README states in words: (a, b) as (mode, main encoder?, labels).
GOALS = (
    ("fine-tuned with 10% of the labels ≥ scratch with all", ("finetune", True, 0.1),
     ("scratch", False, 1.0)),
    ("fine-tuned with 10% ≥ the BDT on engineered features with all",
     ("finetune", True, 0.1), ("bdt-features", False, 1.0)),
    ("fine-tuned with 30% ≥ scratch with all", ("finetune", True, 0.3),
     ("scratch", False, 1.0)),
)  # fmt: skip


def _goal_lines(s: dict[str, Any]) -> list[str]:
    """One line per goal comparison present in the summary: met (95% interval above 0),
    not met (below 0: by how much, with the interval) or not resolved."""
    main = s.get("main_encoder", "ssl")

    def side(x: dict[str, Any], want: tuple[str, bool, float]) -> bool:
        mode, encoded, frac = want
        return (
            x["mode"] == mode
            and x["encoder"] == (main if encoded else None)
            and abs(x["label_fraction"] - frac) < 1e-9
        )

    lines = []
    for words, a, b in GOALS:
        found = [d for d in s["differences"] if side(d["a"], a) and side(d["b"], b)]
        if not found:
            continue
        d = found[0]
        verdict = {1: "**met**", -1: "**not met**", 0: "**not resolved**"}[direction(d["ci95"])]
        lines.append(
            f"- Goal ({main}) {words}: {verdict}, ΔAUC {d['delta_auc']:+.4f}, 95% {_ci(d['ci95'])}."
        )
    return [*lines, ""] if lines else []


def rows_block(summary: dict[str, Any] | None, task: str) -> str:
    """The docs' block of ``task``: the AUC of every row (mode, encoder, label count) with
    its intervals, labels used, seeds and chosen hyper-parameters (``None``: pending)."""
    if summary is None:
        return _pending(task)
    s = summary
    lines = [
        _header(s) + " AUC: mean over seeds, 68% and 95% intervals (paired bootstrap over "
        "test events + seed spread)." + _progress(s),
        "",
        "| mode | encoder | labels | labels used (train + val) | seeds | AUC | 68% | 95% "
        "| hyper-parameters |",
        "|---|---|---:|---:|---:|---|---|---|---|",
    ]  # fmt: skip
    for r in s["aggregate"]:
        hyper = ", ".join(f"{k} {_slug(v)}" for k, v in r["hyper"].items() if k != "arch")
        edge = " (edge)" if r["tuning_at_edge"] else ""
        lines.append(
            f"| {r['mode']} | {r['encoder'] or '–'} | {_label(r['label_fraction'])} | "
            f"{r['n_labels']:,} ({r['n_train']:,} + {r['n_val']:,}) | {r['n_seeds']} | "
            f"{r['auc_mean']:.4f} | {_ci(r['auc_ci68'])} | {_ci(r['auc_ci95'])} | "
            f"{hyper}{edge} |"
        )
    return "\n".join(lines) + "\n"


def replace_block(text: str, marker: str, block: str) -> str:
    """``text`` with the block between ``<!-- marker:begin -->`` and ``<!-- marker:end -->``
    replaced by ``block`` (:class:`ConfigError` when the markers are missing)."""
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    if begin not in text or end not in text:
        raise ConfigError(f"no block {marker!r} (markers {begin.strip()} ... {end})")
    head, rest = text.split(begin, 1)
    return head + begin + block + end + rest.split(end, 1)[1]


def block_of(text: str, marker: str) -> str:
    """The block between the ``marker`` markers of ``text``."""
    begin, end = f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"
    if begin not in text or end not in text:
        raise ConfigError(f"no block {marker!r}")
    return text.split(begin, 1)[1].split(end, 1)[0]
