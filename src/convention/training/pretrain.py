"""Self-supervised pre-training: contrastive learning (SimCLR, Chen et al. 2020) on
unlabelled image time series, the step the ConvEntion paper names as its next.

Every object gives two views: the object cut to its first k nights, twice, k drawn
uniformly from one night to all for each view (so the features and light curve differ as
well as the frames), each augmented as in training (frame drop, crop, rotation, flips). The
model's fused features (``forward_features``) pass a projection head; the NT-Xent loss at
``temperature`` draws an object's two views together and pushes the batch's other objects
apart. What an object looks like after a few nights is learnt to resemble what it becomes.

The result is a backbone folder: ``model.pt`` and ``settings.json`` as a trained model's
(the head untrained), the input normalisation fitted on the pre-training data, and
``pretraining.json`` (the settings and the loss per epoch), which marks it as a backbone:
it does not classify; ``convention train --init FOLDER`` fine-tunes it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

from convention.classes import get_taxonomy
from convention.classifier.folder import PRETRAINING_FILE, save_model
from convention.classifier.settings import ModelSettings
from convention.data.collection import Subset
from convention.data.cutoff import truncation_draws
from convention.errors import ConventionError
from convention.files import (
    check_output_folder,
    claim_folder,
    refuse_overwriting_inputs,
    write_atomic,
)
from convention.inputs import Example, InputEncoder
from convention.io import read
from convention.models import create_model
from convention.models.registry import Network, resolve_config
from convention.progress import to_terminal
from convention.training.datamodule import encode_rows
from convention.training.example_cache import ExampleCache
from convention.training.logs import EpochLines, csv_rows, quiet_lightning
from convention.training.module import one_cycle
from convention.training.settings import check_precision

VIEW_STREAMS = (101, 102)  # the two views' truncation draws, apart from training's


@dataclass
class PretrainSettings:
    """Everything a pre-training run depends on (saved in ``pretraining.json``).

    Attributes:
        data: the stores read (their labels are not).
        out: the backbone folder to write.
        rows: per store, the positions to read (None: all); the benchmark leaves the test
            split out.
        model, preset, overrides: the registered model (any: its ``forward_features``
            are what is pre-trained).
        epochs: passes over the objects.
        batch_size: objects per step (each gives two views).
        lr, weight_decay: AdamW's, with a one-cycle schedule over the epochs.
        temperature: the NT-Xent temperature.
        projection: width of the projection head's output.
        seed: seeds the views, the sampler, augmentation and weights.
        precision: ``32`` or ``bf16-mixed``.
    """

    data: tuple[str, ...]
    out: str
    rows: tuple[tuple[int, ...] | None, ...] | None = None
    model: str = "convention-multi"
    preset: str = "cpu"
    overrides: dict = field(default_factory=dict)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    temperature: float = 0.2
    projection: int = 64
    seed: int = 0
    precision: str = "32"
    progress: bool = True

    def validate(self) -> None:
        """Refuse settings no run can use, before anything is read.

        Raises:
            ConventionError: naming the setting.
        """
        if not self.data:
            raise ConventionError("give at least one --data store to pre-train on")
        resolve_config(self.model, self.preset, **self.overrides)
        check_precision(self.precision)
        for name in ("epochs", "batch_size", "projection"):
            if getattr(self, name) < 1:
                raise ConventionError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConventionError("batch_size must be at least 2 (the other objects contrast)")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ConventionError(f"{name} must be positive, got {getattr(self, name):g}")


class ContrastiveModule(L.LightningModule):
    """NT-Xent between the two views of each object of a batch.

    Args:
        model: a registered model (its ``forward_features`` and ``num_features``).
        projection: the projection head's output width.
        temperature: the softmax temperature of the similarities.
        lr, weight_decay: AdamW's; one-cycle schedule.
    """

    def __init__(
        self,
        model: Network,
        projection: int,
        temperature: float,
        lr: float,
        weight_decay: float,
    ):
        super().__init__()
        self.model = model
        width = model.num_features
        self.projector = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Linear(width, projection)
        )
        self.temperature, self.lr, self.weight_decay = temperature, lr, weight_decay

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        z = F.normalize(self.projector(self.model.forward_features(**batch["inputs"])), dim=1)
        loss = nt_xent(z.float(), self.temperature)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        return one_cycle(optimizer, self.lr, int(self.trainer.estimated_stepping_batches))


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """The normalised-temperature cross-entropy of (2B, d) unit vectors whose rows k and
    k + B are the two views of object k: each view must pick its twin among the other
    2B - 1."""
    n = z.shape[0] // 2
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    twin = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, twin)


class ViewPairs(Dataset):
    """Object k's two encoded views, each augmented on access."""

    def __init__(
        self,
        first: Sequence[Example],
        second: Sequence[Example],
        encoder: InputEncoder,
        rng: np.random.Generator,
    ):
        self.first, self.second, self.encoder, self._rng = first, second, encoder, rng

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, k: int) -> tuple[Example, Example]:
        return (
            self.encoder.augment(self.first[k], self._rng),
            self.encoder.augment(self.second[k], self._rng),
        )


class ViewPairsDataModule(L.LightningDataModule):
    """The pre-training objects' two views, encoded once, batched as 2B examples (all
    first views, then all second views)."""

    def __init__(self, pairs: ViewPairs, batch_size: int, seed: int):
        super().__init__()
        self.pairs, self.batch_size = pairs, batch_size
        self._generator = torch.Generator().manual_seed(seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.pairs,
            self.batch_size,
            shuffle=True,
            drop_last=len(self.pairs) > self.batch_size,
            generator=self._generator,
            collate_fn=self._collate,
        )

    def _collate(self, pairs: list[tuple[Example, Example]]) -> dict:
        return self.pairs.encoder.collate([a for a, _ in pairs] + [b for _, b in pairs])


def pretrain(settings: PretrainSettings) -> Path:
    """Pre-train a backbone on the settings' stores and write its folder.

    Returns:
        The backbone folder.

    Raises:
        ConventionError: bad settings, an output that exists or is an input, stores of
            other bands or stamp sizes, too few objects.
    """
    settings.validate()
    out = Path(settings.out)
    refuse_overwriting_inputs([out], [Path(d) for d in settings.data])
    check_output_folder(out)
    if out.exists():
        raise ConventionError(
            "exists: choose another --out (a backbone is never overwritten)", path=out
        )
    quiet_lightning()
    partial = out.with_name(out.name + ".partial")
    # Locked while this process lives: a second pre-training of this --out is refused.
    stale = claim_folder(partial, "pre-training") if partial.is_dir() else None
    shutil.rmtree(partial, ignore_errors=True)  # what a killed run left
    partial.mkdir(parents=True)
    lock = claim_folder(partial, "pre-training")
    if stale is not None:
        os.close(stale)
    try:
        _pretrain(settings, out, partial)
    finally:
        os.close(lock)
    return out


def _pretrain(settings: PretrainSettings, out: Path, partial: Path) -> None:
    """Pre-train into the locked folder ``partial``, renamed ``out`` when complete."""
    stores = [read(d) for d in settings.data]
    bands = list(stores[0].bands)
    for store in stores[1:]:
        if list(store.bands) != bands or store.stamp_shape != stores[0].stamp_shape:
            raise ConventionError(
                f"bands {list(store.bands)} and {store.stamp_shape} stamps differ from "
                f"{settings.data[0]}'s ({bands}, {stores[0].stamp_shape})",
                path=store.path,
            )
    rows = settings.rows or (None,) * len(stores)
    parts = [
        Subset(s, np.arange(len(s)) if r is None else np.asarray(r))
        for s, r in zip(stores, rows, strict=True)
    ]
    n_objects = sum(len(p) for p in parts)
    if n_objects < settings.batch_size:
        raise ConventionError(
            f"{n_objects} objects to pre-train on, fewer than one batch of {settings.batch_size}"
        )
    L.seed_everything(settings.seed, workers=True, verbose=False)
    classes = get_taxonomy(4).classes
    model = create_model(
        settings.model, len(classes), len(bands), settings.preset, **settings.overrides
    )
    spec = model.input_spec
    encoder = InputEncoder(spec, bands)
    for store in stores:
        encoder.check_collection(store)
    encoder.fit(_Joined(parts), settings.seed)
    views = [
        _encode_views(parts, encoder, settings.seed, stream, partial) for stream in VIEW_STREAMS
    ]
    pairs = ViewPairs(*views, encoder, np.random.default_rng(settings.seed))
    module = ContrastiveModule(
        model, settings.projection, settings.temperature, settings.lr, settings.weight_decay
    )
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        logger=CSVLogger(partial, name="", version=""),
        accelerator="cpu",
        precision=settings.precision,
        deterministic=True,
        enable_checkpointing=False,
        enable_progress_bar=settings.progress and to_terminal(),
        callbacks=[EpochLines("pre-training")] if settings.progress and not to_terminal() else [],
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=ViewPairsDataModule(pairs, settings.batch_size, settings.seed))
    seconds = time.perf_counter() - start
    for view in views:
        view.close()
    backbone = ModelSettings(
        model=settings.model,
        preset=settings.preset,
        overrides=dict(settings.overrides),
        classes=tuple(classes),
        bands=tuple(bands),
        inputs=spec,
        encoders=encoder.states,
    )
    save_model(partial, model, backbone)
    summary = {
        "settings": asdict(settings),
        "objects": n_objects,
        "loss_per_epoch": _epoch_losses(partial / "metrics.csv"),
        "pretrain_seconds": round(seconds, 1),
    }
    write_atomic(
        partial / PRETRAINING_FILE, lambda p: p.write_text(json.dumps(summary, indent=1) + "\n")
    )
    partial.rename(out)


class _Joined(Sequence):
    """Several collections read one after another (what the encoder is fitted on)."""

    def __init__(self, parts: Sequence[Subset]):
        self.parts = list(parts)
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int):
        part = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.parts[part][index - int(self._starts[part])]


def _encode_views(
    parts: Sequence[Subset], encoder: InputEncoder, seed: int, stream: int, folder: Path
) -> ExampleCache:
    """Every object cut to its first k nights (k uniform, one draw per object and view),
    encoded, in a cache beside the run."""

    def examples():
        for k, part in enumerate(parts):
            store, rows = part.collection, np.asarray(part.rows)
            draws = truncation_draws(len(store), 1.0, seed, stream=(stream, k))
            targets = np.full(len(store), -1)
            yield from encode_rows(store, rows, targets, encoder, torch.get_num_threads(), draws)

    return ExampleCache(examples(), folder)


def _epoch_losses(metrics_csv: Path) -> list[float]:
    return [float(r["train_loss"]) for r in csv_rows(metrics_csv) if r.get("train_loss")]
