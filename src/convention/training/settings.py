"""The settings of a training run: one dataclass, its defaults, its valid values."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from convention.errors import ConventionError

LOSSES = ("focal", "ce")
PRECISIONS = ("32", "bf16-mixed")
LR_SCHEDULES = ("constant", "onecycle", "plateau")
# ddp: one process per device, started by Lightning (which runs the command again for
# each), by torchrun or by SLURM's srun.
STRATEGIES = ("auto", "ddp")


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
    # or onecycle: warm-up, then annealed over the epochs; or plateau: lowered when the
    # validation macro-F1 stalls
    lr_schedule: str = "constant"
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
    # Distributed data parallel (Lightning): processes per node, nodes, and the strategy
    # (auto: one process, or ddp when there are several). On CPUs the processes talk over
    # gloo, on GPUs over NCCL; torchrun and SLURM start the processes themselves.
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    # Early classification: this fraction of the training objects is cut to its first k
    # observing nights (k uniform from one to all, drawn once per object from the seed).
    truncate_fraction: float = 0.0
    # Learning curves: train on this stratified fraction of the training split's labels
    # (validation and test splits unchanged).
    label_fraction: float = 1.0
    # A pre-trained backbone folder (convention pretrain) to start from: its weights
    # (all but the head) and its input normalisation.
    init: str | None = None
    # The data's reader options (``convention formats``: survey, channels, ...).
    reader_options: dict = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        """Training processes in all."""
        return self.devices * self.num_nodes

    def validate(self) -> None:
        """Refuse settings no run can use, before anything is read or written.

        Raises:
            ConventionError: naming the setting, its value and what it may be.
        """
        check_precision(self.precision)
        _one_of("strategy", self.strategy, STRATEGIES)
        check_lr_schedule(self.lr_schedule)
        _one_of("loss", self.loss, LOSSES)
        counts = {
            "folds": self.folds,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "patience": self.patience,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
        }
        for name, value in counts.items():
            if value < 1:
                raise ConventionError(f"{name} must be at least 1, got {value}")
        if not self.lr > 0:
            raise ConventionError(f"lr must be positive, got {self.lr:g}")
        if self.weight_decay < 0:
            raise ConventionError(f"weight_decay must be 0 or more, got {self.weight_decay:g}")
        if self.seed < 0:
            raise ConventionError(f"seed must be 0 or more, got {self.seed}")
        if not 0 <= self.truncate_fraction <= 1:
            raise ConventionError(
                f"truncate_fraction must be between 0 and 1, got {self.truncate_fraction:g}"
            )
        if not 0 < self.label_fraction <= 1:
            raise ConventionError(
                f"label_fraction must be above 0 and at most 1, got {self.label_fraction:g}"
            )
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConventionError(f"max_minutes must be positive, got {self.max_minutes:g}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        """Settings from a run's config.json (keys of older versions left out)."""
        known = {f.name for f in fields(cls)}
        settings = cls(**{k: v for k, v in d.items() if k in known})
        if settings.bands is not None:
            settings.bands = tuple(settings.bands)
        return settings


DEFAULTS = TrainSettings(data="", out="")


def check_precision(precision: str) -> None:
    """Refuse a precision Lightning is not asked for here.

    Raises:
        ConventionError: ``precision`` is not one of ``PRECISIONS``.
    """
    _one_of("precision", precision, PRECISIONS)


def check_lr_schedule(lr_schedule: str) -> None:
    """Refuse a learning-rate schedule the training module does not make.

    Raises:
        ConventionError: ``lr_schedule`` is not one of ``LR_SCHEDULES``.
    """
    _one_of("learning-rate schedule", lr_schedule, LR_SCHEDULES)


def _one_of(what: str, value: str, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ConventionError(f"unknown {what} {value!r}; known: {', '.join(known)}")
