"""One benchmark run (a row on one split) in its own process: train, test, measure.

``python -m convention.bench.worker SPEC.json RESULT.json``. Running each row in its own
process isolates failures and gives each row its own peak-memory figure.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from convention.bench.suites import BenchModel
from convention.classes import class_targets
from convention.data.splits import make_splits
from convention.errors import ConventionError
from convention.evaluate.metrics import classification_metrics
from convention.io import read


def _image_run(spec: dict, row: BenchModel) -> dict:
    from convention.bench.training import row_settings
    from convention.classifier import load_models
    from convention.models import gflops_per_object
    from convention.training import RunFolder, train

    run_dir = Path(spec["run_dir"])
    settings = row_settings(
        row, spec, spec["data"], str(run_dir), spec["seed"], device=spec.get("device", "cpu")
    )
    start = time.perf_counter()
    run = RunFolder(train(settings))
    train_seconds = time.perf_counter() - start
    store = read(spec["data"])
    start = time.perf_counter()
    scores = run.score(store, 0, device=settings.device)
    infer_seconds = time.perf_counter() - start
    model = load_models(run.fold(0))[1][0]
    return {
        "metrics": classification_metrics(scores.targets, scores.proba, run.classes),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "gflops_per_object": gflops_per_object(model, len(run.bands)),
        "epochs": settings.epochs,
        "epochs_trained": run.training(0)["epochs"],
        "train_seconds": train_seconds,
        "inference_objects_per_s": len(scores.rows) / infer_seconds,
    }


def _features_run(spec: dict, row: BenchModel) -> dict:
    from convention.baselines.gbm import feature_matrix, fit_feature_gbm
    from convention.classes import get_taxonomy

    options = row.feature_options
    store = read(spec["data"])
    classes = get_taxonomy(4).classes
    targets = class_targets(store.labels, classes)
    split = make_splits(targets, 1, spec["seed"])[0]
    start = time.perf_counter()
    fit_rows = np.concatenate([split["train"], split["val"]])
    x_fit = feature_matrix(store, fit_rows, workers=spec["threads"], **options)
    n_train = len(split["train"])
    model = fit_feature_gbm(
        x_fit[:n_train],
        targets[split["train"]],
        x_fit[n_train:],
        targets[split["val"]],
        spec["seed"],
    )
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    x_test = feature_matrix(store, split["test"], workers=spec["threads"], **options)
    proba = model.predict_proba(x_test)
    infer_seconds = time.perf_counter() - start
    return {
        "metrics": classification_metrics(targets[split["test"]], proba, classes),
        "parameters": None,
        "features": x_fit.shape[1],
        "boosting_iterations": int(model.n_iter_),
        "gflops_per_object": None,
        "train_seconds": train_seconds,
        "inference_objects_per_s": len(split["test"]) / infer_seconds,
    }


def _supernnova_run(spec: dict, row: BenchModel) -> dict:
    from convention.bench.supernnova import run_supernnova
    from convention.classes import get_taxonomy

    store = read(spec["data"])
    classes = list(get_taxonomy(4).classes)
    targets = class_targets(store.labels, classes)
    split = make_splits(targets, 1, spec["seed"])[0]
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    proba, train_seconds, infer_seconds = run_supernnova(
        store,
        split,
        classes,
        run_dir,
        variant=row.overrides.get("variant", "vanilla"),
        seed=spec["seed"],
        epochs=int(row.overrides.get("epochs", 30)),
        venv=Path(spec["supernnova_venv"]),
    )
    return {
        "metrics": classification_metrics(targets[split["test"]], proba, classes),
        "parameters": None,
        "gflops_per_object": None,
        "train_seconds": train_seconds,
        "inference_objects_per_s": len(split["test"]) / infer_seconds,
    }


def run(spec: dict) -> dict:
    """Train and test one row on one split; the result with timings and peak memory."""
    import torch

    torch.set_num_threads(spec["threads"])
    row = BenchModel(**spec["model"])
    runners = {
        "features": lambda s: _features_run(s, row),
        "supernnova": lambda s: _supernnova_run(s, row),
    }
    result = runners[row.kind](spec) if row.kind in runners else _image_run(spec, row)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_rss_mib"] = max(own, children) / 1024  # Linux reports KiB
    result["status"] = "ok"
    result["seed"] = spec["seed"]
    result["threads"] = spec["threads"]
    return result


def main() -> None:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        result = run(json.loads(spec_path.read_text()))
    except ConventionError as err:
        print(f"error: {err.message}", file=sys.stderr)
        sys.exit(2)
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(result_path)


if __name__ == "__main__":
    main()
