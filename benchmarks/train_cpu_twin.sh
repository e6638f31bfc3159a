#!/usr/bin/env bash
# Train and evaluate the cpu preset on the full SDSS-II twin (one stratified 70/10/20 split),
# then keep the evaluation (metrics.json, report, figures) in benchmarks/results/.
#   bash benchmarks/train_cpu_twin.sh TWIN.h5 RUN_DIR
# TWIN.h5 comes from: convention simulate --catalog ../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz --out TWIN.h5 --seed 0
set -euo pipefail
twin=$1
run=$2
results="$(dirname "$0")/results/convention-cpu-twin"
/usr/bin/time -f "train wall %e s, peak RSS %M KiB" \
    convention train --data "$twin" --out "$run" --preset cpu --epochs 40 --patience 10 --max-minutes 18
convention evaluate --run "$run" --data "$twin"
mkdir -p "$results"
cp "$run"/evaluation/{metrics.json,report.md,*.png} "$results"/
cp "$run"/fold_0/training.json "$results"/
