"""Train a registered model on a store: seeded stratified splits, one Lightning run per fold.

A run folder holds ``config.json`` (the resolved settings and the split of every fold, by
object id) and one ``fold_<k>`` folder per fold with the best checkpoint (``model.pt`` +
``settings.json``, chosen on validation macro-F1), Lightning's ``metrics.csv`` and the
Lightning checkpoint. The run is written to ``<out>.partial`` and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from convention.bands import get_band
from convention.classes import get_taxonomy
from convention.errors import ConventionError
from convention.io import read
from convention.models import create_model
from convention.training.checkpoint import ModelSettings, save_model
from convention.training.data import StampDataModule, class_targets, make_splits
from convention.training.device import device_name, resolve_device
from convention.training.module import LR_SCHEDULES, ClassifierModule

CONFIG_FILE = "config.json"
PRECISIONS = ("32", "bf16-mixed")


@dataclass
class TrainSettings:
    """Everything a training run depends on (saved as the run's config.json)."""

    data: str
    out: str
    model: str = "convention"
    preset: str = "cpu"
    folds: int = 1
    epochs: int = 30
    classes: int = 4
    batch_size: int = 32
    # The paper's 2e-3 at batch 128, scaled linearly to batch 32 (2e-3 oscillates here).
    lr: float = 5e-4
    lr_schedule: str = "constant"  # or onecycle: warm-up, then annealed over the epochs
    weight_decay: float = 0.13
    loss: str = "focal"
    oversample: bool = True
    patience: int = 8
    seed: int = 0
    max_minutes: float | None = None
    overrides: dict = field(default_factory=dict)
    progress: bool = True
    bands: tuple[str, ...] | None = None  # train on these bands only (default: all)
    device: str = "auto"  # cpu, cuda, or auto (CUDA when torch sees a GPU)
    # 32, or bf16-mixed: bfloat16 autocast in training (weights, inference stay float32);
    # about 1.3-1.8x faster on CPUs with AMX or AVX512-BF16, slower on others.
    precision: str = "32"


def _quiet_lightning() -> None:
    """Keep Lightning's start-up chatter and known-harmless warnings off the user's screen."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for message in (
        ".*LeafSpec.*",
        "The number of training batches.*",
        ".*does not have many workers.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def _check_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise ConventionError("output folder exists and is not empty", path=out)
    if not out.parent.is_dir():
        raise ConventionError(f"folder {str(out.parent)!r} does not exist", path=out)


def check_precision(precision: str) -> None:
    """Refuse a precision Lightning is not asked for here.

    Raises:
        ConventionError: ``precision`` is not one of ``PRECISIONS``.
    """
    if precision not in PRECISIONS:
        raise ConventionError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")


def train(settings: TrainSettings) -> Path:
    """Train every fold and return the run folder.

    Raises:
        ConventionError: unusable data (a class without objects, wrong bands or sizes),
            unknown model or preset, or an output folder already in use.
    """
    out = Path(settings.out)
    check_precision(settings.precision)
    if settings.lr_schedule not in LR_SCHEDULES:
        raise ConventionError(
            f"unknown learning-rate schedule {settings.lr_schedule!r}; "
            f"known: {', '.join(LR_SCHEDULES)}"
        )
    _check_out(out)
    device = resolve_device(settings.device)
    _quiet_lightning()
    store = read(settings.data)
    bands = _bands(settings, store)
    classes = get_taxonomy(settings.classes).classes
    targets = class_targets(store.labels, classes)
    counts = np.bincount(targets[targets >= 0], minlength=len(classes))
    empty = [c for c, n in zip(classes, counts, strict=True) if n < max(settings.folds, 2) + 1]
    if empty:
        raise ConventionError(
            f"too few objects of class {', '.join(empty)} to split "
            f"(counts {dict(zip(classes, counts.tolist(), strict=True))})",
            path=settings.data,
        )
    splits = make_splits(targets, settings.folds, settings.seed)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        config = {
            "settings": asdict(settings),
            "classes": list(classes),
            "bands": bands,
            "store_provenance": store.provenance,
            "splits": [
                {part: [store.object_ids[i] for i in idx] for part, idx in s.items()}
                for s in splits
            ],
        }
        (partial / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
        for k, split in enumerate(splits):
            _train_fold(
                settings,
                store,
                bands,
                classes,
                split,
                partial / f"fold_{k}",
                seed=settings.seed + k,
                device=device,
            )
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def _heatmap_shape(cfg) -> tuple[int, int]:
    return (getattr(cfg, "wavelength_bins", 32), getattr(cfg, "time_bins", 48))


def _bands(settings: TrainSettings, store) -> list[str]:
    """The bands to train on, canonical names in the store's order.

    Raises:
        ConventionError: a band the store does not hold.
    """
    if not settings.bands:
        return list(store.bands)
    wanted = {get_band(b, store.survey).name for b in settings.bands}
    missing = sorted(wanted - set(store.bands))
    if missing:
        raise ConventionError(
            f"bands {missing} are not in the store (bands {store.bands})", path=store.path
        )
    return [b for b in store.bands if b in wanted]


def _train_fold(
    settings: TrainSettings, store, bands, classes, split, folder: Path, seed: int, device: str
) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    model = create_model(
        settings.model, len(classes), len(bands), settings.preset, **settings.overrides
    )
    cfg = model.config
    reads = getattr(cfg, "input", "stamps")
    if reads == "stamps" and store.stamp_shape != (cfg.stamp_size, cfg.stamp_size):
        raise ConventionError(
            f"stamps are {store.stamp_shape[0]}x{store.stamp_shape[1]}, the {settings.preset} "
            f"preset reads {cfg.stamp_size}x{cfg.stamp_size} (set stamp_size)",
            path=store.path,
        )
    datamodule = StampDataModule(
        store,
        classes,
        split,
        cfg.stamp_size,
        cfg.max_frames,
        settings.batch_size,
        settings.oversample,
        seed,
        input=reads,
        bands=bands,
        heatmap_shape=_heatmap_shape(cfg),
    )
    module = ClassifierModule(
        model, len(classes), settings.loss, settings.lr, settings.weight_decay, settings.lr_schedule
    )
    best = ModelCheckpoint(
        dirpath=folder / "lightning",
        filename="best",
        monitor="val_macro_f1",
        mode="max",
        save_top_k=1,
    )
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        max_time=timedelta(minutes=settings.max_minutes) if settings.max_minutes else None,
        callbacks=[best, EarlyStopping("val_macro_f1", mode="max", patience=settings.patience)],
        logger=CSVLogger(folder, name="", version=""),
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=settings.precision,
        # Some CUDA kernels (scatter-adds in backward passes) have no deterministic
        # version: there torch warns instead of stopping the run.
        deterministic=True if device == "cpu" else "warn",
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    settings_out = ModelSettings(
        model=settings.model,
        preset=settings.preset,
        overrides=dict(settings.overrides),
        classes=tuple(classes),
        bands=tuple(bands),
        normalisation=datamodule.norm,
        stamp_size=cfg.stamp_size,
        max_frames=cfg.max_frames,
        other_bands="error" if list(bands) == list(store.bands) else "drop",
    )
    save_model(folder, module.model, settings_out)
    summary = {
        "best_val_macro_f1": float(best.best_model_score),
        "epochs": trainer.current_epoch,
        "train_seconds": round(seconds, 1),
        "device": device_name(device),
        "model_config": asdict(cfg),
    }
    (folder / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
