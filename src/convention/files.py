"""Output files: checking where they go, and writing them whole or not at all."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from convention.errors import ConventionError


def check_output_path(path: str | Path) -> Path:
    """The output path, if its folder exists and it is not a folder itself.

    Raises:
        ConventionError: the folder is missing or the path is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise ConventionError("output path is a directory", path=path)
    if not path.parent.is_dir():
        raise ConventionError(f"output folder {str(path.parent)!r} does not exist", path=path)
    return path


def refuse_overwriting_inputs(
    outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None]
) -> None:
    """Refuse an output that is one of the inputs (the same file by any path) or a folder
    that holds one, before anything is read or written. None entries are skipped.

    Raises:
        ConventionError: naming the output and the input it would overwrite.
    """
    given = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        for source in given:
            same = (
                os.path.samefile(out, source)
                if out.exists() and source.exists()
                else out.resolve() == source.resolve()
            )
            if same or source.resolve().is_relative_to(out.resolve()):
                raise ConventionError(
                    f"the output would overwrite the input {str(source)!r}", path=out
                )


def inside_folder(folder: Path, name: str) -> Path:
    """``folder / name``, when that names a place inside ``folder`` once every symbolic
    link is followed.

    Raises:
        ConventionError: an absolute name, or one that leads outside the folder.
    """
    if Path(name).is_absolute():
        raise ConventionError(f"{name!r} is an absolute path, not a name inside the folder")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConventionError(f"{name!r} leads outside the folder")
    return path


def temporary_beside(target: Path, folder: bool = False) -> Path:
    """A new temporary path beside ``target``, ``.<name>.<pid>.<random>.tmp``, to write into
    and then rename onto ``target``; ``folder`` creates it as a folder. First the leftovers
    of killed runs with the same target are removed: those whose process is gone (a
    concurrent writer's are kept)."""
    prefix = f".{target.name}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix) : -len(".tmp")].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    path = target.with_name(f"{prefix}{os.getpid()}.{secrets.token_hex(4)}.tmp")
    if folder:
        path.mkdir()
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``; on failure
    the temporary file is removed and ``path`` is left as it was."""
    tmp = temporary_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
