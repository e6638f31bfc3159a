"""Training and inference throughput of the image models, end to end and model alone.

For each preset it prints and saves:
- training objects/s end to end (store -> encoded objects -> augmented batches -> forward,
  backward, optimiser), with the time per stage of a step (augment + collate, forward,
  backward, optimiser) and the one-off read + encode rate;
- inference objects/s end to end (read, encode, collate, forward, no cache);
- the model alone on random inputs of ``--frames`` frames: forward objects/s and GFLOP/s,
  training step (forward, backward, AdamW) objects/s and GFLOP/s (3 x the forward FLOPs),
  and the step's objects/s under bfloat16 autocast;
- the fp32 and bf16 matmul GFLOP/s of the same process, the machine's ceiling;
- a torch.profiler table of three training steps (self CPU time per op, with the op's
  GFLOP/s where torch counts its FLOPs).

``--baseline REV`` measures the code of a git revision too, in the same run: a temporary
``git worktree`` of REV imported ahead of the installed package, each measurement in its
own process, the two versions alternating, so the ratio compares them on the same cores
under the same load:

    python benchmarks/train_throughput.py --baseline 3d039c6 --out benchmarks/results/throughput
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(args: argparse.Namespace) -> dict:
    """One code version's figures for one preset (runs in its own process)."""
    import numpy as np
    import torch

    import convention
    from convention.classes import class_targets, get_taxonomy
    from convention.data.splits import make_splits
    from convention.inputs import InputEncoder
    from convention.inputs.encoder import example_inputs
    from convention.io import read
    from convention.models import create_model
    from convention.models.registry import gflops_per_object
    from convention.training.datamodule import StampDataModule
    from convention.training.losses import make_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    store = read(args.data)
    classes = get_taxonomy(4).classes
    targets = class_targets(store.labels, classes)
    split = make_splits(targets, 1, 0)[0]
    model = create_model(args.model, len(classes), len(store.bands), args.preset)
    spec = model.input_spec
    gflops = gflops_per_object(model, len(store.bands), args.frames)
    result: dict = {
        "code": str(Path(convention.__file__).resolve().parents[1]),
        "preset": args.preset,
        "model": args.model,
        "batch_size": args.batch,
        "threads": args.threads,
        "gflops_per_object": gflops,
        "parameters": sum(p.numel() for p in model.parameters()),
    }

    def synchronised(fn, repeats: int) -> float:
        """Seconds per call, best of ``repeats`` after one warm-up call."""
        fn()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best

    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a = torch.randn(1024, 1024, dtype=dtype)
        b = torch.randn(1024, 1024, dtype=dtype)
        seconds = synchronised(lambda a=a, b=b: a @ b, 10)
        result[f"matmul_{name}_gflops"] = 2 * 1024**3 / seconds / 1e9

    # The model alone on random inputs of one length.
    example = example_inputs(spec, len(store.bands), args.frames)
    generator = torch.Generator().manual_seed(0)
    inputs = {}
    for key, value in example.items():
        value = value.expand(args.batch, *value.shape[1:]).clone()
        if value.dtype == torch.float32 and key in ("frames", "lc", "heatmap"):
            value = torch.randn(value.shape, generator=generator)
        if key in ("bands", "lc_bands"):
            value = torch.randint(1, len(store.bands) + 1, value.shape, generator=generator)
        inputs[key] = value
    labels = torch.randint(0, len(classes), (args.batch,), generator=generator)
    loss_fn = make_loss("focal")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.13, amsgrad=True)

    def forward() -> None:
        with torch.no_grad():
            model(**inputs)

    def step(batch_inputs=inputs, batch_labels=labels, bf16: bool = False) -> dict:
        times = {}
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(**batch_inputs), batch_labels)
        times["forward"] = time.perf_counter() - start
        start = time.perf_counter()
        loss.backward()
        times["backward"] = time.perf_counter() - start
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times["optimiser"] = time.perf_counter() - start
        return times

    model.eval()
    forward_s = synchronised(forward, args.repeats)
    model.train()
    step_s = synchronised(step, args.repeats)
    bf16_step_s = synchronised(lambda: step(bf16=True), args.repeats)
    result["model_step_bf16_objects_per_s"] = args.batch / bf16_step_s
    result["model_forward_objects_per_s"] = args.batch / forward_s
    result["model_forward_gflops_per_s"] = args.batch * gflops / forward_s
    result["model_step_objects_per_s"] = args.batch / step_s
    result["model_step_gflops_per_s"] = 3 * args.batch * gflops / step_s

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(3):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:15]
    result["profile"] = [
        {
            "op": e.key,
            "self_share": round(e.self_cpu_time_total / total, 4),
            "self_ms_per_step": round(e.self_cpu_time_total / 3e3, 2),
            "gflops_per_s": round(e.flops / e.self_cpu_time_total / 1e3, 1) if e.flops else None,
        }
        for e in rows
    ]

    # End to end: the training stream of a real run on the store.
    encoder = InputEncoder(spec, store.bands)
    start = time.perf_counter()
    datamodule = StampDataModule(store, classes, split, encoder, args.batch, True, 0)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    n_train = len(datamodule.encoded("train"))
    result["fit_normalisation_s"] = fit_s
    result["read_encode_objects_per_s"] = n_train / (time.perf_counter() - start)
    stages = {"augment_collate": 0.0, "forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    objects = 0
    warm = False  # the first batch warms the kernels up and is not counted
    for _ in range(args.epochs):
        loader = iter(datamodule.train_dataloader())
        while True:
            start = time.perf_counter()
            batch = next(loader, None)
            if batch is None:
                break
            waited = time.perf_counter() - start
            times = step(batch["inputs"], batch["label"])
            if not warm:
                warm = True
                continue
            stages["augment_collate"] += waited
            for key, value in times.items():
                stages[key] += value
            objects += len(batch["label"])
    busy = sum(stages.values())
    result["train_objects_per_s"] = objects / busy
    result["train_stage_share"] = {k: round(v / busy, 4) for k, v in stages.items()}
    result["train_stage_ms_per_object"] = {
        k: round(1e3 * v / objects, 3) for k, v in stages.items()
    }

    model.eval()
    test = split["test"]
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(test), 256):
            examples = [encoder.encode(store[int(i)]) for i in test[first : first + 256]]
            model(**encoder.collate(examples)["inputs"])
    result["inference_objects_per_s"] = len(test) / (time.perf_counter() - start)
    result["train_objects"] = int(n_train)
    result["frames_mean"] = float(
        np.mean([len(e.inputs["frames"]) for e in datamodule.encoded("train")])
    )
    return result


def worktree(rev: str, folder: Path) -> Path:
    """A checkout of ``rev`` in ``folder`` (removed by the caller)."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
        check=True,
        capture_output=True,
    )
    return folder


def run_one(args: argparse.Namespace, preset: str, code: Path | None) -> dict:
    """``measure`` in a fresh process, importing ``code``'s package when given."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable,
            __file__,
            "--measure",
            out.name,
            "--data",
            str(args.data),
            "--preset",
            preset,
            "--model",
            args.model,
            "--batch",
            str(args.batch),
            "--threads",
            str(args.threads),
            "--frames",
            str(args.frames),
            "--repeats",
            str(args.repeats),
            "--epochs",
            str(args.epochs),
        ]
        subprocess.run(command, check=True, env=env)
        return json.loads(Path(out.name).read_text())


def simulated_store(folder: Path, n_objects: int) -> Path:
    from convention.sim.simulate import SimulationSettings, simulate

    path = folder / "data.h5"
    simulate(SimulationSettings(n_objects=n_objects, seed=0), path, workers=2)
    return path


def summary_line(label: str, r: dict) -> str:
    stages = " ".join(f"{k} {v:.0%}" for k, v in r["train_stage_share"].items())
    return (
        f"{label:>10} {r['preset']:>5}: train {r['train_objects_per_s']:7.1f} obj/s ({stages}); "
        f"inference {r['inference_objects_per_s']:7.1f} obj/s; model fwd "
        f"{r['model_forward_objects_per_s']:7.1f} obj/s {r['model_forward_gflops_per_s']:5.1f} "
        f"GFLOP/s, step {r['model_step_objects_per_s']:6.1f} obj/s "
        f"{r['model_step_gflops_per_s']:5.1f} GFLOP/s "
        f"(bf16 {r['model_step_bf16_objects_per_s']:.1f} obj/s); matmul fp32 "
        f"{r['matmul_fp32_gflops']:.0f} bf16 {r['matmul_bf16_gflops']:.0f} GFLOP/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a store (default: 600 simulated objects)")
    parser.add_argument("--model", default="convention")
    parser.add_argument("--presets", nargs="+", default=["cpu"])
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help="a git revision measured side by side")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=99, help="frames of the random inputs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the end-to-end loop")
    parser.add_argument("--rounds", type=int, default=2, help="alternations per version")
    parser.add_argument("--out", type=Path, help="folder for throughput.json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        Path(args.measure).write_text(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            args.data = simulated_store(Path(tmp), 600)
        versions: dict[str, Path | None] = {"current": None}
        if args.baseline:
            versions = {"baseline": worktree(args.baseline, Path(tmp) / "baseline"), **versions}
        try:
            results: dict[str, dict[str, list[dict]]] = {}
            for _ in range(args.rounds):
                for preset in args.presets:
                    for label, code in versions.items():
                        r = run_one(args, preset, code)
                        results.setdefault(preset, {}).setdefault(label, []).append(r)
                        print(summary_line(label, r), flush=True)
        finally:
            if args.baseline:
                subprocess.run(
                    [
                        "git",
                        "-C",
                        str(REPO),
                        "worktree",
                        "remove",
                        "--force",
                        str(versions["baseline"]),
                    ],
                    check=False,
                )
    report = {
        "command": " ".join(["python", "benchmarks/train_throughput.py", *sys.argv[1:]]),
        "baseline": args.baseline,
        "commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": sorted(
            f
            for f in Path("/proc/cpuinfo").read_text().split()
            if f.startswith(("avx512", "avx2", "amx"))
        )
        if Path("/proc/cpuinfo").exists()
        else [],
        "results": results,
    }
    best = {}
    for preset, by_version in results.items():
        best[preset] = {
            label: max(runs, key=lambda r: r["train_objects_per_s"])
            for label, runs in by_version.items()
        }
        if "baseline" in best[preset]:
            ratio = {
                key: best[preset]["current"][key] / best[preset]["baseline"][key]
                for key in (
                    "train_objects_per_s",
                    "inference_objects_per_s",
                    "model_step_objects_per_s",
                    "model_step_bf16_objects_per_s",
                    "model_forward_objects_per_s",
                )
            }
            report.setdefault("ratios", {})[preset] = ratio
            print(
                f"{preset}: current / baseline "
                + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items())
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "throughput.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
