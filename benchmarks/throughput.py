"""Throughput of every model: inference and training, end to end and model alone.

For each model and preset (default: every registered model's cpu preset) and each sequence
length M of ``--frames`` (default 33, 99, 198), in its own process:

- the model alone on random inputs of M frames: forward objects/s in fp32 and under
  bfloat16 autocast, the training step's (forward, backward, AdamW) objects/s, GFLOPs per
  object, and the achieved GFLOP/s as a fraction of the fp32 and bf16 1024x1024 matmul
  GFLOP/s measured in the same process (the machine's ceiling), with a torch.profiler
  table of the fp32 forward (self time per op);
- at the store's length (``--e2e-frames``, default 99: the models' max_frames), end to end:
  inference objects/s from the store to a predictions file (read a batch per store read,
  encode, collate, classify, write CSV) with PyTorch fp32, PyTorch bf16 and onnxruntime
  (the ONNX export of the same weights), and training objects/s (encoded objects ->
  augmented batches -> forward, backward, optimiser) with its stage shares; reading and
  encoding alone twice: the training split into the training cache (``--threads``
  worker processes, examples written to disk: "training read + encode") and the whole
  store through the prediction stream in this process ("stream read + encode", what the
  inference engines wait on);
- the process's peak RSS.

Weights are freshly initialised (speed does not depend on training); the encoders are
fitted on the store's training split as in a run. The 1-minute load average before and
after the run is printed and saved: a figure taken while another process competes for the
cores says so.

``--baseline REV`` measures the code of a git revision too, side by side (a temporary
``git worktree`` imported ahead of the installed package, every measurement in its own
process, the versions alternating).

    python benchmarks/throughput.py --data store.h5 --out benchmarks/results/throughput
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seconds_per_call(fn, repeats: int) -> float:
    """Best of ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_model(args: argparse.Namespace, model, n_bands: int, n_classes: int) -> dict:
    """The model alone on random inputs of ``args.frames`` frames."""
    import torch

    from convention.inputs.encoder import random_inputs
    from convention.models.registry import gflops_per_object
    from convention.training.losses import make_loss

    result: dict = {}
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a = torch.randn(1024, 1024, dtype=dtype)
        b = torch.randn(1024, 1024, dtype=dtype)
        seconds = seconds_per_call(lambda a=a, b=b: a @ b, 10)
        result[f"matmul_{name}_gflops"] = 2 * 1024**3 / seconds / 1e9
    gflops = gflops_per_object(model, n_bands, args.frames)
    result["gflops_per_object"] = gflops
    inputs = random_inputs(model.input_spec, n_bands, args.frames, args.batch)
    labels = torch.randint(0, n_classes, (args.batch,), generator=torch.Generator().manual_seed(1))

    def forward(bf16: bool = False) -> None:
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            model(**inputs)

    loss_fn = make_loss("focal")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.13, amsgrad=True)

    def step(bf16: bool = False) -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(**inputs), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.eval()
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        seconds = seconds_per_call(lambda bf16=bf16: forward(bf16), args.repeats)
        rate = args.batch / seconds
        result[f"model_forward_{precision}_objects_per_s"] = rate
        result[f"model_forward_{precision}_gflops_per_s"] = rate * gflops
        result[f"model_forward_{precision}_fraction_of_matmul"] = (
            rate * gflops / result[f"matmul_{precision}_gflops"]
        )
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            forward()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    result["forward_profile"] = [
        {
            "op": e.key,
            "self_share": round(e.self_cpu_time_total / total, 4),
            "self_ms_per_batch": round(e.self_cpu_time_total / 3e3, 2),
        }
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]
    ]
    model.train()
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        seconds = seconds_per_call(lambda bf16=bf16: step(bf16), max(2, args.repeats // 2))
        result[f"model_step_{precision}_objects_per_s"] = args.batch / seconds
    result["model_step_fp32_gflops_per_s"] = 3 * gflops * result["model_step_fp32_objects_per_s"]
    return result


def measure_end_to_end(args: argparse.Namespace, model, model_name: str, preset: str) -> dict:
    """Store -> predictions file with three engines, and the training stream, at the
    store's own length."""
    import numpy as np
    import torch

    from convention.classes import class_targets, get_taxonomy
    from convention.classifier import BatchPrediction, Classifier, ModelSettings, save_model
    from convention.classifier.onnx import export_onnx
    from convention.classifier.stream import collection_batches
    from convention.data.splits import make_splits
    from convention.inputs import InputEncoder
    from convention.io import read
    from convention.io.predictions import write_predictions
    from convention.training.datamodule import StampDataModule
    from convention.training.losses import make_loss

    store = read(args.data)
    classes = get_taxonomy(4).classes
    split = make_splits(class_targets(store.labels, classes), 1, 0)[0]
    encoder = InputEncoder(model.input_spec, store.bands)
    result: dict = {"store_objects": len(store)}
    with tempfile.TemporaryDirectory() as tmp:
        datamodule = StampDataModule(
            store,
            classes,
            split,
            encoder,
            args.batch,
            True,
            0,
            workers=args.threads,
            cache_folder=tmp,
        )
        start = time.perf_counter()
        n_train = len(datamodule.encoded("train"))
        result["read_encode_objects_per_s"] = n_train / (time.perf_counter() - start)
        result["train_objects"] = n_train
        result.update(training_stream(args, model, datamodule, make_loss("focal")))
        datamodule.close()
        rates = []
        for _ in range(args.e2e_rounds):
            start = time.perf_counter()
            batches = collection_batches(store, encoder, batch_size=args.predict_batch)
            n_read = sum(len(batch.ids) for batch in batches)
            rates.append(n_read / (time.perf_counter() - start))
        result["stream_read_encode_objects_per_s"] = max(rates)
        settings = ModelSettings(
            model=model_name,
            preset=preset,
            overrides={},
            classes=tuple(classes),
            bands=tuple(store.bands),
            inputs=model.input_spec,
            encoders=encoder.states,
        )
        folder = Path(tmp) / "model"
        save_model(folder, model.eval(), settings)
        engines = {
            "torch_fp32": lambda: Classifier.load(folder),
            "torch_bf16": lambda: Classifier.load(folder, precision="bf16"),
        }
        try:
            start = time.perf_counter()
            export_onnx(settings, [model.eval()], Path(tmp) / "model.onnx")
            result["onnx_export_s"] = time.perf_counter() - start
            engines["onnxruntime"] = lambda: Classifier.load(Path(tmp) / "model.onnx")
        except Exception as err:  # a model the exporter cannot express: say which
            result["onnx_error"] = f"{type(err).__name__}: {err}"
        torch.set_num_threads(args.threads)
        for name, load in engines.items():
            classifier = load()
            rates = []
            for _ in range(args.e2e_rounds):
                start = time.perf_counter()
                batches = classifier.classify(
                    store, batch_size=args.predict_batch, workers=args.workers
                )
                predicted = BatchPrediction.join(batches, classes)
                write_predictions(Path(tmp) / "p.csv", predicted.ids, predicted.proba, classes)
                rates.append(len(predicted.ids) / (time.perf_counter() - start))
            result[f"inference_{name}_objects_per_s"] = max(rates)
            if name == "torch_fp32":
                reference = predicted.proba
            else:
                result[f"inference_{name}_max_abs_diff"] = float(
                    np.abs(predicted.proba - reference).max()
                )
    return result


def training_stream(args: argparse.Namespace, model, datamodule, loss_fn) -> dict:
    """Training objects/s over one epoch of the DataModule's stream, per stage."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.13, amsgrad=True)
    model.train()
    stages = {"load_augment_collate": 0.0, "forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    objects, warm = 0, False  # the first batch warms the kernels up and is not counted
    loader = iter(datamodule.train_dataloader())
    while True:
        start = time.perf_counter()
        batch = next(loader, None)
        if batch is None:
            break
        times = {"load_augment_collate": time.perf_counter() - start}
        start = time.perf_counter()
        loss = loss_fn(model(**batch["inputs"]), batch["label"])
        times["forward"] = time.perf_counter() - start
        start = time.perf_counter()
        loss.backward()
        times["backward"] = time.perf_counter() - start
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times["optimiser"] = time.perf_counter() - start
        if not warm:
            warm = True
            continue
        for key, value in times.items():
            stages[key] += value
        objects += len(batch["label"])
    busy = sum(stages.values())
    return {
        "train_objects_per_s": objects / busy,
        "train_stage_share": {k: round(v / busy, 4) for k, v in stages.items()},
    }


def measure(args: argparse.Namespace) -> dict:
    """One code version's figures for one model, preset and length (own process)."""
    import torch

    import convention
    from convention.classes import get_taxonomy
    from convention.io import read
    from convention.models import create_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    store = read(args.data)
    n_classes, n_bands = len(get_taxonomy(4).classes), len(store.bands)
    # The model alone reads sequences of up to ``frames`` frames.
    model = create_model(args.model, n_classes, n_bands, args.preset, max_frames=args.frames)
    result: dict = {
        "code": str(Path(convention.__file__).resolve().parents[1]),
        "model": args.model,
        "preset": args.preset,
        "frames": args.frames,
        "batch_size": args.batch,
        "threads": args.threads,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    result.update(measure_model(args, model, n_bands, n_classes))
    if args.frames == args.e2e_frames:
        model = create_model(args.model, n_classes, n_bands, args.preset)
        result.update(measure_end_to_end(args, model, args.model, args.preset))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def worktree(rev: str, folder: Path) -> Path:
    """A checkout of ``rev`` in ``folder`` (removed by the caller)."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
        check=True,
        capture_output=True,
    )
    return folder


def run_one(args: argparse.Namespace, model: str, preset: str, frames: int, code) -> dict:
    """``measure`` in a fresh process, importing ``code``'s package when given."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable, __file__, "--measure", out.name, "--data", str(args.data),
            "--model", model, "--preset", preset, "--frames", str(frames),
            "--e2e-frames", str(args.e2e_frames), "--batch", str(args.batch),
            "--predict-batch", str(args.predict_batch), "--threads", str(args.threads),
            "--workers", str(args.workers), "--repeats", str(args.repeats),
            "--e2e-rounds", str(args.e2e_rounds),
        ]  # fmt: skip
        done = subprocess.run(command, env=env)
        if done.returncode:
            return {"model": model, "preset": preset, "frames": frames, "error": done.returncode}
        return json.loads(Path(out.name).read_text())


def default_models() -> list[str]:
    """``model:preset`` of every registered model's cpu preset."""
    from convention.models import list_models

    return [f"{name}:cpu" for name, entry in list_models().items() if "cpu" in entry.presets]


def summary_line(r: dict) -> str:
    if "error" in r:
        return f"{r['model']}:{r['preset']} M={r['frames']}: failed (exit {r['error']})"
    line = (
        f"{r['model']:>16}:{r['preset']:<4} M={r['frames']:<3} {r['gflops_per_object']:.3f} "
        f"GFLOP/obj; forward fp32 {r['model_forward_fp32_objects_per_s']:7.0f} obj/s "
        f"({r['model_forward_fp32_fraction_of_matmul']:.0%} of matmul), bf16 "
        f"{r['model_forward_bf16_objects_per_s']:7.0f} "
        f"({r['model_forward_bf16_fraction_of_matmul']:.0%}); step fp32 "
        f"{r['model_step_fp32_objects_per_s']:6.0f}, bf16 {r['model_step_bf16_objects_per_s']:6.0f}"
    )
    if "inference_torch_fp32_objects_per_s" in r:
        engines = " ".join(
            f"{k[len('inference_') : -len('_objects_per_s')]} {v:.0f}"
            for k, v in r.items()
            if k.startswith("inference_") and k.endswith("_objects_per_s")
        )
        line += (
            f"\n{'':>22}end to end: inference {engines} obj/s; training "
            f"{r['train_objects_per_s']:.0f} obj/s; read+encode "
            f"{r['read_encode_objects_per_s']:.0f} obj/s; peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    return line


RATIOS = (
    ("forward fp32", "model_forward_fp32_objects_per_s"),
    ("forward bf16", "model_forward_bf16_objects_per_s"),
    ("step fp32", "model_step_fp32_objects_per_s"),
    ("step bf16", "model_step_bf16_objects_per_s"),
    ("training read + encode", "read_encode_objects_per_s"),
    ("stream read + encode", "stream_read_encode_objects_per_s"),
    ("end to end fp32", "inference_torch_fp32_objects_per_s"),
    ("end to end bf16", "inference_torch_bf16_objects_per_s"),
    ("end to end onnxruntime", "inference_onnxruntime_objects_per_s"),
    ("training", "train_objects_per_s"),
)


def _medians(runs: list[dict]) -> dict[tuple, dict[str, float]]:
    """Per (model, preset, frames), the median over rounds of each ``RATIOS`` figure."""
    import numpy as np

    grouped: dict[tuple, list[dict]] = {}
    for r in runs:
        if "error" not in r:
            grouped.setdefault((r["model"], r["preset"], r["frames"]), []).append(r)
    return {
        key: {
            figure: float(np.median([r[figure] for r in rs]))
            for _, figure in RATIOS
            if all(figure in r for r in rs)
        }
        for key, rs in grouped.items()
    }


def markdown(report: dict) -> str:
    """The results as Markdown tables; with a baseline, each row says which code it
    measured, and a last table gives the current code's figures over the baseline's."""
    baseline = report.get("baseline")
    lines = [
        "# Throughput",
        "",
        f"`{report['command']}` at {report['commit']} on {report['cpu']} "
        f"({', '.join(report['cpu_flags']) or 'no AVX-512/AMX flags'}), "
        f"{report['threads']} threads; load average {report['load_before']:.2f} before, "
        f"{report['load_after']:.2f} after."
        + (f" Baseline: {baseline}, measured side by side." if baseline else ""),
        "",
        f"## Model alone (random inputs, batch of {report['batch_size']})",
        "",
        "| model | M | GFLOP/obj | fwd fp32 obj/s | of fp32 matmul | fwd bf16 obj/s "
        "| of bf16 matmul | step fp32 obj/s | step bf16 obj/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        (f"{r['model']} ({r['preset']})" + (f", {label}" if baseline else ""), r)
        for label, runs in report["results"].items()
        for r in runs
        if "error" not in r
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['frames']} | {r['gflops_per_object']:.3f} "
            f"| {r['model_forward_fp32_objects_per_s']:.0f} "
            f"| {r['model_forward_fp32_fraction_of_matmul']:.0%} "
            f"| {r['model_forward_bf16_objects_per_s']:.0f} "
            f"| {r['model_forward_bf16_fraction_of_matmul']:.0%} "
            f"| {r['model_step_fp32_objects_per_s']:.0f} "
            f"| {r['model_step_bf16_objects_per_s']:.0f} |"
        )
    end_to_end = [(name, r) for name, r in rows if "inference_torch_fp32_objects_per_s" in r]
    if end_to_end:
        lines += [
            "",
            "## End to end (store -> predictions file; training stream), "
            f"M = {report['e2e_frames']}",
            "",
            "| model | torch fp32 obj/s | torch bf16 obj/s | onnxruntime obj/s | training obj/s "
            "| training read + encode obj/s | stream read + encode obj/s | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for name, r in end_to_end:
        onnx = r.get("inference_onnxruntime_objects_per_s")
        lines.append(
            f"| {name} | {r['inference_torch_fp32_objects_per_s']:.0f} "
            f"| {r['inference_torch_bf16_objects_per_s']:.0f} "
            f"| {'export failed' if onnx is None else f'{onnx:.0f}'} "
            f"| {r['train_objects_per_s']:.0f} | {r['read_encode_objects_per_s']:.0f} "
            f"| {r.get('stream_read_encode_objects_per_s', float('nan')):.0f} "
            f"| {r['peak_rss_mib']:.0f} |"
        )
    if baseline:
        lines += [
            "",
            f"## Current over baseline ({baseline}): the ratio of the medians over rounds",
            "",
            "| model | M | " + " | ".join(n for n, _ in RATIOS) + " |",
            "|---|---|" + "---|" * len(RATIOS),
        ]
        medians = {label: _medians(runs) for label, runs in report["results"].items()}
        for (model, preset, frames), now in medians.get("current", {}).items():
            old = medians.get("baseline", {}).get((model, preset, frames), {})
            cells = [
                f"{now[key] / old[key]:.2f}x" if key in now and key in old else "-"
                for _, key in RATIOS
            ]
            lines.append(f"| {model} ({preset}) | {frames} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a store (default: 2,000 simulated objects)")
    parser.add_argument("--models", nargs="+", help="model:preset (default: every cpu preset)")
    parser.add_argument("--frames", nargs="+", type=int, default=[33, 99, 198])
    parser.add_argument("--e2e-frames", type=int, default=99, help="the end-to-end length")
    parser.add_argument("--baseline", help="a git revision measured side by side")
    parser.add_argument("--batch", type=int, default=32, help="model-alone and training batch")
    parser.add_argument("--predict-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="prediction loader workers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--e2e-rounds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="alternations per version")
    parser.add_argument("--out", type=Path, help="folder for throughput.json and .md")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        args.frames = args.frames[0]
        Path(args.measure).write_text(json.dumps(measure(args)))
        return
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.2f} before the run: figures may be low")
    models = [m.split(":") for m in (args.models or default_models())]
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            from convention.sim.simulate import SimulationSettings, simulate

            args.data = simulate(SimulationSettings(n_objects=2000, seed=0), Path(tmp) / "d.h5")
        versions: dict[str, Path | None] = {"current": None}
        if args.baseline:
            versions = {"baseline": worktree(args.baseline, Path(tmp) / "baseline"), **versions}
        results: dict[str, list[dict]] = {}
        try:
            for _ in range(args.rounds):
                for model, preset in models:
                    for frames in args.frames:
                        for label, code in versions.items():
                            r = run_one(args, model, preset, frames, code)
                            results.setdefault(label, []).append(r)
                            print(f"{label:>8} " + summary_line(r), flush=True)
        finally:
            if args.baseline:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force",
                     str(versions["baseline"])],
                    check=False,
                )  # fmt: skip
    load_after = os.getloadavg()[0]
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after")
    cpuinfo = Path("/proc/cpuinfo")
    report = {
        "command": " ".join(["python", "benchmarks/throughput.py", *sys.argv[1:]]),
        "commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": sorted(
            {f for f in cpuinfo.read_text().split() if f.startswith(("avx512", "avx2", "amx"))}
        )
        if cpuinfo.exists()
        else [],
        "baseline": args.baseline,
        "threads": args.threads,
        "batch_size": args.batch,
        "e2e_frames": args.e2e_frames,
        "load_before": load_before,
        "load_after": load_after,
        "results": results,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "throughput.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "throughput.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
