#!/usr/bin/env bash
# The GPU check, about 8 minutes on one H100/H200 with 16 cores: build the SDSS-II twin,
# train ConvEntion (paper preset) and the multi-input flagship (paper preset) in bfloat16
# for a fixed wall-clock budget each, then print for each the training and inference
# objects/s, the peak GPU memory and the test macro-F1 (seed 0's 70/10/20 split).
#
#   bash benchmarks/gpu_check.sh OUT_DIR [CATALOG]
#
# CATALOG defaults to ../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz (carry a
# copy inside the repository where ../shared does not travel). Needs a python3 with torch
# seeing a GPU and convention's dependencies (installed, or carried as wheels: see
# /work/.library/device/README.md); installs convention itself without dependencies.
# Output: OUT_DIR/gpu_check.log and OUT_DIR/gpu_check.json. CI never runs this.
set -euo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [CATALOG]}
catalog=${2:-../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz}
minutes=${GPU_CHECK_MINUTES:-2.2}  # training budget per model
mkdir -p "$out"
rm -f "$out/gpu_check.json"
work=$(mktemp -d)
trap 'kill "${sampler:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
exec > >(tee "$out/gpu_check.log") 2>&1

python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__, torch.cuda.get_device_name())"

start=$(date +%s)
python3 -m convention simulate --catalog "$catalog" --out "$work/twin.h5" --seed 0 \
    --workers "$(nproc)" >/dev/null
echo "twin made in $(( $(date +%s) - start )) s"

for row in "convention paper" "convention-multi paper"; do
    set -- $row
    model=$1 preset=$2
    run="$work/run-$model"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 \
        > "$work/memory-$model.log" &
    sampler=$!
    python3 -m convention train --data "$work/twin.h5" --out "$run" --model "$model" \
        --preset "$preset" --device cuda --precision bf16-mixed --epochs 100 --lr 5e-4 \
        --patience 100 --max-minutes "$minutes" --seed 0 >/dev/null
    kill "$sampler"
    python3 - "$work/twin.h5" "$run" "$work/memory-$model.log" "$out/gpu_check.json" \
        "$model" "$preset" <<'EOF'
import json, sys, time
from pathlib import Path

import convention
from convention.evaluate.metrics import classification_metrics
from convention.training import RunFolder

data_path, run_path, memory_log, report, model, preset = sys.argv[1:]
data = convention.read(data_path)
run = RunFolder(run_path)
training = run.training(0)
n_train = len(run.rows(data, 0, "train"))
start = time.perf_counter()
scores = run.score(data, 0, device="cuda", batch_size=256)
seconds = time.perf_counter() - start
used = [int(x) for x in Path(memory_log).read_text().split() if x.isdigit()]
result = {
    "model": model,
    "preset": preset,
    "epochs_trained": training["epochs"],
    "train_seconds": training["train_seconds"],
    "train_objects_per_s": n_train * training["epochs"] / training["train_seconds"],
    "inference_objects_per_s": len(scores.rows) / seconds,
    "peak_gpu_memory_mib": max(used, default=0),
    "test_macro_f1": classification_metrics(scores.targets, scores.proba, run.classes)["macro_f1"],
}
print(json.dumps(result))
path = Path(report)
results = json.loads(path.read_text()) if path.exists() else []
path.write_text(json.dumps([*results, result], indent=1) + "\n")
EOF
done
echo "total $(( $(date +%s) - start )) s"
