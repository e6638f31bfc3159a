"""A trained run's test split classified by every inference engine: speed and the score.

For fold 0 of ``--run`` on its own test split of ``--data``: PyTorch fp32 (the reference),
PyTorch under bfloat16 autocast, PyTorch with dynamic int8 quantisation of the Linear
layers (``torch.ao.quantization.quantize_dynamic``; the convolutions stay fp32), and
onnxruntime on the ONNX export. Prints, for each, objects/s end to end (read a batch,
encode, classify), the test macro-F1 and its change against fp32, and the largest
probability difference from fp32.

    python benchmarks/inference_engines.py --run RUN --data twin.h5 --out engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="JSON file for the figures")
    args = parser.parse_args()

    import convention
    from convention.classes import class_targets
    from convention.classifier import BatchPrediction, Classifier, load_models
    from convention.classifier.engines import TorchEngine
    from convention.classifier.onnx import export_onnx
    from convention.evaluate.metrics import classification_metrics
    from convention.training import RunFolder

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    run = RunFolder(args.run)
    data = convention.read(args.data)
    rows = run.rows(data, 0, "test")
    settings, models = load_models(run.fold(0))
    targets = class_targets(data.labels, list(settings.classes))[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantize_dynamic's deprecation notice
        quantised = [
            torch.ao.quantization.quantize_dynamic(m, {torch.nn.Linear}, dtype=torch.qint8)
            for m in load_models(run.fold(0))[1]
        ]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(settings, models, onnx_path)
        engines = {
            "torch_fp32": Classifier(settings, TorchEngine(models)),
            "torch_bf16": Classifier(settings, TorchEngine(models, precision="bf16")),
            "torch_int8_dynamic_linear": Classifier(settings, TorchEngine(quantised)),
            "onnxruntime": Classifier.load(onnx_path),
        }
        results: dict[str, dict] = {}
        probas: dict[str, np.ndarray] = {}
        for name, classifier in engines.items():
            start = time.perf_counter()
            try:
                batches = classifier.classify(data, rows, args.batch_size)
                probas[name] = BatchPrediction.join(batches, classifier.classes).proba
            except Exception as err:  # quantize_dynamic breaks nn.TransformerEncoder
                results[name] = {"error": f"{type(err).__name__}: {err}"}
                print(f"{name:>26}: failed ({results[name]['error']})")
                continue
            seconds = time.perf_counter() - start
            metrics = classification_metrics(targets, probas[name], list(settings.classes))
            results[name] = {
                "objects_per_s": len(rows) / seconds,
                "macro_f1": metrics["macro_f1"],
                "accuracy": metrics["accuracy"],
            }
    for name, r in results.items():
        if "error" in r:
            continue
        r["macro_f1_change"] = r["macro_f1"] - results["torch_fp32"]["macro_f1"]
        r["max_abs_proba_diff"] = float(np.abs(probas[name] - probas["torch_fp32"]).max())
        print(
            f"{name:>26}: {r['objects_per_s']:6.0f} objects/s, macro-F1 {r['macro_f1']:.4f} "
            f"({r['macro_f1_change']:+.4f}), largest probability change "
            f"{r['max_abs_proba_diff']:.1e}"
        )
    load_after = os.getloadavg()[0]
    print(
        f"{len(rows)} test objects; load average {load_before:.2f} before, {load_after:.2f} after"
    )
    if args.out:
        report = {
            "run": str(args.run),
            "data": str(args.data),
            "model": settings.model,
            "preset": settings.preset,
            "test_objects": len(rows),
            "threads": args.threads,
            "load_before": load_before,
            "load_after": load_after,
            "results": results,
        }
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
