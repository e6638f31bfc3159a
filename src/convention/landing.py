"""The landing folder's log: which micro-batch takes which landed entry, for both engines of
``classify-alerts``.

What an alert file is has one rule (``io.formats.alerts.landed_files``: an entry named
``*.avro`` that is a regular file inside the folder once links are followed; every other
such entry is taken too, and rejected with its cause). Before a batch runs, its entries go
into a manifest, ``out/_landing/<N>.jsonl`` (a JSON line per entry: its name, the file
as the tables show it, the cause it is rejected for; written whole, then renamed in), so
a restarted engine redoes batch N on the same entries, and no entry is taken twice. The
local engine reads the manifests itself; Spark streams them as text, one manifest a
micro-batch: paths reach Spark as data, never as patterns to expand. The names taken are
appended to ``out/_landing/_taken.jsonl`` as each manifest is written, so committed
manifests can be removed (the local engine every ``COMPACT_EVERY`` batches, Spark as it
commits each): the folder listed at each poll does not grow with the stream, and what was
taken is known by name.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from convention.errors import ConventionError
from convention.files import write_atomic
from convention.io.formats.alerts import display_name, landed_files, landing_cause

LANDING_LOG = "_landing"
TAKEN = "_taken.jsonl"
MANIFEST_SUFFIX = ".jsonl"
COMPACT_EVERY = 100  # batches between compactions
MAX_ALERT_FILE_BYTES = 64 * 2**20  # an Avro file read whole (a ZTF alert is about 60 kB)


@dataclass(frozen=True)
class Entry:
    """A landed entry taken by a batch.

    Attributes:
        batch: the batch that took it.
        name: its name in the landing folder.
        file: the file as the tables name it (the landing folder and the name as text).
        cause: why it is rejected, or None for an alert file to read.
    """

    batch: int
    name: str
    file: str
    cause: str | None

    def to_json(self) -> str:
        """One manifest line."""
        return json.dumps(
            {"batch": self.batch, "name": self.name, "file": self.file, "cause": self.cause}
        )

    @classmethod
    def from_json(cls, line: str, source: Path | str) -> Entry:
        """A manifest line, checked: its name is one entry of the landing folder, never a
        path that leads elsewhere.

        Raises:
            ConventionError: naming the manifest: not such a line.
        """
        try:
            fields = json.loads(line)
            entry = cls(fields["batch"], fields["name"], fields["file"], fields["cause"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConventionError(
                f"damaged stream log (a line that is not an entry: {type(err).__name__})",
                path=source,
            ) from None
        well_typed = (
            isinstance(entry.batch, int)
            and isinstance(entry.name, str)
            and isinstance(entry.file, str)
            and (entry.cause is None or isinstance(entry.cause, str))
        )
        if not (well_typed and _plain_name(entry.name)):
            raise ConventionError(
                f"damaged stream log (entry {str(fields)[:80]!r} names no landed file)",
                path=source,
            )
        return entry

    def read(self, landing: Path) -> bytes:
        """The entry's bytes, after the landing rule is checked again (the entry may have
        changed since it was listed).

        Raises:
            ConventionError: naming the file: its cause, no longer an alert file, larger
                than ``MAX_ALERT_FILE_BYTES``, or unreadable.
        """
        if self.cause is not None:
            raise ConventionError(self.cause, path=self.file)
        path, root = landing / self.name, landing.resolve()
        cause = landing_cause(path, root)
        if cause is not None:
            raise ConventionError(cause, path=self.file)
        try:
            # Opened as checked, though a link may have been swapped in since: where it
            # leads checked again, opened without following a last link, never blocking on
            # a FIFO; what was opened is checked again.
            resolved = path.resolve(strict=True)
            if not resolved.is_relative_to(root):
                raise ConventionError("a link leading out of the landing folder", path=self.file)
            fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                status = os.fstat(f.fileno())
                if not stat.S_ISREG(status.st_mode):
                    raise ConventionError("no longer a regular file", path=self.file)
                too_large = status.st_size > MAX_ALERT_FILE_BYTES
                data = b"" if too_large else f.read(MAX_ALERT_FILE_BYTES + 1)
                if too_large or len(data) > MAX_ALERT_FILE_BYTES:  # it may grow after fstat
                    raise ConventionError(
                        f"holds more than {MAX_ALERT_FILE_BYTES:,} bytes", path=self.file
                    )
                return data
        except (OSError, RuntimeError) as err:  # RuntimeError: a link loop
            reason = getattr(err, "strerror", None) or err
            raise ConventionError(f"unreadable ({reason})", path=self.file) from None


def log_folder(path: Path) -> Path:
    """A folder of a stream's log, made where missing.

    Raises:
        ConventionError: ``path`` is something else than a folder.
    """
    if path.exists() and not path.is_dir():
        raise ConventionError("damaged stream log (not a folder)", path=path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _plain_name(name: str) -> bool:
    """A name of a folder's entry: not empty, no separator or NUL, not ``.`` or ``..``."""
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


class LandingLog:
    """The manifests of a stream's batches and the names taken (see the module's
    docstring).

    Args:
        out: the stream's output folder (the log is ``out/_landing``).
        landing: the landing folder.

    Raises:
        ConventionError: naming the file: a damaged manifest or journal.
    """

    def __init__(self, out: Path, landing: Path):
        self.folder = log_folder(out / LANDING_LOG)
        self.landing = landing
        self.taken = self._read_journal()
        self.manifests: dict[int, list[Entry]] = {}
        for path in self.folder.iterdir():
            if path.name.endswith(MANIFEST_SUFFIX) and not path.name.startswith((".", "_")):
                batch = _batch_number(path)
                self.manifests[batch] = self._read_manifest(path, batch)
        for entries in self.manifests.values():
            self.taken |= {entry.name for entry in entries}
        last = max(self.manifests, default=-1)
        self.next_batch = 1 + max(last, self._journal_batch)

    def manifest(self, batch: int) -> Path:
        """Batch ``batch``'s manifest file."""
        return self.folder / f"{batch:08d}{MANIFEST_SUFFIX}"

    def _read_journal(self) -> set[str]:
        """The names taken, from the journal; the last batch it names too."""
        path = self.folder / TAKEN
        self._journal_batch = -1
        if not path.exists():
            return set()
        names = set()
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ConventionError(f"damaged stream log ({err})", path=path) from None
        for line in text.splitlines():
            if not line.endswith("]"):
                continue  # a line cut short by a kill: its manifest holds its names
            try:
                batch, taken = json.loads(line)
            except (ValueError, TypeError):
                raise ConventionError(
                    "damaged stream log (a line that is no batch)", path=path
                ) from None
            if not (isinstance(batch, int) and isinstance(taken, list)):
                raise ConventionError("damaged stream log (a line that is no batch)", path=path)
            if not all(isinstance(n, str) and _plain_name(n) for n in taken):
                raise ConventionError(
                    "damaged stream log (a name that is no landed file)", path=path
                )
            names.update(taken)
            self._journal_batch = max(self._journal_batch, batch)
        return names

    def _read_manifest(self, path: Path, batch: int) -> list[Entry]:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConventionError(f"damaged stream log ({err})", path=path) from None
        entries = [Entry.from_json(line, path) for line in lines if line.strip()]
        if not entries or any(entry.batch != batch for entry in entries):
            raise ConventionError("damaged stream log (a manifest of another batch)", path=path)
        return entries

    def take_new(self, max_files: int) -> int | None:
        """Write the next batch's manifest from the entries landed since the last one (at
        most ``max_files``, by name) and journal their names; the batch's number, or None
        when nothing new landed."""
        new = [landed for landed in landed_files(self.landing) if landed.raw not in self.taken]
        if not new:
            return None
        batch = self.next_batch
        root = self.landing.resolve()
        entries = [
            Entry(batch, landed.raw, display_name(str(root / landed.raw)), landed.cause)
            for landed in new[:max_files]
        ]
        text = "".join(entry.to_json() + "\n" for entry in entries)
        write_atomic(self.manifest(batch), lambda tmp: tmp.write_text(text))
        names = [entry.name for entry in entries]
        with (self.folder / TAKEN).open("a") as journal:
            journal.write(json.dumps([batch, names]) + "\n")
        self.manifests[batch] = entries
        self.taken.update(names)
        self.next_batch += 1
        return batch

    def drop_manifest(self, batch: int) -> None:
        """Remove a committed batch's manifest (its names stay in the journal)."""
        self.manifests.pop(batch, None)
        self.manifest(batch).unlink(missing_ok=True)


def _batch_number(path: Path) -> int:
    """The batch of a manifest's file name.

    Raises:
        ConventionError: a name that is no batch number.
    """
    stem = path.name[: -len(MANIFEST_SUFFIX)]
    if not stem.isdigit():
        raise ConventionError("damaged stream log (a manifest not named by its batch)", path=path)
    return int(stem)
