"""Evaluation: metrics over folds, figures, and the Markdown/HTML report."""

from convention.evaluate.metrics import aggregate_folds, classification_metrics
from convention.evaluate.run import evaluate_run

__all__ = ["aggregate_folds", "classification_metrics", "evaluate_run"]
