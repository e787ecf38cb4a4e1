"""`mprl lineage show|export` and `mprl curves` on lineage stores written through the store's API.

The run is a realistic branching one, without Ray:

    offline (td3_bc, seeds 0 1, 10,000 updates)
    ├── ck 50% (seed 0) ── online.b0 (td3, 5,000 env steps) ── ck best ── sac (4,000 env steps)
    └── ck 100% (seed 1) ─┬ online.b1 (td3, 5,000 env steps)
                          └ opt (TD3+OPT, hybrid, 6,000 env steps, stage marks at 1,000 / 2,000)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mprl.cli import main
from mprl.lineage import LineageStore
from mprl.lineage.curves import curve_data
from mprl.lineage.plots import write_curves
from mprl.lineage.render import export_dot, export_json, tree_text

RUN_ID = "hopper-demo-20261121-210000"
SPEC = {
    "name": "hopper-demo",
    "phases": [
        {"name": "offline", "algorithm": "td3_bc", "tune": {"seeds": [0, 1], "metric": "normalized_score", "mode": "max"}},
        {"name": "online", "algorithm": "td3", "init_from": "offline"},
        {"name": "sac", "algorithm": "sac", "init_from": "online"},
        {"name": "opt", "algorithm": "opt", "init_from": "offline"},
    ],
}


def _node(node_id: str, phase: str, ordinal: int, algorithm: str, paradigm: str, unit: str, budget: int,
          parent: str | None = None, branch: str | None = None) -> dict:
    return {"node_id": node_id, "run_id": RUN_ID, "phase": phase, "ordinal": ordinal, "branch": branch,
            "parent_checkpoint_id": parent, "algorithm": algorithm, "paradigm": paradigm, "env": "Hopper-v5",
            "dataset": "mprl/hopper/medium-v0" if paradigm != "online" else None, "budget_unit": unit,
            "budget_value": budget, "config_hash": f"cfg-{node_id}", "experiment_path": node_id, "status": "succeeded",
            "started_at": 1.0e9}


def _train(store: LineageStore, run_dir: Path, node: dict, seeds: list[int], scores: dict[int, list[float]],
           select: dict[tuple[int, int], str], extra: dict | None = None) -> dict[tuple[int, int], str]:
    """Record trials, metrics (both axes) and one checkpoint per iteration; mark `select[(seed, it)]`."""
    store.upsert_node(node)
    online = node["budget_unit"] == "env_steps"
    ids = {}
    for seed in seeds:
        trial_id = f"{node['node_id']}_{seed}"
        tdir = run_dir / node["node_id"] / trial_id
        store.record_trial(trial_id, node["node_id"], seed, None, "TERMINATED", str(tdir), {"seed": seed})
        rows = []
        n = len(scores[seed])
        for it, score in enumerate(scores[seed], start=1):
            x = node["budget_value"] * it // n
            rows.append({"training_iteration": it, "num_updates_lifetime": 5 * x if online else x,
                         "num_env_steps_lifetime": x if online else 0, "evaluation_return": 30.0 * score,
                         "normalized_score": score, "time_total_s": float(it), **(extra or {})})
        store.record_metrics(trial_id, node["node_id"], rows)
        for r in rows:
            cid = store.record_checkpoint(run_id=RUN_ID, node=node, trial_id=trial_id,
                                         path=str(tdir / f"checkpoint_{r['training_iteration']:06d}"), metrics=r)
            ids[(seed, r["training_iteration"])] = cid
            if (seed, r["training_iteration"]) in select:
                store.mark_selected(cid, select[(seed, r["training_iteration"])])
    return ids


def build_run(storage: Path) -> dict[str, str]:
    """The branching run of the module docstring; returns the checkpoint ids that seed phases."""
    run_dir = storage / RUN_ID
    with LineageStore(run_dir) as store:
        store.create_run(RUN_ID, "hopper-demo", SPEC, str(storage))
        store.set_run_status("running")
        off = _node("offline", "offline", 0, "td3_bc", "offline", "updates", 10_000)
        ck = _train(store, run_dir, off, [0, 1], {0: [20.0, 48.1, 45.0, 50.2], 1: [25.0, 40.0, 55.0, 62.4]},
                    {(0, 2): "at 50%", (1, 4): "best"})
        c50, c100 = ck[(0, 2)], ck[(1, 4)]
        b0 = _node("online.b0", "online", 1, "td3", "online", "env_steps", 5_000, c50, "b0")
        ckb0 = _train(store, run_dir, b0, [0, 1], {0: [50.0, 60.0, 71.0], 1: [48.0, 58.0, 66.0]}, {(0, 3): "best"})
        b1 = _node("online.b1", "online", 1, "td3", "online", "env_steps", 5_000, c100, "b1")
        _train(store, run_dir, b1, [0, 1], {0: [60.0, 64.0, 69.5], 1: [62.0, 61.0, 68.0]}, {(0, 3): "best"})
        sac = _node("sac", "sac", 2, "sac", "online", "env_steps", 4_000, ckb0[(0, 3)])
        ck_sac = _train(store, run_dir, sac, [0], {0: [70.0, 74.5]}, {(0, 2): "best"})
        opt = _node("opt", "opt", 3, "opt", "hybrid", "env_steps", 6_000, c100)
        _train(store, run_dir, opt, [0], {0: [61.0, 58.0, 75.0, 80.3]}, {(0, 4): "best"},
               extra={"pretrain_start_env_steps": 1000, "finetune_start_env_steps": 2000})
        for node_id, src in (("online.b0", c50), ("online.b1", c100), ("sac", ckb0[(0, 3)]), ("opt", c100)):
            algo = store.node(node_id)["algorithm"]
            summary = f"actor 4/4 tensors copied into {algo}" + (' (critic "qf" kept random)' if algo == "sac" else "")
            store.record_transfer(node_id, src, str(run_dir / "x"), algo, summary,
                                  {"possible": True, "copied": {"actor": 4}, "problems": []})
        store.record_video(ck_sac[(0, 2)], str(run_dir / "videos" / "sac.mp4"), env="Hopper-v5", steps=1000, episode_return=2300.0)
        store.record_video(c100, str(run_dir / "videos" / "offline.mp4"), env="Hopper-v5", steps=1000, episode_return=1800.0)
        store.set_run_status("succeeded")
    return {"c50": c50, "c100": c100, "cb0": ckb0[(0, 3)], "csac": ck_sac[(0, 2)]}


@pytest.fixture(autouse=True)
def _no_git(monkeypatch):
    """The store stamps records with the git commit (two `git` calls per record): a constant keeps these tests fast."""
    monkeypatch.setattr("mprl.lineage.store.code_version", lambda: "0.1.0+test")


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    storage = tmp_path / "mprl_results"
    return storage, build_run(storage)


def _open(storage: Path) -> LineageStore:
    return LineageStore(storage / RUN_ID, readonly=True)


# ---- text tree


def _indent(line: str) -> int:
    """Column where a line's content starts, after the tree's connectors."""
    return len(line) - len(line.lstrip(" │├└─"))


def _parent(lines: list[str], i: int) -> str:
    """The nearest node or checkpoint line above line i with a smaller indent."""
    for j in range(i - 1, -1, -1):
        if _indent(lines[j]) < _indent(lines[i]) and " · " in lines[j] and not lines[j].lstrip(" │").startswith(("trials", "transfer")):
            return lines[j]
    raise AssertionError(f"no parent for {lines[i]!r}")


def _line(lines: list[str], start: str) -> int:
    hits = [i for i, ln in enumerate(lines) if ln.lstrip(" │├└─◆").startswith(start)]
    assert len(hits) == 1, (start, hits)
    return hits[0]


def test_tree_text_structure_and_numbers(run):
    storage, ck = run
    with _open(storage) as store:
        text = tree_text(store)
    lines = text.splitlines()
    assert lines[0].startswith(f"run {RUN_ID} (hopper-demo) · succeeded · 5 phase runs · 26 checkpoints, 6 selected · 2 videos")
    off = _line(lines, "offline —")
    assert lines[off] == "offline — phase offline · td3_bc (offline) · 10,000 updates · succeeded · best score 62.4"
    assert lines[off + 1].endswith("trials: 2 (seeds 0, 1) · videos: 1")
    c50, c100 = _line(lines, ck["c50"]), _line(lines, ck["c100"])
    assert lines[c50].endswith(f"◆ {ck['c50']} · 5,000 updates (50%) · score 48.1 · seed 0 · selected: at 50%")
    assert lines[c100].endswith(f"◆ {ck['c100']} · 10,000 updates (100%) · score 62.4 · seed 1 · selected: best · 1 video")
    b0, b1, opt, sac = (_line(lines, s) for s in ("online.b0 —", "online.b1 —", "opt —", "sac —"))
    assert lines[b0].endswith(f"online.b0 — phase online · td3 (online) · 5,000 env steps · succeeded · best score 71.0 · from {ck['c50']} · branch b0")
    assert "opt (hybrid) · 6,000 env steps · succeeded · best score 80.3" in lines[opt]
    assert "sac (online) · 4,000 env steps · succeeded · best score 74.5" in lines[sac]
    # parentage: node → its checkpoint → the node it seeded, each one level (4 columns) deeper
    assert _parent(lines, c50) == lines[off] and _parent(lines, c100) == lines[off]
    assert _parent(lines, b0) == lines[c50] and _parent(lines, b1) == lines[c100] and _parent(lines, opt) == lines[c100]
    assert ck["cb0"] in _parent(lines, sac) and _parent(lines, _line(lines, ck["cb0"])) == lines[b0]
    assert [_indent(lines[i]) for i in (off, c50, b0, sac, c100, b1, opt)] == [0, 4, 8, 16, 4, 8, 8]
    assert off < c50 < b0 < sac < c100 < b1 < opt  # children in ordinal order, each under its parent
    assert lines[b0 + 2].lstrip(" │") == "transfer → td3: actor 4/4 tensors copied into td3"
    assert "trials: 1 (seed 0) · videos: 1" in lines[sac + 1]
    assert text.count("◆") == 6  # selected checkpoints only, not all 26


def test_tree_text_returns_failures_and_outside_seed(tmp_path):
    """No reference scores: the best *return*; mode min from the spec; a failed node's error; an outside seed."""
    run_dir = tmp_path / "r1"
    with LineageStore(run_dir) as store:
        store.create_run("r1", "r1", {"phases": [{"name": "ft", "tune": {"mode": "min"}}]}, str(tmp_path))
        node = _node("ft", "ft", 0, "td3", "online", "env_steps", 2_000, parent="/elsewhere/checkpoint_000010")
        node["run_id"] = "r1"
        store.upsert_node(node)
        store.record_trial("ft_0", "ft", 0, "kappa=0.3", "ERROR", None, error="boom")
        store.record_metrics("ft_0", "ft", [{"training_iteration": i, "num_env_steps_lifetime": 1000 * i, "evaluation_return": r}
                                            for i, r in ((1, 1234.5), (2, 900.25))])
        store.set_node_status("ft", "failed", error="RuntimeError: CUDA out of memory\n  at line 3")
        text = tree_text(store)
    assert "ft — phase ft · td3 (online) · 2,000 env steps · failed · best return 900.2 · from /elsewhere/checkpoint_000010 (outside this run)" in text
    assert "trials: 1 (seed 0) · sweep: kappa=0.3 · 1 failed · videos: 0" in text
    assert "error: RuntimeError: CUDA out of memory" in text and "line 3" not in text


# ---- JSON and DOT


def test_export_json_round_trip(run):
    storage, ck = run
    with _open(storage) as store:
        d = export_json(store)
        full = export_json(store, metrics=True)
    assert json.loads(json.dumps(d)) == d
    assert d["run"]["spec"] == SPEC and d["run"]["run_id"] == RUN_ID and "spec_json" not in d["run"]
    assert {k: len(d[k]) for k in ("nodes", "trials", "checkpoints", "transfers", "videos")} == \
        {"nodes": 5, "trials": 8, "checkpoints": 26, "transfers": 4, "videos": 2}
    assert "metrics" not in d and len(full["metrics"]) == 26
    nodes = {n["node_id"]: n for n in d["nodes"]}
    assert {k: n["parent_node"] for k, n in nodes.items()} == \
        {"offline": None, "online.b0": "offline", "online.b1": "offline", "sac": "online.b0", "opt": "offline"}
    assert nodes["sac"]["parent_checkpoint_id"] == ck["cb0"] and nodes["online.b0"]["branch"] == "b0"
    assert nodes["offline"]["best"] == {"value": 62.4, "kind": "normalized_score", "checkpoint_id": ck["c100"], "trial_id": "offline_1"}
    transfers = {t["node_id"]: t for t in d["transfers"]}
    assert transfers["opt"]["report"] == {"possible": True, "copied": {"actor": 4}, "problems": []}
    selected = {c["checkpoint_id"]: c["selection"] for c in d["checkpoints"] if c["selected"]}
    assert selected[ck["c50"]] == "at 50%" and len(selected) == 6
    assert next(c for c in d["checkpoints"] if c["checkpoint_id"] == ck["c50"])["metrics"]["num_updates_lifetime"] == 5000
    opt_rows = [m for m in full["metrics"] if m["node_id"] == "opt"]
    assert opt_rows[0]["data"]["finetune_start_env_steps"] == 2000


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's parser on pyparsing 3.3
def test_export_dot_is_valid_graphviz(run, tmp_path):
    pydot = pytest.importorskip("pydot")
    storage, ck = run
    with _open(storage) as store:
        dot = export_dot(store)
    graphs = pydot.graph_from_dot_data(dot)
    assert graphs and len(graphs) == 1
    g = graphs[0]
    unq = lambda s: s.strip('"')
    edges = {(unq(e.get_source()), unq(e.get_destination())) for e in g.get_edges()}
    assert {("node:offline", f"ck:{ck['c50']}"), ("node:offline", f"ck:{ck['c100']}"), (f"ck:{ck['c50']}", "node:online.b0"),
            (f"ck:{ck['c100']}", "node:online.b1"), (f"ck:{ck['c100']}", "node:opt"), ("node:online.b0", f"ck:{ck['cb0']}"),
            (f"ck:{ck['cb0']}", "node:sac"), ("node:sac", f"ck:{ck['csac']}")} <= edges
    assert len(edges) == 10  # 6 phase → selected checkpoint, 4 checkpoint → seeded phase
    nodes = {unq(n.get_name()): n for n in g.get_nodes()}
    assert sum(k.startswith("node:") for k in nodes) == 5 and sum(k.startswith("ck:") for k in nodes) == 6
    assert unq(nodes["node:offline"].get("label")) == r"offline\ntd3_bc · offline\nHopper-v5\n10,000 updates\nsucceeded · best score 62.4"
    assert r'(critic \"qf\" kept random)' in dot  # quotes escaped: the parse above would fail otherwise
    if shutil.which("dot"):  # Graphviz itself, where installed
        subprocess.run(["dot", "-Tsvg", "-o", str(tmp_path / "g.svg")], input=dot, text=True, check=True, timeout=30)


# ---- curves


def test_curve_data_panels_and_offsets(run):
    storage, _ = run
    with _open(storage) as store:
        data = curve_data(store)
    assert [p["axis"] for p in data["panels"]] == ["num_env_steps", "num_updates"]
    env, upd = ({n["node_id"]: n for n in p["nodes"]} for p in data["panels"])
    assert {k: (n["offset"], n["end"]) for k, n in env.items()} == \
        {"online.b0": (0, 5000), "online.b1": (0, 5000), "sac": (5000, 9000), "opt": (0, 6000)}
    assert {k: (n["offset"], n["end"]) for k, n in upd.items()} == {"offline": (0, 10000)}
    assert env["sac"]["trials"][0]["points"][0][0] == 7000  # 2,000 env steps into sac, after online.b0's 5,000
    assert env["opt"]["stages"] == [[1000.0, "online pre-training"], [2000.0, "fine-tuning"]]


def _png_shape(path: Path) -> tuple[int, ...]:
    from matplotlib.image import imread

    img = imread(path)
    ink = (img[..., :3] < 0.9).any(axis=-1).mean()
    assert ink > 0.02, f"{path} is (nearly) blank"
    return img.shape


def test_write_curves_png_html(run, tmp_path):
    storage, ck = run
    with _open(storage) as store:
        paths = write_curves(store, tmp_path / "out")
        data = json.loads(json.dumps(curve_data(store)))
    assert set(paths) == {"png", "html", "json"} and all(p.stat().st_size > 0 for p in paths.values())
    h2, w2, _ = _png_shape(paths["png"])
    # a run with only the offline phase has one panel: the two-panel figure is about twice as tall
    single = tmp_path / "single"
    with LineageStore(storage / RUN_ID, readonly=True) as src, LineageStore(single) as store1:
        store1.create_run("single", "single", SPEC, str(tmp_path))
        store1.upsert_node(src.node("offline"))
        for t in src.trials("offline"):
            store1.record_trial(t["trial_id"], "offline", t["seed"], None, t["status"], None)
            store1.record_metrics(t["trial_id"], "offline", [json.loads(m["data_json"]) for m in src.metrics(trial_id=t["trial_id"])])
        h1, _, _ = _png_shape(write_curves(store1, tmp_path / "out1")["png"])
    assert 1.6 < h2 / h1 < 2.4 and w2 > 1.2 * h1

    page = paths["html"].read_text()
    assert page.count("<svg ") == 2 and 'data-axis="num_env_steps"' in page and 'data-axis="num_updates"' in page
    blob = re.search(r'<script type="application/json" id="mprl-curve-data">(.*?)</script>', page, re.DOTALL).group(1)
    assert json.loads(blob) == data
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}  # only the SVG namespace
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page, re.IGNORECASE)
    for c in ck.values():  # every seeding/selected checkpoint is a hover target whose tooltip starts with its id
        assert re.search(rf'data-checkpoint="{c}"[^>]*><title>{c}\n', page)
    assert "online pre-training" in page and "sac (sac)" in page  # stage mark, phase boundary
    assert json.loads(paths["json"].read_text())["panels"][1]["nodes"][0]["node_id"] == "offline"


# ---- CLI


def test_cli_commands(run, tmp_path, capsys, monkeypatch):
    storage, _ = run
    run_dir = storage / RUN_ID
    monkeypatch.chdir(tmp_path)  # RUN alone is looked up under ./mprl_results
    assert main(["lineage", "show", RUN_ID]) == 0
    out = capsys.readouterr().out
    with _open(storage) as store:
        assert out == tree_text(store)
    assert main(["lineage", "show", str(run_dir), "--storage-path", "/nonexistent"]) == 0  # a folder path needs no storage
    assert capsys.readouterr().out == out

    assert main(["lineage", "export", RUN_ID, "--storage-path", str(storage), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["run"]["run_id"] == RUN_ID
    assert main(["lineage", "export", RUN_ID, "--format", "dot", "-o", "out/g.dot"]) == 0
    assert capsys.readouterr().out.strip() == "wrote out/g.dot"
    assert (tmp_path / "out/g.dot").read_text().startswith('digraph "lineage ')
    assert main(["lineage", "export", RUN_ID, "--format", "json", "--metrics", "-o", "out/l.json"]) == 0
    assert len(json.loads((tmp_path / "out/l.json").read_text())["metrics"]) == 26

    assert main(["curves", RUN_ID]) == 0
    printed = capsys.readouterr().out
    for name in ("curves.png", "curves.html", "curves.json"):
        assert (run_dir / "curves" / name).is_file() and f"mprl_results/{RUN_ID}/curves/{name}" in printed
    assert main(["curves", str(run_dir), "-o", "plots"]) == 0
    assert (tmp_path / "plots" / "curves.html").is_file()


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("mprl: error: ") and "Traceback" not in captured.err and not captured.out
    return captured.err


def test_cli_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "mprl_results"
    assert "No run 'nope'" in _error(capsys, ["lineage", "show", "nope"])
    (tmp_path / "plain").mkdir()
    assert "is not an mprl run folder" in _error(capsys, ["lineage", "export", str(tmp_path / "plain")])
    LineageStore(storage / "never-started").close()  # schema, no run record
    assert "has no run record" in _error(capsys, ["lineage", "show", "never-started"])
    with LineageStore(storage / "empty") as store:
        store.create_run("empty", "empty", SPEC, str(storage))
    assert "Run empty (created) has no phase runs" in _error(capsys, ["lineage", "show", "empty"])
    assert "has no phase runs" in _error(capsys, ["lineage", "export", "empty", "--format", "dot"])
    with LineageStore(storage / "fresh") as store:
        store.create_run("fresh", "fresh", SPEC, str(storage))
        store.upsert_node({**_node("offline", "offline", 0, "td3_bc", "offline", "updates", 1000), "status": "running"})
    assert "no evaluated iterations" in _error(capsys, ["curves", "fresh"])
    assert main(["lineage", "show", "fresh"]) == 0 and "no score yet" in capsys.readouterr().out
    (storage / "corrupt").mkdir()
    (storage / "corrupt" / "lineage.sqlite").write_bytes(b"not a database" * 100)
    assert "Cannot read the lineage" in _error(capsys, ["lineage", "show", "corrupt"])
    with pytest.raises(SystemExit) as e:
        main(["lineage", "export", "fresh", "--format", "svg"])
    assert e.value.code == 2 and "invalid choice: 'svg'" in capsys.readouterr().err


def test_ensemble_node_has_every_member_as_parent(run, tmp_path):
    """A node started from K checkpoints at once (`as: ensemble`): K parent edges, member k labelled,
    in the store, the tree, JSON, DOT and the web page's graph; a lineage without `node_parents`
    (written before it) reads as one parent per node."""
    import sqlite3

    from mprl.serve.catalog import lineage_graph

    storage, ck = run
    c0, c1 = ck["c100"], ck["c50"]  # best first: member 0 is the node's parent_checkpoint_id
    with LineageStore(storage / RUN_ID) as store:
        ens = {**_node("ens", "ens", 4, "off2on", "hybrid", "env_steps", 1_000, c0),
               "parents": [(c0, "ensemble member 0"), (c1, "ensemble member 1")]}
        store.upsert_node(ens)
        store.upsert_node({**ens, "parents": [(c0, "ensemble member 0"), (c1, "ensemble member 1")]})  # idempotent
    with _open(storage) as store:
        assert [(e["member"], e["checkpoint_id"], e["label"]) for e in store.parents("ens")] == \
            [(0, c0, "ensemble member 0"), (1, c1, "ensemble member 1")]
        assert [e["checkpoint_id"] for e in store.parents("sac")] == [ck["cb0"]]  # one parent: from nodes
        text, d, dot, graph = tree_text(store), export_json(store), export_dot(store), lineage_graph(store)
    lines = text.splitlines()
    full = _line(lines, "ens —")
    assert lines[full].endswith(f"from {c0} (ensemble member 0), {c1} (ensemble member 1)")
    assert _parent(lines, full) == lines[_line(lines, c0)]
    ref = next(i for i, ln in enumerate(lines) if "↳ ens" in ln)
    assert "ensemble member 1 ← this checkpoint" in lines[ref] and _parent(lines, ref) == lines[_line(lines, c1)]
    node = next(n for n in d["nodes"] if n["node_id"] == "ens")
    assert [(p["checkpoint_id"], p["member"], p["node_id"]) for p in node["parents"]] == [(c0, 0, "offline"), (c1, 1, "offline")]
    assert f'"ck:{c0}" -> "node:ens"' in dot and f'"ck:{c1}" -> "node:ens"' in dot and r"ensemble member 1" in dot
    edges = [e for e in graph["edges"] if e["to"] == "ens" and e["kind"] == "initialises"]
    assert [(e["from"], e["member"], e["label"]) for e in edges] == [(c0, 0, "ensemble member 0"), (c1, 1, "ensemble member 1")]
    assert {"from": ck["cb0"], "to": "sac", "kind": "initialises"} in graph["edges"]  # a one-parent edge as before

    old = tmp_path / "old" / RUN_ID  # a lineage written before node_parents: no table, schema version 2
    shutil.copytree(storage / RUN_ID, old)
    with sqlite3.connect(old / "lineage.sqlite") as db:
        db.execute("DROP TABLE node_parents")
        db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    with LineageStore(old, readonly=True) as store:
        assert [e["checkpoint_id"] for e in store.parents("ens")] == [c0]
        old_lines = tree_text(store).splitlines()
    assert old_lines[_line(old_lines, "ens —")].endswith(f"from {c0}")  # read as before: one parent
    with LineageStore(old) as store:  # a writer opening it adds the table
        assert store.parents("ens")[0]["checkpoint_id"] == c0
        assert store.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "3"
