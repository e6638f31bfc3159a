"""The LightningModule: wraps any registered model with its loss, metrics and optimiser."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from convention.training.losses import make_loss
from convention.training.settings import LR_SCHEDULES

# The plateau schedule: the rate times 0.3 once the validation macro-F1 has not improved
# for 2 epochs (ReduceLROnPlateau counts the epochs after the best; the third lowers it).
PLATEAU_FACTOR = 0.3
PLATEAU_PATIENCE = 2


class ClassifierModule(L.LightningModule):
    """Trains a registered model: its forward takes a batch's named input tensors and
    returns logits.

    Logs ``train_loss``, ``val_loss``, ``val_acc`` and ``val_macro_f1`` (the monitored one).

    ``lr_schedule``: ``constant`` keeps ``lr`` throughout; ``onecycle`` warms up to ``lr``
    over the first 30% of the run's optimiser steps and anneals it to ~0 by the last
    (Smith & Topin 2019), the choice when the number of epochs is a fixed budget;
    ``plateau`` starts at ``lr`` and multiplies it by ``PLATEAU_FACTOR`` after
    ``PLATEAU_PATIENCE`` epochs without a better validation macro-F1, the choice when early
    stopping ends the run: with the default early-stopping patience of 8 the rate is
    lowered twice before the run stops.
    """

    def __init__(
        self,
        model: nn.Module,
        n_classes: int,
        loss: str = "focal",
        lr: float = 5e-4,
        weight_decay: float = 0.13,
        lr_schedule: str = "constant",
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.model = model
        self.loss = make_loss(loss)
        self.lr, self.weight_decay = lr, weight_decay
        self.val_f1 = MulticlassF1Score(n_classes, average="macro")
        self.val_acc = MulticlassAccuracy(n_classes, average="micro")

    def forward(self, batch: dict) -> torch.Tensor:
        """Logits of a batch ``{"inputs": {name: tensor}, "label": ...}``."""
        return self.model(**batch["inputs"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch["label"])
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["label"]),
        )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch)
        n = len(batch["label"])
        self.log("val_loss", self.loss(logits, batch["label"]), batch_size=n)
        self.val_f1.update(logits, batch["label"])
        self.val_acc.update(logits, batch["label"])
        self.log("val_macro_f1", self.val_f1, prog_bar=True, batch_size=n)
        self.log("val_acc", self.val_acc, batch_size=n)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.lr, weight_decay=self.weight_decay, amsgrad=True
        )
        if self.lr_schedule == "constant":
            return optimizer
        if self.lr_schedule == "plateau":
            return on_plateau(optimizer)
        return one_cycle(optimizer, self.lr, int(self.trainer.estimated_stepping_batches))


def one_cycle(optimizer: torch.optim.Optimizer, peak_lr: float, steps: int) -> dict:
    """Lightning's optimiser configuration with a one-cycle schedule over ``steps``
    optimiser steps, stepped every step."""
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak_lr, total_steps=steps, cycle_momentum=False
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def on_plateau(optimizer: torch.optim.Optimizer) -> dict:
    """Lightning's optimiser configuration with the rate lowered when the validation
    macro-F1 stalls, checked after every validation epoch."""
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
    )
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": "val_macro_f1"},
    }
