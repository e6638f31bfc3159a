"""Checkpoint folders: written and read in one place.

A trained model is a folder holding ``model.pt`` (``{"state_dict", "outputs"}``, loaded
with ``weights_only=True``; ``outputs`` are the settings that define what the weights
compute) and ``settings.json`` (:class:`~convention.classifier.settings.ModelSettings`,
with the SHA-256 of ``model.pt``): a settings file edited or paired with other weights is
refused, naming the field. A run of k folds holds one such folder per fold
(``fold_<k>``); loading the run gives every fold's model. A pre-trained backbone is a
model folder with ``pretraining.json`` beside: it does not classify
(``convention train --init`` fine-tunes it). Version-1 folders (a bare state dict) still
load.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import torch

from convention.classifier.calibration import TemperatureScaled
from convention.classifier.settings import MAX_PARAMETERS, ModelSettings
from convention.errors import ConventionError
from convention.files import check_input_path, inside_folder, write_atomic

SETTINGS_FILE = "settings.json"
WEIGHTS_FILE = "model.pt"
PRETRAINING_FILE = "pretraining.json"  # marks a pre-trained backbone (training.pretrain)
# The largest model.pt: MAX_PARAMETERS float32 weights, and room for buffers and layout.
MAX_WEIGHTS_BYTES = 4 * MAX_PARAMETERS + 64 * 2**20


def save_model(folder: Path, model: torch.nn.Module, settings: ModelSettings) -> None:
    """Write ``model.pt`` (the weights and the settings that define their outputs) and
    ``settings.json`` (with the SHA-256 of ``model.pt``) into ``folder``, atomically each."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {"state_dict": model.state_dict(), "outputs": settings.outputs()}
    write_atomic(folder / WEIGHTS_FILE, lambda p: torch.save(saved, p))
    digest = _sha256(folder / WEIGHTS_FILE)
    text = json.dumps(replace(settings, weights_sha256=digest).to_dict(), indent=1)
    write_atomic(folder / SETTINGS_FILE, lambda p: p.write_text(text + "\n"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_weights_file(weights: Path, settings: ModelSettings) -> None:
    """Refuse weights before unpickling them: not a regular file, larger than any model's
    may be, or not the file the settings were saved with (SHA-256); for an older folder
    without the digest, a zip archive that would inflate past that size.

    Raises:
        ConventionError: naming the file and the cause.
    """
    if not weights.exists():
        raise ConventionError("missing weights", path=weights)
    check_input_path(weights, "weights")
    size = weights.stat().st_size
    if not weights.is_file() or size > MAX_WEIGHTS_BYTES:
        raise ConventionError(f"weights of {size:,} bytes, more than a model holds", path=weights)
    if settings.weights_sha256 is not None:
        if _sha256(weights) != settings.weights_sha256:
            raise ConventionError(
                "model.pt is not the file this settings.json was saved with (SHA-256 differs)",
                path=weights,
            )
        return
    if zipfile.is_zipfile(weights):
        try:
            with zipfile.ZipFile(weights) as archive:
                inflated = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError) as err:
            raise ConventionError(f"corrupt weights ({err})", path=weights) from None
        if inflated > MAX_WEIGHTS_BYTES:
            raise ConventionError(
                f"weights inflate to {inflated:,} bytes, more than a model holds", path=weights
            )


def _check_pair(settings: ModelSettings, saved: dict, folder: Path) -> None:
    """Refuse weights saved with other output-defining settings than ``settings.json``'s.

    Raises:
        ConventionError: naming the first field that differs.
    """
    outputs = settings.outputs()
    for field, value in saved.items():
        if outputs.get(field) != value:
            raise ConventionError(
                f"{field} {outputs.get(field)!r} is not what the weights were trained with "
                f"({value!r}): settings.json was edited or comes from another model",
                path=folder / SETTINGS_FILE,
            )


def _load_folder(folder: Path) -> tuple[ModelSettings, torch.nn.Module]:
    if (folder / PRETRAINING_FILE).exists():
        raise ConventionError(
            "a pre-trained backbone, not a classifier: fine-tune it with "
            "convention train --init FOLDER",
            path=folder,
        )
    settings, model = _read_folder(folder)
    if settings.temperature is not None:
        model = TemperatureScaled(model, settings.temperature)
    return settings, model.eval()


def load_backbone(folder: str | Path) -> tuple[ModelSettings, torch.nn.Module]:
    """A pre-trained backbone folder's settings and model (``convention pretrain``).

    Raises:
        ConventionError: not a backbone folder, or a missing, unreadable or corrupt one.
    """
    folder = Path(folder)
    if not (folder / PRETRAINING_FILE).is_file():
        raise ConventionError(
            f"no {PRETRAINING_FILE}: not a backbone written by convention pretrain", path=folder
        )
    return _read_folder(folder)


def read_settings(folder: Path) -> ModelSettings:
    """A model folder's settings alone (no weights read).

    Raises:
        ConventionError: a missing or unreadable ``settings.json``.
    """
    path = _part(folder, SETTINGS_FILE)
    try:
        settings = ModelSettings.from_dict(json.loads(path.read_text()))
        settings.encoder()
    except ConventionError as err:
        raise ConventionError(err.cause, path=path) from None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        OverflowError,
    ) as err:
        raise ConventionError(
            f"unreadable settings ({type(err).__name__}: {err})", path=path
        ) from None
    return settings


def _part(folder: Path, name: str) -> Path:
    """A file of a model folder, which must lie in it (links followed).

    Raises:
        ConventionError: a part that leads outside the folder.
    """
    try:
        return inside_folder(folder, name)
    except ConventionError as err:
        raise ConventionError(err.cause, path=folder) from None


def _read_folder(folder: Path) -> tuple[ModelSettings, torch.nn.Module]:
    path = folder / SETTINGS_FILE
    settings = read_settings(folder)
    weights = _part(folder, WEIGHTS_FILE)
    _check_weights_file(weights, settings)
    try:
        saved = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ConventionError(f"corrupt weights ({type(err).__name__})", path=weights) from None
    is_legacy = not isinstance(saved, dict) or "state_dict" not in saved  # version 1
    if not is_legacy:
        _check_pair(settings, saved["outputs"], folder)
    try:
        model = settings.build()
    except ConventionError as err:
        raise ConventionError(err.cause, path=path) from None
    try:
        model.load_state_dict(saved if is_legacy else saved["state_dict"])
    except Exception as err:  # missing or unexpected keys, other shapes
        raise ConventionError(f"corrupt weights ({type(err).__name__})", path=weights) from None
    return settings, model


def load_models(path: str | Path) -> tuple[ModelSettings, list[torch.nn.Module]]:
    """The settings and eval-mode models of a model folder, or of a run's fold folders.

    Raises:
        ConventionError: missing, unreadable or corrupt checkpoint; folds that disagree.
    """
    path = Path(path)
    if path.is_file() and path.name == SETTINGS_FILE:
        path = path.parent
    if not path.exists() and not path.is_symlink():
        raise ConventionError("no such checkpoint", path=path)
    check_input_path(path, "checkpoint")
    folders = (
        [path]
        if (path / SETTINGS_FILE).exists()
        else sorted(p.parent for p in path.glob(f"fold_*/{SETTINGS_FILE}"))
    )
    if not folders:
        raise ConventionError(f"no {SETTINGS_FILE} here or in fold_* folders", path=path)
    for folder in folders:
        if folder != path:
            _part(path, folder.name)  # a fold's folder must lie in its run
    loaded = [_load_folder(f) for f in folders]
    settings = loaded[0][0]
    if any(s.temperature is None for s, _ in loaded):
        warnings.warn(
            f"{path}: uncalibrated probabilities (a checkpoint from before calibration; "
            "convention calibrate --run RUN --data DATA fits it)",
            stacklevel=2,
        )
    for other, _ in loaded[1:]:
        if (other.classes, other.bands) != (settings.classes, settings.bands):
            raise ConventionError("fold models disagree on classes or bands", path=path)
    return settings, [m for _, m in loaded]
