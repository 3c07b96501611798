"""Summarise a benchmarks/gpu_check.sh run into RESULTS.md (stages, tests, figures, targets).

python benchmarks/gpu_report.py OUT_DIR --seconds 412
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

#: Issue 19's goals on one H100/H200-class GPU, loader-fed, >= 1M-event store.
TARGETS = {
    "small events/s (loader-fed)": 200_000,
    "small MFU": 0.15,
    "base MFU": 0.30,
    "loader-fed / resident": 0.95,
    "fresh / stored views, small (issue 14)": 0.90,
}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}"
    return "—" if value is None else str(value)


def _pretrain_section(data: dict[str, Any]) -> list[str]:
    meta, rows = data["meta"], data["results"]
    lines = [
        "## Pretraining (`bench_pretrain.py`)",
        "",
        f"Device {meta.get('device')}, torch {meta.get('torch')}, {meta.get('cpu_count')} CPUs; "
        f"store {meta.get('store_events', 0):,} events (written in "
        f"{meta.get('store_write_s', 0):.0f} s); mean valid tokens "
        f"{meta.get('mean_valid_tokens', 0):.2f} of {meta.get('tokens_per_event_padded')}; "
        f"measured bf16 peak {_fmt(meta.get('bf16_peak_tflops_measured'))} TFLOP/s.",
        "",
        "| size | variant | feed | events/s | / baseline | / resident | loader wait | "
        "useful TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['variant']} | {r['feed']} | {r['events_per_s']:,.0f} | "
            f"{_fmt(r['ratio_to_baseline'])} | {_fmt(r.get('ratio_to_resident'))} | "
            f"{_fmt(r['loader_wait_frac'])} | {_fmt(r.get('useful_tflops'))} | "
            f"{_fmt(r.get('mfu'))} |"
        )
    lines += ["", *_targets(rows), ""]
    return lines


def _targets(rows: list[dict[str, Any]]) -> list[str]:
    def best(size: str, feed_prefix: str) -> dict[str, Any] | None:
        cand = [r for r in rows if r["size"] == size and r["feed"].startswith(feed_prefix)]
        return max(cand, key=lambda r: r["events_per_s"]) if cand else None

    small_loader, small_res = best("small", "loader"), best("small", "resident")
    base_res = best("base", "resident")
    found = {
        "small events/s (loader-fed)": small_loader and small_loader["events_per_s"],
        "small MFU": small_loader and small_loader.get("mfu"),
        "base MFU": base_res and base_res.get("mfu"),
        "loader-fed / resident": small_loader
        and small_res
        and small_loader["events_per_s"] / small_res["events_per_s"],
        "fresh / stored views, small (issue 14)": next(
            (
                r["fresh_over_stored"]
                for r in rows
                if r["size"] == "small" and "fresh_over_stored" in r
            ),
            None,
        ),
    }
    out = ["| goal | target | measured (best variant) | met |", "|---|---|---|---|"]
    for name, target in TARGETS.items():
        value = found[name]
        met = "—" if value is None else ("yes" if value >= target else "no")
        out.append(f"| {name} | {_fmt(float(target))} | {_fmt(value)} | {met} |")
    return out


def _score_section(out: Path) -> list[str]:
    lines = ["## Scoring (`bench_score.py`)", ""]
    rows = [_read_json(out / n) for n in ("bench_score.json", "bench_score_bf16.json")]
    rows = [r for r in rows if r]
    if not rows:
        return [*lines, "no result (see gpu_check.log)", ""]
    lines += [
        "| model | device | precision | events | ev/s without | ev/s with | ratio | "
        "variations: cost / nominal (limit) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        var = "—"
        if "variation_cost_over_nominal" in r:
            var = f"{r['variation_cost_over_nominal']} ({r['variation_cost_limit']})"
        lines.append(
            f"| {r['size']} | {r['device']} | {r.get('precision', 'auto')} | {r['events']} | "
            f"{r['events_per_s_without']:,.0f} | {r['events_per_s_with']:,.0f} | {r['ratio']} | "
            f"{var} |"
        )
    fp32 = rows[0]
    lines += [
        "",
        f"- issue 17 target: score column on one GPU >= 0.8 of the rate without: "
        f"{fp32['ratio']} -> {'met' if fp32['ratio'] >= 0.8 else 'NOT met'}",
    ]
    if "variation_cost_over_nominal" in fp32:
        ok = fp32["variation_cost_over_nominal"] <= fp32["variation_cost_limit"]
        lines.append(
            f"- issue 17 target: scoring with {len(fp32['variations'])} variations costs "
            f"<= {fp32['variation_cost_limit']} x nominal: "
            f"{fp32['variation_cost_over_nominal']} -> {'met' if ok else 'NOT met'}"
        )
    return [*lines, ""]


def _pytest_summary(out: Path) -> list[str]:
    path = out / "pytest.txt"
    if not path.is_file():
        return ["## Tests", "", "no pytest output", ""]
    text = path.read_text()
    finals = re.findall(
        r"^=*\s*(.*(?:passed|failed|error|skipped).* in [\d.]+s.*?)\s*=*$", text, re.M
    )
    failures = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)))
    lines = ["## Tests", "", *[f"- {f}" for f in finals]]
    if failures:
        lines += ["", "Failed:", *[f"- `{f}`" for f in failures]]
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=int, default=0)
    args = ap.parse_args()
    out: Path = args.out
    env = (out / "env.txt").read_text() if (out / "env.txt").is_file() else "(no env.txt)"
    status = []
    if (out / ".status").is_file():
        status = [line.split("|") for line in (out / ".status").read_text().split()]
    lines = [
        "# GPU check (benchmarks/gpu_check.sh)",
        "",
        "```",
        env.strip(),
        "```",
        "",
        f"Whole check: {args.seconds} s.",
        "",
        "| stage | exit | seconds |",
        "|---|---|---|",
        *[
            f"| {name} | {rc}{' (time limit)' if rc in ('124', '137') else ''} | {s} |"
            for name, rc, s in status
        ],
        "",
        *_pytest_summary(out),
    ]
    pre = _read_json(out / "bench_pretrain.json")
    lines += _pretrain_section(pre) if pre else ["## Pretraining", "", "no result", ""]
    lines += _score_section(out)
    profile = out / "profile_pretrain.md"
    if profile.is_file():
        lines += ["## Profile", "", profile.read_text().replace("# ", "### ", 1)]
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
