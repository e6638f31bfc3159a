#!/usr/bin/env bash
# Every fuzz test at SCALE times its size in the suite (default 10: over 20,000 cases:
# corrupted alert, FITS, CRTS and table files, damaged stores, edited and corrupted
# checkpoints, option values; landing folders of hostile names and entries on both
# engines of classify-alerts; numeric extremes over every numeric field of both alert
# schemas), then the number of cases run, from Hypothesis' statistics. The streams' kill
# loop is benchmarks/kill_test.py --streams local,spark.
#   bash benchmarks/fuzz.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-10}
log=$(mktemp)
CONVENTION_FUZZ_SCALE=$scale python -m pytest -p no:cacheprovider \
    tests/test_io_fuzz.py tests/test_fuzz_contracts.py tests/test_fuzz_stream.py \
    --hypothesis-show-statistics | tee "$log"
cases=$(grep -Eo '[0-9]+ passing' "$log" | awk '{s += $1} END {print s}')
echo "fuzz cases run: $cases (scale $scale)"
rm -f "$log"
