"""Train a registered model on a data set (anything ``convention.read`` opens): seeded
stratified splits, one Lightning run per fold.

The run folder (:mod:`convention.training.run_folder`) is written to ``<out>.partial`` and
renamed when complete; each fold keeps its best checkpoint, chosen on validation macro-F1.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy

from convention.bands import get_band
from convention.classes import class_targets, get_taxonomy
from convention.classifier.calibration import fit_temperature
from convention.classifier.folder import load_backbone, save_model
from convention.classifier.settings import ModelSettings
from convention.data.collection import SeriesCollection, median_reference_objects
from convention.data.splits import label_subset, make_splits
from convention.device import device_name, resolve_device
from convention.errors import ConventionError
from convention.files import (
    check_output_folder,
    claim_folder,
    refuse_overwriting_inputs,
    write_atomic,
)
from convention.inputs import InputEncoder, needs_of
from convention.io import read
from convention.models import create_model
from convention.models.registry import Network
from convention.progress import to_terminal
from convention.training.datamodule import StampDataModule
from convention.training.logs import EpochLines, csv_rows, quiet_lightning
from convention.training.module import ClassifierModule
from convention.training.run_folder import (
    CONFIG_FILE,
    METRICS_FILE,
    TRAINING_FILE,
    RunFolder,
    fold_folder,
)
from convention.training.settings import TrainSettings


def _check_out(out: Path, data: Path) -> None:
    refuse_overwriting_inputs([out], [data])
    check_output_folder(out)
    if out.exists() and any(out.iterdir()):
        raise ConventionError("output folder exists and is not empty", path=out)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoints written to a temporary file and renamed: a kill while
    last.ckpt is written leaves the previous one, which a resumed run reads."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda tmp: torch.save(checkpoint, tmp))


class RandomState(Callback):
    """Saves torch's global random state (dropout draws from it) in every Lightning
    checkpoint and restores it on resume, so a resumed run draws what an uninterrupted
    one would have."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["torch_random_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        torch.set_rng_state(checkpoint["torch_random_state"])


def resume(run: str | Path) -> Path:
    """Finish a training run that was stopped (killed, or interrupted with Ctrl-C): the
    folds already done are kept, the fold under way continues from its last completed
    epoch with its random state, and the run ends with the weights and metrics an
    uninterrupted run would have had.

    Args:
        run: the run's ``--out`` (its ``<out>.partial`` folder holds the work so far).

    Raises:
        ConventionError: no stopped run there, or data that no longer gives its splits.
    """
    out = Path(run)
    partial = out.with_name(out.name + ".partial")
    config = partial / CONFIG_FILE
    if not config.is_file():
        raise ConventionError(
            f"no stopped run to resume ({partial.name} holds no {CONFIG_FILE})", path=out
        )
    stopped = RunFolder(partial, stopped=True)
    return train(stopped.settings, resume_from=stopped.splits)


def train(settings: TrainSettings, resume_from: list[dict] | None = None) -> Path:
    """Train every fold and return the run folder.

    Args:
        settings: the run.
        resume_from: the splits (by object id) of a stopped run to continue in
            ``<out>.partial`` (``resume`` passes them); None starts afresh.

    Raises:
        ConventionError: unusable data (a class without objects, wrong bands or sizes),
            unknown model or preset, or an output folder already in use.
    """
    out = Path(settings.out)
    settings.validate()
    rank = global_rank(settings)
    if rank == 0:
        _check_out(out, Path(settings.data))
    device = resolve_device(settings.device)
    if settings.devices > 1 and device == "cpu":
        # One share of the cores per process: oversubscribed threads spin.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.devices))
    quiet_lightning()
    spec = create_model(settings.model, 2, 1, settings.preset, **settings.overrides).input_spec
    needs = needs_of(spec)  # the images the model reads beside its frames
    store = read(
        settings.data,
        require_channels=needs.channels,
        offer_channels=needs.own_channels,
        **settings.reader_options,
    )
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
    try:
        folds = make_splits(targets, settings.folds, settings.seed)
    except ValueError:  # scikit-learn's: a part would lack a class
        split = f"{settings.folds} folds" if settings.folds > 1 else "a 70/10/20 split"
        raise ConventionError(
            f"too few labelled objects for {split} holding every class in each part (counts "
            f"{dict(zip(classes, counts.tolist(), strict=True))}): about 10 of each class "
            "at the least",
            path=settings.data,
        ) from None
    splits = [
        {**split, "train": label_subset(split["train"], targets, settings.label_fraction, seed)}
        for seed, split in enumerate(folds, start=settings.seed)
    ]
    partial = out.with_name(out.name + ".partial")
    # A resumed run skips the folds it finished; every process of a distributed run sees
    # the same ones (process 0 writes no new one before the others have joined).
    todo = [
        k
        for k in range(len(splits))
        if resume_from is None or not (fold_folder(partial, k) / TRAINING_FILE).is_file()
    ]

    def train_folds() -> None:
        for k in todo:
            fold = fold_folder(partial, k)
            seed = settings.seed + k
            _train_fold(settings, store, bands, classes, splits[k], fold, seed, device, rank)

    if rank > 0:
        # Another process of a distributed run: it trains beside process 0, which alone
        # writes the run (config, checkpoints, metrics).
        train_folds()
        return out
    # The folder being written is locked while this process lives: a second train with
    # the same --out is refused instead of deleting a live run's work.
    if resume_from is None:
        stale = claim_folder(partial) if partial.is_dir() else None  # a killed run's
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        lock = claim_folder(partial)
        if stale is not None:
            os.close(stale)
    else:
        lock = claim_folder(partial)
    try:
        if resume_from is not None:
            ids = store.object_ids
            now = [{p: [ids[i] for i in s[p]] for p in s} for s in splits]
            if now != resume_from:
                raise ConventionError(
                    "the data no longer gives the stopped run's splits", path=settings.data
                )
        try:
            RunFolder.write_config(partial, settings, classes, bands, store, splits)
            train_folds()
            if out.exists():
                out.rmdir()
            partial.rename(out)
        except KeyboardInterrupt:
            raise  # the partial run stays, for --resume
        except BaseException:
            if resume_from is None:
                shutil.rmtree(partial, ignore_errors=True)
            raise
    finally:
        os.close(lock)
    return out


@torch.no_grad()
def _logits(model: torch.nn.Module, batches) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) logits of the eval-mode model on collated batches, and their (N,) labels."""
    model.eval()
    logits, labels = [], []
    for batch in batches:
        logits.append(model(**batch["inputs"]).float().cpu().numpy())
        labels.append(batch["label"].cpu().numpy())
    if not logits:
        return np.zeros((0, 1)), np.zeros(0, dtype=np.int64)
    return np.concatenate(logits), np.concatenate(labels)


def global_rank(settings: TrainSettings) -> int:
    """This process's rank in a distributed run (0 alone): from torchrun (``RANK``), SLURM
    (``SLURM_PROCID``) or Lightning's own launcher (``NODE_RANK``, ``LOCAL_RANK``)."""
    if settings.world_size == 1:
        return 0
    # The order in which Lightning picks its cluster environment.
    if SLURMEnvironment.detect():
        return int(os.environ["SLURM_PROCID"])
    if TorchElasticEnvironment.detect():
        return int(os.environ["RANK"])
    node = int(os.environ.get("NODE_RANK", 0))
    return node * settings.devices + int(os.environ.get("LOCAL_RANK", 0))


def _prepend_rows(path: Path, earlier: list[dict]) -> None:
    """Put a stopped run's metrics of the epochs before the resumed one back in front."""
    later = csv_rows(path)
    resumed = min((int(float(r["epoch"])) for r in later if r.get("epoch")), default=0)
    rows = [r for r in earlier if r.get("epoch") and int(float(r["epoch"])) < resumed] + later
    columns = list(dict.fromkeys(c for r in rows for c in r))

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)


def _start_from_backbone(
    model: torch.nn.Module, settings: TrainSettings, bands: list[str]
) -> dict[str, dict]:
    """Load the pre-trained backbone ``settings.init`` into ``model`` (every weight but the
    head's); returns its input normalisation, which the fine-tuning keeps.

    Raises:
        ConventionError: not a backbone, or one of another model, preset or bands.
    """
    backbone_settings, backbone = load_backbone(settings.init)
    ours = (settings.model, settings.preset, dict(settings.overrides), tuple(bands))
    theirs = (
        backbone_settings.model,
        backbone_settings.preset,
        dict(backbone_settings.overrides),
        tuple(backbone_settings.bands),
    )
    if ours != theirs:
        raise ConventionError(
            f"the backbone is {theirs[0]} ({theirs[1]}, overrides {theirs[2]}, bands "
            f"{list(theirs[3])}), this run {ours[0]} ({ours[1]}, overrides {ours[2]}, bands "
            f"{list(ours[3])})",
            path=settings.init,
        )
    backbone_head = classifier_keys(backbone)
    weights = {k: v for k, v in backbone.state_dict().items() if k not in backbone_head}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - classifier_keys(model):
        raise ConventionError("the backbone's weights do not fit the model", path=settings.init)
    return backbone_settings.encoders


def classifier_keys(model: Network) -> set[str]:
    """The state-dict keys of the model's head (``get_classifier``), which fine-tuning
    leaves untrained."""
    head = model.get_classifier()
    prefix = next(name for name, module in model.named_modules() if module is head)
    return {f"{prefix}.{key}" for key in head.state_dict()}


def _bands(settings: TrainSettings, store: SeriesCollection) -> list[str]:
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
    settings: TrainSettings,
    store: SeriesCollection,
    bands: list[str],
    classes: tuple[str, ...],
    split: dict[str, np.ndarray],
    folder: Path,
    seed: int,
    device: str,
    rank: int = 0,
) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    model = create_model(
        settings.model, len(classes), len(bands), settings.preset, **settings.overrides
    )
    spec = model.input_spec
    other_bands = "error" if list(bands) == list(store.bands) else "drop"
    InputEncoder(spec, bands, other_bands).check_collection(store)
    fallback = median_reference_objects(store)
    states = _start_from_backbone(model, settings, bands) if settings.init else None
    datamodule = StampDataModule(
        store,
        classes,
        split,
        InputEncoder(spec, bands, other_bands, states),
        settings.batch_size,
        settings.oversample,
        seed,
        workers=torch.get_num_threads(),
        # Beside the run, which only process 0 writes (and may not have made yet).
        cache_folder=folder.parent if rank == 0 else None,
        truncate_fraction=settings.truncate_fraction,
        fit_encoder=states is None,
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
        save_last=True,  # last.ckpt: where a stopped run resumes
    )
    last = folder / "lightning" / "last.ckpt"
    # Off a terminal (a log), a plain line per epoch instead of Lightning's bar.
    lines = settings.progress and rank == 0 and not to_terminal()
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        max_time=timedelta(minutes=settings.max_minutes) if settings.max_minutes else None,
        callbacks=[
            best,
            EarlyStopping("val_macro_f1", mode="max", patience=settings.patience),
            RandomState(),
            *([EpochLines(f"training {folder.name}")] if lines else []),
        ],
        logger=CSVLogger(folder, name="", version=""),
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        # Some models leave parameters out of some batches' loss (a band combination
        # absent, an input kind masked): DDP must look for them.
        strategy=(
            DDPStrategy(find_unused_parameters=True)
            if settings.world_size > 1
            else settings.strategy
        ),
        precision=settings.precision,
        # Some CUDA kernels (scatter-adds in backward passes) have no deterministic
        # version: there torch warns instead of stopping the run.
        deterministic=True if device == "cpu" else "warn",
        enable_progress_bar=settings.progress and not lines,
        enable_model_summary=False,
        log_every_n_steps=10,
        plugins=[AtomicCheckpointIO()],
    )
    start = time.perf_counter()
    metrics_csv = folder / METRICS_FILE
    earlier = csv_rows(metrics_csv) if last.is_file() else []
    if last.is_file():
        try:
            torch.load(last, map_location="cpu", weights_only=True)
        except Exception as err:  # a checkpoint cut short by the kill
            raise ConventionError(
                f"cannot resume from this checkpoint ({type(err).__name__}); train afresh",
                path=last,
            ) from None
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if last.is_file() else None)
    if rank > 0:
        datamodule.close()
        return
    if earlier:  # Lightning's logger rewrote metrics.csv from the resumed epoch on
        _prepend_rows(metrics_csv, earlier)
    seconds = time.perf_counter() - start
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    temperature = fit_temperature(*_logits(module.model, datamodule.val_dataloader()))
    settings_out = ModelSettings(
        model=settings.model,
        preset=settings.preset,
        overrides=dict(settings.overrides),
        classes=tuple(classes),
        bands=tuple(bands),
        inputs=spec,
        encoders=datamodule.encoder.states,
        other_bands=other_bands,
        temperature=temperature,
    )
    save_model(folder, module.model, settings_out)
    summary = {
        "best_val_macro_f1": float(best.best_model_score),
        "epochs": trainer.current_epoch,
        "temperature": temperature,
        "train_seconds": round(seconds, 1),
        "device": device_name(device),
        "model_config": asdict(model.config),
        # Objects the model read with part of an input masked, per split and input kind.
        "incomplete_inputs": {part: datamodule.incomplete(part) for part in ("train", "val")},
        # Objects with a band whose reference is the median of its own frames.
        "median_reference_objects": {
            part: int(fallback[split[part]].sum()) for part in ("train", "val")
        },
    }
    datamodule.close()
    # Its presence marks the fold finished (a resumed run skips it): written whole.
    text = json.dumps(summary, indent=1) + "\n"
    write_atomic(folder / TRAINING_FILE, lambda tmp: tmp.write_text(text))
