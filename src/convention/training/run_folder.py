"""The run folder, read and written in one place.

A run folder holds ``config.json`` (the resolved :class:`TrainSettings`, the classes and
bands, the data's provenance and the split of every fold by object id) and one
``fold_<k>`` folder per fold: the best checkpoint (``model.pt`` + ``settings.json``),
``training.json`` (best validation macro-F1, epochs, seconds, device, model config),
Lightning's ``metrics.csv`` and its checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from convention.classes import class_targets
from convention.classifier import BatchPrediction, Classifier, read_settings
from convention.data.collection import SeriesCollection
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.files import check_input_path, inside_folder, write_atomic
from convention.inputs import Needs, needs_of
from convention.training.settings import TrainSettings

CONFIG_FILE = "config.json"
TRAINING_FILE = "training.json"
METRICS_FILE = "metrics.csv"
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class FoldScores:
    """One fold's model on some objects: their ids, positions in the data, class indices
    (-1 = not of the model's classes) and (n, C) probabilities."""

    object_ids: list[str]
    rows: np.ndarray
    targets: np.ndarray
    proba: np.ndarray


def fold_folder(run: Path, k: int) -> Path:
    """Where fold k of the run at ``run`` lives."""
    return run / f"fold_{k}"


class RunFolder:
    """A training run, opened for reading; ``stopped``: a run's ``<out>.partial`` that
    was killed or interrupted, whose later folds may not exist yet.

    Raises:
        ConventionError: no config.json, an unreadable one, or fold folders missing.
    """

    def __init__(self, path: str | Path, stopped: bool = False):
        self.path = check_input_path(path, "run")
        config_path = self._part(CONFIG_FILE)
        if not config_path.is_file():
            raise ConventionError(f"not a training run (no {CONFIG_FILE})", path=self.path)
        try:
            config = json.loads(config_path.read_text())
            self.settings = TrainSettings.from_dict(config["settings"])
            self.classes: list[str] = list(config["classes"])
            self.bands: list[str] = list(config["bands"])
            self.provenance: dict = dict(config.get("store_provenance", {}))
            self.splits: list[dict[str, list[str]]] = [
                {part: [str(o) for o in split[part]] for part in PARTS}
                for split in config["splits"]
            ]
        except (OSError, ValueError, KeyError, TypeError, IndexError, OverflowError) as err:
            raise ConventionError(
                f"unreadable run config ({type(err).__name__}: {err})", path=config_path
            ) from None
        for k in range(self.n_folds):
            self._part(fold_folder(Path(), k).name)
        missing = [k for k in range(len(self.splits)) if not self.fold(k).is_dir()]
        if missing and not stopped:
            raise ConventionError(f"fold folder(s) {missing} missing", path=self.path)

    def _part(self, name: str) -> Path:
        """A file or folder of the run, which must lie in it (links followed).

        Raises:
            ConventionError: a part that leads outside the run.
        """
        try:
            return inside_folder(self.path, name)
        except ConventionError as err:
            raise ConventionError(err.cause, path=self.path) from None

    @staticmethod
    def write_config(
        folder: Path,
        settings: TrainSettings,
        classes: Sequence[str],
        bands: Sequence[str],
        data: SeriesCollection,
        splits: Sequence[dict[str, np.ndarray]],
    ) -> None:
        """Write ``config.json`` of a run being made in ``folder``; splits are positions into
        ``data``, saved as object ids."""
        ids = data.object_ids
        config = {
            "settings": asdict(settings),
            "classes": list(classes),
            "bands": list(bands),
            "store_provenance": data.provenance,
            "splits": [{part: [ids[i] for i in s[part]] for part in PARTS} for s in splits],
        }
        text = json.dumps(config, indent=1) + "\n"
        write_atomic(folder / CONFIG_FILE, lambda tmp: tmp.write_text(text))

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.splits)

    def fold(self, k: int) -> Path:
        """Fold k's folder."""
        return fold_folder(self.path, k)

    def training(self, k: int) -> dict:
        """Fold k's training summary (training.json)."""
        path = self.fold(k) / TRAINING_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConventionError(f"unreadable ({type(err).__name__})", path=path) from None

    def metrics_files(self) -> list[Path]:
        """Each fold's Lightning metrics.csv, where it exists."""
        files = (self.fold(k) / METRICS_FILE for k in range(self.n_folds))
        return [f for f in files if f.is_file()]

    def needs(self) -> Needs:
        """What the run's model reads beside its frames (its first fold's input spec)."""
        return needs_of(read_settings(self.fold(0)).inputs)

    def classifier(self, k: int | None = None, device: str = "cpu") -> Classifier:
        """Fold k's model, or the ensemble of every fold when ``k`` is None."""
        return Classifier.load(self.path if k is None else self.fold(k), device)

    def holds_splits_of(self, data: SeriesCollection) -> bool:
        """Whether ``data`` holds every fold's test objects (the run was trained on it)."""
        ids = set(data.object_ids)
        return all(o in ids for split in self.splits for o in split["test"])

    def rows(self, data: SeriesCollection, k: int, part: str = "test") -> np.ndarray:
        """Positions in ``data`` of fold k's objects of ``part``.

        Raises:
            ConventionError: an object of the split is not in ``data``.
        """
        position = {oid: i for i, oid in enumerate(data.object_ids)}
        missing = [o for o in self.splits[k][part] if o not in position]
        if missing:
            raise ConventionError(
                f"{len(missing)} {part} objects of fold {k} are not in the data "
                f"(first: {missing[0]})",
                path=data.path,
            )
        return np.array([position[o] for o in self.splits[k][part]], dtype=np.int64)

    def score(
        self,
        data: SeriesCollection,
        k: int,
        part: str = "test",
        device: str = "cpu",
        transform: Callable[[StampSeries, int], StampSeries] | None = None,
        batch_size: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> FoldScores:
        """Fold k's model on its ``part`` objects of ``data`` (default its test split).

        Args:
            data: the data the run was trained on.
            k: the fold.
            part: ``train``, ``val`` or ``test``.
            device: where the model runs.
            transform: applied to each series with its position before it is classified
                (the robustness curve removes frames).
            batch_size: objects per batch.
            on_batch: called with each batch's number of objects (progress).

        Raises:
            ConventionError: objects missing from ``data``, or data the model cannot read.
        """
        classifier = self.classifier(k, device)
        classifier.check_data(data)
        rows = self.rows(data, k, part)
        if transform is None:
            batches = classifier.classify(data, rows, batch_size)
        else:
            transformed = (transform(data[int(r)], int(r)) for r in rows)
            batches = classifier.classify(transformed, batch_size=batch_size)
        scores = BatchPrediction.join(_counted(batches, on_batch), classifier.classes)
        targets = class_targets(data.labels, classifier.classes)[rows]
        return FoldScores(scores.ids, rows, targets, scores.proba)


def _counted(
    batches: Iterator[BatchPrediction], on_batch: Callable[[int], None] | None
) -> Iterator[BatchPrediction]:
    """The batches, ``on_batch`` called with each one's number of objects."""
    for batch in batches:
        if on_batch is not None:
            on_batch(len(batch.ids) + len(batch.skipped))
        yield batch
