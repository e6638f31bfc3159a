"""The suite's results: results.json (every row: mean and spread over the splits),
results.md laid out like the paper's comparison and ablation tables, and a figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convention.bench.suites import BenchModel, Suite, slug
from convention.evaluate.metrics import aggregate
from convention.files import write_atomic


def _aggregate(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return {}
    metrics = aggregate([r["metrics"] for r in ok])
    return {
        "seeds": [r["seed"] for r in ok],
        **metrics,
        "parameters": ok[0].get("parameters"),
        "features": ok[0].get("features"),
        "gflops_per_object": ok[0].get("gflops_per_object"),
        "epochs": ok[0].get("epochs"),
        "epochs_trained": [r["epochs_trained"] for r in ok if "epochs_trained" in r] or None,
        "train_seconds": _stats([r["train_seconds"] for r in ok]),
        "inference_objects_per_s": _stats([r["inference_objects_per_s"] for r in ok]),
        "peak_rss_mib": float(max(r["peak_rss_mib"] for r in ok)),
        "test_objects": int(ok[0]["metrics"]["n_objects"]),
    }


def _stats(values: list[float]) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std())}


def _model_name(row: BenchModel) -> str:
    """What a row runs: the registered network, the boosting baseline or SuperNNova's
    variant."""
    if row.kind == "features":
        return "lc-scene-features-gbm" if row.overrides.get("scene") else "lc-features-gbm"
    if row.kind == "supernnova":
        return f"supernnova-{row.overrides.get('variant', 'vanilla')}"
    return row.model


def collect(suite: Suite, out: Path) -> dict:
    """Every row's finished and failed runs, read from ``out/runs``."""
    rows = {}
    for row in suite.models:
        folder = out / "runs" / slug(row.name)
        runs, failures = [], []
        for seed in suite.seeds:
            done = folder / f"seed_{seed}.json"
            failed = folder / f"seed_{seed}.failed.json"
            if done.is_file():
                runs.append(json.loads(done.read_text()))
            elif failed.is_file():
                failures.append(json.loads(failed.read_text()))
        if not runs and not failures:
            continue
        rows[row.name] = {
            "kind": row.kind,
            "model": _model_name(row),
            "preset": row.preset if row.kind == "image" else None,
            "overrides": row.overrides,
            "oversample": row.oversample,
            "table": row.table,
            "input": row.input,
            "patience": row.patience,
            "status": "ok" if runs and not failures else ("failed" if not runs else "partial"),
            "failures": [{"seed": f["seed"], "error": f["error"]} for f in failures],
            "commits": sorted({run["git_commit"][:12] for run in runs if run.get("git_commit")}),
            **_aggregate(runs),
        }
    return rows


def _cell(stats: dict | None, digits: int = 3) -> str:
    if not stats:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _epochs(row: dict) -> str:
    """The row's epoch budget, with the epochs trained where early stopping or the clock
    ended a run sooner."""
    budget, trained = row.get("epochs"), row.get("epochs_trained")
    if not budget:
        return "-"
    stopping = f" (patience {row['patience']})" if row.get("patience") else ""
    if not trained or min(trained) >= budget:
        return f"{budget}{stopping}"
    low, high = min(trained), max(trained)
    return f"{low if low == high else f'{low}-{high}'} of {budget}{stopping}"


def _budget(results: dict) -> str:
    """How the networks were trained, in words."""
    budget = results["budget"]
    text = (
        f"Networks trained for the epochs in column `epochs` (AdamW, learning rate "
        f"{budget['lr']:g}, schedule {budget['lr_schedule']}, precision {budget['precision']}"
    )
    if budget["patience"]:
        text += f", early stopping after {budget['patience']} epochs without progress"
    if budget["max_minutes"]:
        text += f", at most {budget['max_minutes']:g} minutes each"
    text += ")"
    env = results["environment"]
    if "jobs" in env:
        text += f"; {env['jobs']} run(s) at once, {env['threads_per_run']} thread(s) each"
    return text + "."


def _commits(results: dict) -> str:
    """The commits the rows' runs were trained at (each run records its own), where they
    are not all the report's: a suite resumed, or runs collected from several benches."""
    rows_of: dict[str, list[str]] = {}
    for name, row in results["models"].items():
        for commit in row.get("commits", []):
            rows_of.setdefault(commit, []).append(name)
    if set(rows_of) <= {results["environment"]["git_commit"][:12]}:
        return ""
    return "Runs trained at " + "; ".join(
        f"`{commit}`: {', '.join(rows)}" for commit, rows in sorted(rows_of.items())
    )


def _markdown(results: dict) -> str:
    env = results["environment"]
    lines = [
        f"# Benchmark `{results['suite']}`",
        "",
        f"Data: `{results['data']}`; {len(results['seeds'])} stratified 70/10/20 split(s) "
        f"(seeds {', '.join(map(str, results['seeds']))}); test-split scores, mean ± standard "
        "deviation over the splits finished (column `splits`). Best epoch chosen on the "
        "validation split only. " + _budget(results),
        "",
        f"Command: `{env['command']}`; commit `{env['git_commit'][:12]}`; "
        f"{env['cpu_count']} CPUs; "
        + (f"networks on {env['device']}; " if env.get("device", "cpu") != "cpu" else "")
        + f"Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v),
        "",
    ]
    if trained_at := _commits(results):
        lines += [trained_at + ".", ""]
    for table, title in (
        ("comparison", "Comparison"),
        ("ablation", "Ablations of ConvEntion"),
        ("flagship", "Ablations of the multi-input ConvEntion"),
    ):
        rows = {k: v for k, v in results["models"].items() if v["table"] == table}
        if not rows:
            continue
        classes = next((v["class_names"] for v in rows.values() if "class_names" in v), [])
        lines += [
            f"## {title}",
            "",
            "| model | input | accuracy | macro-F1 | "
            + " | ".join(f"F1 {c}" for c in classes)
            + " | splits | epochs | parameters | GFLOPs/object | train s | objects/s "
            "| peak RSS MiB |",
            "|---" * (11 + len(classes)) + "|",
        ]
        for name, row in rows.items():
            if row["status"] == "failed":
                lines.append(f"| {name} | {row['input']} | failed: {row['failures'][0]['error']} |")
                continue
            size = (
                f"{row['parameters']:,}"
                if row.get("parameters")
                else f"{row['features']} features"
                if row.get("features")
                else "-"
            )
            counted = row.get("gflops_per_object") or 0.0
            gflops = f"{counted:.3f}" if counted >= 5e-4 else "-"
            splits = f"{row['n_folds']}/{len(results['seeds'])}"
            lines.append(
                f"| {name} | {row['input']} | {_cell(row['accuracy'])} | "
                f"{_cell(row['macro_f1'])} | "
                + " | ".join(_cell(row["per_class_f1"][c], 2) for c in classes)
                + f" | {splits} | {_epochs(row)} | {size} | {gflops} | "
                f"{row['train_seconds']['mean']:.0f} | "
                f"{row['inference_objects_per_s']['mean']:.0f} | {row['peak_rss_mib']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _figure(results: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from convention.plotting import save_figure

    rows = [(k, v) for k, v in results["models"].items() if v.get("macro_f1")]
    if not rows:
        return
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.2))
    ax = fig.subplots()
    names = [k for k, _ in rows][::-1]
    means = [v["macro_f1"]["mean"] for _, v in rows][::-1]
    stds = [v["macro_f1"]["std"] for _, v in rows][::-1]
    colours = ["tab:blue" if v["table"] == "comparison" else "tab:gray" for _, v in rows][::-1]
    ax.barh(names, means, xerr=stds, color=colours)
    ax.set_xlabel("test macro-F1 (mean ± std over splits)")
    ax.set_xlim(0, 1)
    ax.set_title(f"suite {results['suite']}")
    save_figure(fig, path)


def write_results(suite: Suite, out: Path, data: str, env: dict) -> dict:
    """Aggregate the finished runs and write results.json, results.md and macro_f1.png."""
    results = {
        "suite": suite.name,
        "data": data,
        "seeds": list(suite.seeds),
        "budget": suite.budget(),
        "environment": env,
        "models": collect(suite, out),
    }
    write_atomic(out / "results.json", lambda t: t.write_text(json.dumps(results, indent=1)))
    write_atomic(out / "results.md", lambda t: t.write_text(_markdown(results) + "\n"))
    _figure(results, out / "macro_f1.png")
    return results
