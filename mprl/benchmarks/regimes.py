"""`mprl bench regimes RUN`: did the regime diagnosis predict the better fine-tuning family?

Reads a finished run of a pipeline like tune_configs/regimes.yaml (each pretrained checkpoint
fine-tuned with each intervention family: `regime: pi0_centric`, `d_centric`, `auto`) from its
lineage and writes, per pretrained checkpoint, the predicted regime (the diagnosis its
fine-tuning phases recorded), the best π0-centric and the best D-centric score, and whether the
prediction held (Superior: π0-centric ≥ D-centric; Inferior: the reverse; Comparable: either
family is right by the paper's rule, so it is not counted). Scores are the fine-tuning phase's
selected checkpoint's normalised score, else its evaluation return. Output: regimes.csv,
regimes.md and regimes.png in the output folder. It runs nothing: the run is the experiment.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

COLUMNS = ["start", "algorithm", "dataset", "regime", "j_pi0", "j_data", "best_pi0_centric", "best_d_centric", "held", "score"]


def regime_rows(store: Any) -> list[dict[str, Any]]:
    """One row per pretrained checkpoint whose fine-tuning phases applied a family."""
    by_start: dict[str, dict[str, Any]] = {}
    for n in store.nodes():
        if not n.get("regime_json") or not n.get("result_json"):
            continue
        r = json.loads(n["regime_json"])
        iv = r.get("intervention")
        if not iv:
            continue  # diagnosed only: no family was applied
        result = json.loads(n["result_json"])
        kind = "normalized_score" if result.get("normalized_score") is not None else "evaluation_return"
        score = result.get(kind)
        start = r.get("checkpoint_id") or r["checkpoint"]
        parent = store.checkpoint(r["checkpoint_id"]) if r.get("checkpoint_id") else None
        row = by_start.setdefault(start, {
            "start": start, "algorithm": parent["algorithm"] if parent else "?", "dataset": r["dataset"], "regime": r["regime"],
            "j_pi0": r["diagnosis"]["j_pi0"]["mean"], "j_data": r["diagnosis"]["j_data"]["mean"],
            "best_pi0_centric": None, "best_d_centric": None, "score": kind,
        })
        key = f"best_{iv['family']}"
        if score is not None and (row[key] is None or score > row[key]):
            row[key] = score
    rows = list(by_start.values())
    for row in rows:
        a, b = row["best_pi0_centric"], row["best_d_centric"]
        if a is None or b is None or row["regime"] == "Comparable":
            row["held"] = None
        else:
            row["held"] = a >= b if row["regime"] == "Superior" else b >= a
    return rows


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.1f}" if isinstance(x, float) else "yes" if x is True else "no" if x is False else str(x)


def markdown(rows: list[dict[str, Any]], run_id: str) -> str:
    counted = [r for r in rows if r["held"] is not None]
    head = f"Regime predictions of run {run_id}: {sum(r['held'] for r in counted)} of {len(counted)} held (Comparable and incomplete rows not counted)."
    lines = [head, "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 2), 3.8))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["best_pi0_centric"] or 0 for r in rows], 0.4, label="best π0-centric")
    ax.bar([x + 0.2 for x in xs], [r["best_d_centric"] or 0 for r in rows], 0.4, label="best D-centric")
    ax.set_xticks(list(xs), [f"{r['algorithm']}\n{Path(r['dataset']).name}\n{r['regime']} ({_fmt(r['held'])})" for r in rows], fontsize=7)
    ax.set_ylabel(rows[0]["score"] if rows else "score")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench_regimes(args: argparse.Namespace) -> int:
    from mprl.errors import MprlError
    from mprl.lineage.store import find_run, open_lineage

    location = find_run(args.run, args.storage_path)
    with open_lineage(location) as store:
        rows = regime_rows(store)
        run_id = store.run()["run_id"]
    if not rows:
        raise MprlError(f"Run {run_id} has no finished phase that applied a regime family (regime: auto, pi0_centric or d_centric); "
                        "run tune_configs/regimes.yaml (or a pipeline like it) first")
    out = Path(args.output or Path(str(location)) / "regimes")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "regimes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    text = markdown(rows, run_id)
    (out / "regimes.md").write_text(text)
    plot(rows, out / "regimes.png")
    print(text + f"\nwritten: {out / 'regimes.csv'}, {out / 'regimes.md'}, {out / 'regimes.png'}")
    return 0


def add_parser(bsub: Any) -> None:
    b = bsub.add_parser("regimes", help="did the regime diagnosis predict the better fine-tuning family? (a finished run of tune_configs/regimes.yaml)")
    b.add_argument("run", metavar="RUN", help="a run id under --storage-path, or a run folder")
    b.add_argument("--storage-path", default="./mprl_results", help="where run folders are (default ./mprl_results)")
    b.add_argument("-o", "--output", metavar="DIR", help="folder for regimes.csv/.md/.png (default <run folder>/regimes)")
    b.set_defaults(func=bench_regimes)
