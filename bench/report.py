"""Medians over repetitions and the side-by-side table, each target's value with
its ratio to chinwag's (or another ``baseline``)."""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field

from scenarios import Scenario

# ---------------------------------------------------------------- summaries

# (key, label, format, higher_is_better) per scenario kind
FANOUT_METRICS = [
    ("deliveries_per_s", "deliveries/s", "{:,.0f}", True),
    ("cpu_us_per_delivery", "server CPU µs/delivery", "{:.2f}", False),
    ("p50_ms", "latency p50 ms", "{:.1f}", False),
    ("p99_ms", "latency p99 ms", "{:.1f}", False),
    ("max_ms", "latency max ms", "{:.1f}", False),
    ("rss_per_conn_kib", "server RSS KiB/conn", "{:.1f}", False),
    ("server_busy", "server busy (cores)", "{:.2f}", None),
    ("loadgen_busy", "load gen busy (cores)", "{:.2f}", None),
]
IDLE_METRICS = [
    ("connect_per_s", "connects/s", "{:,.0f}", True),
    ("rss_per_conn_kib", "server RSS KiB/conn", "{:.1f}", False),
    ("connect_cpu_us_per_conn", "server CPU µs/connect", "{:,.0f}", False),
    ("open_at_end", "open at end", "{:,.0f}", True),
    ("server_hold_cpu_s", "server CPU s while idle", "{:.3f}", False),
    ("loadgen_busy", "load gen busy (cores)", "{:.2f}", None),
]
#: idle scenarios over several server processes (Scenario.servers > 1) add these
MULTI_METRICS = [
    ("max_process_conns", "most conns on 1 process", "{:,.0f}", None),
    ("min_process_conns", "fewest conns on 1 process", "{:,.0f}", None),
    ("loadgen_cpu_s", "load gen CPU s (all)", "{:.1f}", None),
]


def metrics_for(sc: Scenario) -> list[tuple]:
    if sc.kind == "fanout":
        return FANOUT_METRICS
    return IDLE_METRICS + (MULTI_METRICS if sc.servers > 1 else [])


@dataclass
class Cell:
    reps: list[dict] = field(default_factory=list)
    skipped: str | None = None

    def ok_reps(self) -> list[dict]:
        return [r for r in self.reps if r.get("ok")]

    def median(self, key: str) -> float | None:
        vals = [r[key] for r in self.ok_reps() if r.get(key) is not None]
        return statistics.median(vals) if vals else None


def summarise(results: dict[str, dict[str, Cell]], scenarios: list[Scenario]) -> dict:
    """{scenario: {target: {metric: median}}} for the JSON record."""
    out: dict = {}
    for sc in scenarios:
        metrics = metrics_for(sc)
        out[sc.name] = {}
        for tname, cell in results.get(sc.name, {}).items():
            out[sc.name][tname] = {
                "ok_reps": len(cell.ok_reps()),
                "reps": len(cell.reps),
                "skipped": cell.skipped,
                **{k: cell.median(k) for k, *_ in metrics},
            }
    return out


def print_table(
    results: dict[str, dict[str, Cell]],
    scenarios: list[Scenario],
    target_names: list[str],
    baseline: str = "chinwag",
    file=sys.stdout,
) -> None:
    """Side-by-side medians; each cell is `value (xratio to baseline)`."""

    def w(s: str = "") -> None:
        print(s, file=file)

    for sc in scenarios:
        cells = results.get(sc.name, {})
        metrics = metrics_for(sc)
        reps = max((len(c.reps) for c in cells.values()), default=0)
        w(f"\n== {sc.name}: {sc.describe()} (median of {reps})")
        base = cells.get(baseline)
        cols = [t for t in target_names if t in cells]
        width = 24
        w(f"{'metric':<26}" + "".join(f"{t:>{width}}" for t in cols))
        for key, label, fmt, _hib in metrics:
            row = f"{label:<26}"
            for t in cols:
                c = cells[t]
                if c.skipped:
                    txt = "not run" if c.skipped.startswith("not run") else "skipped"
                elif not c.ok_reps():
                    txt = "FAILED"
                else:
                    v = c.median(key)
                    txt = "—" if v is None else fmt.format(v)
                    bv = base.median(key) if base and base.ok_reps() and not base.skipped else None
                    if v is not None and t != baseline and _hib is not None:
                        txt += f" ({v / bv:.2f}x)" if bv else " (—)"
                row += f"{txt:>{width}}"
            w(row)
        for t in cols:
            c = cells[t]
            bad = [r for r in c.reps if not r.get("ok")]
            for r in bad:
                w(f"  ! {t} rep {r.get('rep')}: {r.get('failure')}")
            if c.skipped and c.skipped.startswith("not run"):
                w(f"  - {t}: {c.skipped}")
            lb = c.median("loadgen_busy") if c.ok_reps() else None
            if lb is not None and lb > 0.9 and sc.kind == "fanout":
                w(
                    f"  ~ {t}: load generator >=90% busy: its deliveries/s and latency are "
                    "a floor (generator-bound); server CPU µs/delivery is still exact"
                )
            elif lb is not None and lb > 0.9:
                w(f"  ~ {t}: load generator >=90% busy while connecting: connects/s is a floor")
            if c.ok_reps() and sc.servers > 1:
                spreads = [r["conns_per_process"] for r in c.ok_reps()]
                w(f"  {t}: connections per server process: {spreads}")
    w(f"\n(ratio in brackets = value ÷ {baseline}'s value; (—) = no {baseline} number to compare)")
