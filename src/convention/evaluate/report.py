"""The evaluation report: metrics.json, report.md and report.html beside the PNG figures."""

from __future__ import annotations

import html
import json
from pathlib import Path

from convention.files import write_atomic


def _table(metrics: dict) -> list[list[str]]:
    rows = [["class", "precision", "recall", "F1", "ROC AUC"]]
    for name, values in metrics["per_class"].items():
        rows.append(
            [name]
            + [
                f"{values[m]['mean']:.3f} ± {values[m]['std']:.3f}"
                for m in ("precision", "recall", "f1", "roc_auc")
            ]
        )
    return rows


def _mean_std(stats: dict) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def write_report(
    out: Path, metrics: dict, figures: dict[str, str], title: str, context: dict[str, str]
) -> None:
    """Write ``metrics.json``, ``report.md`` and ``report.html`` into ``out``.

    Args:
        out: folder (holding the figures already).
        metrics: ``evaluate.metrics.aggregate`` output.
        figures: caption -> PNG file name in ``out``.
        title: report heading.
        context: label -> value lines shown under the heading (data, run, command...).
    """
    text = json.dumps(metrics, indent=1)
    write_atomic(out / "metrics.json", lambda p: p.write_text(text + "\n"))
    summary = (
        f"accuracy {_mean_std(metrics['accuracy'])}, "
        f"macro-F1 {_mean_std(metrics['macro_f1'])}, "
        f"macro ROC AUC {metrics['roc_auc_macro']['mean']:.3f}, "
        f"expected calibration error {_mean_std(metrics['ece'])}, "
        f"Brier score {_mean_std(metrics['brier'])} "
        f"({metrics['n_objects']} test objects, {metrics['n_folds']} fold(s))"
    )
    rows = _table(metrics)
    md = [f"# {title}", "", *[f"- **{k}**: {v}" for k, v in context.items()], "", summary, ""]
    md += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    for caption, name in figures.items():
        md += ["", f"## {caption}", "", f"![{caption}]({name})"]
    write_atomic(out / "report.md", lambda p: p.write_text("\n".join(md) + "\n"))

    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", "<ul>"]
    body += [f"<li><b>{esc(k)}</b>: {esc(str(v))}</li>" for k, v in context.items()]
    body += ["</ul>", f"<p>{esc(summary)}</p>", "<table>"]
    body += ["<tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + "</tr>"]
    body += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows[1:]]
    body += ["</table>"]
    for caption, name in figures.items():
        body += [f"<h2>{esc(caption)}</h2>", f'<img src="{esc(name)}" alt="{esc(caption)}">']
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
        + esc(title)
        + "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
    write_atomic(out / "report.html", lambda p: p.write_text(page))
