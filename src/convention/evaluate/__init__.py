"""Evaluation: metrics over folds, figures, and the Markdown/HTML report."""

from convention.evaluate.metrics import aggregate, classification_metrics
from convention.evaluate.run import evaluate_run

__all__ = ["aggregate", "classification_metrics", "evaluate_run"]
