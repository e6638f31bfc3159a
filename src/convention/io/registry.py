"""The registry of data formats: each format's module in ``convention.io.formats``
registers its :class:`Reader` (detector, options with their command-line help, how it
opens a path and how it scans inputs for ``ingest``), so a new format is one new file.

``read(path, **options)`` detects the format (or takes ``format=``) and opens the path
with the reader's options; ``scan(format, inputs, **options)`` gives the reader's
:class:`~convention.io.ingest.Collection` for ``convention ingest``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convention.data.collection import SeriesCollection
from convention.errors import ConventionError
from convention.files import check_input_path
from convention.io.ingest import Collection, collect


def parse_text(value: str) -> str:
    """A text option as given."""
    return value


def parse_names(value: str) -> tuple[str, ...]:
    """A comma-separated list of names (``template,difference``); empty: none."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_number(value: str) -> float:
    """A number.

    Raises:
        ValueError: not a number.
    """
    return float(value)


def parse_flag(value: str) -> bool:
    """``true``/``yes``/``1`` or ``false``/``no``/``0``.

    Raises:
        ValueError: anything else.
    """
    text = value.strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


@dataclass(frozen=True)
class ReaderOption:
    """One option of a reader.

    Attributes:
        name: its keyword (``read(path, name=value)``; ``--reader-option name=value``).
        help: what it does, for ``convention formats``.
        parse: its value from the command line's text (raises ValueError when it is not
            one).
    """

    name: str
    help: str
    parse: Callable[[str], Any] = parse_text


@dataclass(frozen=True)
class Reader:
    """A data format's reader.

    Attributes:
        name: the format's name (``ingest FORMAT``, ``read(path, format=...)``).
        help: what it reads, in a few words (``convention formats``).
        detect: whether a path (a file or a folder) is of this format.
        open: ``open(path, **options)`` -> the data set (``read``).
        scan: ``scan(inputs, **options)`` -> the Collection ``ingest`` writes to a store;
            None for a format that is not ingested (the store itself).
        options: the options ``open`` and ``scan`` take.
        gives_channels: the extra images its source carries for every frame, read when
            named in its ``channels`` option (an alert's template and difference).
    """

    name: str
    help: str
    detect: Callable[[Path], bool]
    open: Callable[..., SeriesCollection]
    scan: Callable[..., Collection] | None = None
    options: tuple[ReaderOption, ...] = ()
    gives_channels: tuple[str, ...] = ()

    def option(self, name: str) -> ReaderOption:
        """One of its options.

        Raises:
            ConventionError: an option it does not take.
        """
        for option in self.options:
            if option.name == name:
                return option
        known = ", ".join(o.name for o in self.options) or "none"
        raise ConventionError(f"the {self.name} format has no option {name!r} (options: {known})")

    def check_options(self, options: dict) -> None:
        """Refuse options it does not take.

        Raises:
            ConventionError: naming the first.
        """
        for name in options:
            self.option(name)

    def parse_options(self, pairs: Sequence[str]) -> dict[str, Any]:
        """``name=value`` texts (``--reader-option``) as its typed options.

        Raises:
            ConventionError: not ``name=value``, an option it does not take, or a value
                that is not of the option's kind.
        """
        options: dict[str, Any] = {}
        for pair in pairs:
            name, equals, value = pair.partition("=")
            if not equals or not name.strip():
                raise ConventionError(f"reader option {pair!r} is not NAME=VALUE")
            option = self.option(name.strip())
            try:
                options[option.name] = option.parse(value.strip())
            except ValueError as err:
                raise ConventionError(f"reader option {option.name}: {err}") from None
        return options


_READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> Reader:
    """Register a format's reader under its name (a format module's one registration)."""
    _READERS[reader.name] = reader
    return reader


def readers() -> dict[str, Reader]:
    """The registered readers by format name, in the order they are tried by ``read``."""
    _load_formats()
    return dict(_READERS)


def get_reader(name: str) -> Reader:
    """A registered reader.

    Raises:
        ConventionError: unknown format.
    """
    known = readers()
    if name not in known:
        raise ConventionError(f"unknown format {name!r}; known: {', '.join(known)}")
    return known[name]


def _load_formats() -> None:
    """Import every module of ``convention.io.formats`` once: each registers its reader."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent / "formats")]):
        importlib.import_module(f"{__package__}.formats.{module.name}")


def opened_by_scanning(scan: Callable[..., Collection]) -> Callable[..., SeriesCollection]:
    """A reader's ``open`` for a format read into memory: ``scan([path], **options)``, every
    object kept (a rejected object or dropped frame raises) and fitted to one stamp size
    as ``ingest`` does."""

    def open_(path: Path, **options: Any) -> SeriesCollection:
        return collect(scan([path], **options), path)

    return open_


def detect_format(path: str | Path) -> str:
    """The format of a file or folder.

    Raises:
        ConventionError: missing, or no reader recognises it.
    """
    path = check_input_path(path, "data")
    for reader in readers().values():
        if reader.detect(path):
            return reader.name
    raise ConventionError(f"unrecognised format (known: {', '.join(readers())})", path=path)


def read(
    path: str | Path,
    format: str | None = None,
    require_channels: Sequence[str] = (),
    offer_channels: Sequence[str] = (),
    **options: Any,
) -> SeriesCollection:
    """Open a data set: a store (lazily), or the objects of another format read into
    memory (strictly: a bad file raises, and stamps are fitted to one size as ``ingest``
    does).

    Args:
        path: a file or folder of a registered format.
        format: its format (``convention formats`` lists them); detected when None.
        require_channels: extra images a model reads (``InputEncoder.needs``): asked of
            a reader that takes ``channels`` beside those the options name.
        offer_channels: images a model reads where the source gives them and makes
            otherwise (``Needs.own_channels``): asked of a reader whose source gives them
            (``Reader.gives_channels``), left to the model elsewhere.
        options: the reader's options (``survey="sdss2"``, ``channels=("template",)``).

    Raises:
        ConventionError: missing path, unknown format or option, or a file no reader
            recognises.
    """
    path = check_input_path(path, "data")
    reader = get_reader(format if format is not None else detect_format(path))
    reader.check_options(options)
    asked = (*require_channels, *(c for c in offer_channels if c in reader.gives_channels))
    if asked and any(o.name == "channels" for o in reader.options):
        named = options.get("channels") or ()
        options["channels"] = tuple(dict.fromkeys((*named, *asked)))
    return reader.open(path, **options)


def scan(format: str, inputs: Sequence[str | Path], **options: Any) -> Collection:
    """A reader's Collection of inputs of one format, for ``ingest``.

    Raises:
        ConventionError: unknown format or option, a format that is not ingested, or a
            missing input.
    """
    reader = get_reader(format)
    if reader.scan is None:
        raise ConventionError(f"the {format} format is not ingested (it is read as it is)")
    reader.check_options(options)
    paths = [check_input_path(p) for p in inputs]
    return reader.scan(paths, **options)
