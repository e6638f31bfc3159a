"""Compare two results folders of one bench suite, run by run: are the test metrics the
same? The check that a change which should not change behaviour did not.

    python benchmarks/compare_suites.py BEFORE_OUT AFTER_OUT [--json comparison.json]

BEFORE_OUT and AFTER_OUT are two ``convention bench --out`` folders of the same suite,
made with the same seeds and ``--jobs``. Prints one line per run (row and seed) and exits
1 when any run's metrics differ, or a run is missing from either side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _runs(out: Path) -> dict[str, dict]:
    return {
        str(path.relative_to(out / "runs")): json.loads(path.read_text())
        for path in sorted((out / "runs").glob("*/seed_*.json"))
        if not path.name.endswith(".failed.json")
    }


def compare(before: Path, after: Path) -> dict:
    """Per run: identical metrics or not, and both macro-F1s; robustness curves too."""
    a, b = _runs(before), _runs(after)
    rows = {}
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            rows[name] = {
                "identical": False,
                "missing_from": "before" if name not in a else "after",
            }
            continue
        rows[name] = {
            "identical": a[name]["metrics"] == b[name]["metrics"],
            "macro_f1_before": a[name]["metrics"]["macro_f1"],
            "macro_f1_after": b[name]["metrics"]["macro_f1"],
            "commit_before": a[name].get("git_commit"),
            "commit_after": b[name].get("git_commit"),
        }
    curves = [json.loads((d / "robustness.json").read_text()) for d in (before, after)]
    return {
        "runs": rows,
        "robustness_identical": curves[0]["curves"] == curves[1]["curves"],
        "all_identical": all(r["identical"] for r in rows.values())
        and curves[0]["curves"] == curves[1]["curves"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--json", type=Path, help="write the comparison here")
    args = parser.parse_args()
    result = compare(args.before, args.after)
    for name, row in result["runs"].items():
        if "missing_from" in row:
            print(f"{name}: missing from {row['missing_from']}")
        else:
            print(
                f"{name}: {'identical' if row['identical'] else 'DIFFERENT'} "
                f"(macro-F1 {row['macro_f1_before']:.4f} -> {row['macro_f1_after']:.4f})"
            )
    print(f"robustness curves: {'identical' if result['robustness_identical'] else 'DIFFERENT'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    sys.exit(0 if result["all_identical"] else 1)


if __name__ == "__main__":
    main()
