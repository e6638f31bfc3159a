"""Input and output paths: what a command may read and where it may write, and writing
outputs whole or not at all.

An input is a regular file or a folder (symbolic links followed), never a device, a FIFO,
a socket or a file of the kernel's ``/proc`` and ``/sys``. An output is a new path or a
regular file (a folder where the command writes folders), never one of those special
files, never in ``/dev``, ``/proc`` or ``/sys``, and never an input, a folder holding one
or a path inside an input folder.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from convention.errors import ConventionError

SPECIAL_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))  # the kernel's, not data


def _in_special_root(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in SPECIAL_ROOTS)


def _kind(mode: int) -> str:
    """What a non-regular, non-folder file is, in a word."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input_path(path: str | Path, what: str = "input") -> Path:
    """An input that is a regular file or a folder, links followed.

    Raises:
        ConventionError: missing, a dangling link, a link loop, a device, FIFO or socket,
            or a file of ``/dev``, ``/proc`` or ``/sys``.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        cause = "is a link to nothing" if path.is_symlink() else "not found (no such file)"
        raise ConventionError(f"{what} {cause}", path=path) from None
    except OSError as err:  # a link loop, a name too long, no permission
        raise ConventionError(f"{what}: {err.strerror}", path=path) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ConventionError(f"{what} is {_kind(mode)}, not a file or folder", path=path)
    if _in_special_root(path):
        raise ConventionError(f"{what} is a file of the system, not data", path=path)
    return path


def check_output_path(path: str | Path) -> Path:
    """The output path of a file, if its folder exists and it is new or a regular file.

    Raises:
        ConventionError: the folder is missing, the path is a folder, a device, FIFO or
            socket, or in ``/dev``, ``/proc`` or ``/sys``.
    """
    path = Path(path)
    if path.is_dir():
        raise ConventionError("output path is a directory", path=path)
    _check_output_place(path)
    return path


def check_output_folder(path: str | Path) -> Path:
    """The output path of a folder, if the folder holding it exists and it is new or a
    folder.

    Raises:
        ConventionError: the folder holding it is missing, the path is a file, a device,
            FIFO or socket, or in ``/dev``, ``/proc`` or ``/sys``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConventionError("output exists and is not a folder", path=path)
    _check_output_place(path)
    return path


def _check_output_place(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise ConventionError("output is a link to nothing", path=path)
    if path.exists():
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ConventionError(f"output exists and is {_kind(mode)}", path=path)
    if _in_special_root(path) or _in_special_root(path.parent):
        raise ConventionError("output would be a file of the system (/dev, /proc, /sys)", path=path)
    if not path.parent.is_dir():
        raise ConventionError(f"output folder {str(path.parent)!r} does not exist", path=path)


def refuse_overwriting_inputs(
    outputs: Iterable[str | Path | None],
    inputs: Iterable[str | Path | None],
    allowed: Iterable[str | Path] = (),
) -> None:
    """Refuse an output that is one of the inputs (the same file by any path), a folder
    that holds one, or a path inside an input folder, before anything is read or written.
    None entries are skipped.

    Args:
        outputs: the command's outputs.
        inputs: every file and folder it reads.
        allowed: outputs a command keeps inside an input folder by design (``evaluate``'s
            report in ``RUN/evaluation``): those places, and what lies in them.

    Raises:
        ConventionError: naming the output and the input it would overwrite or lie in.
    """
    given = [Path(p) for p in inputs if p is not None]
    places = [Path(p).resolve() for p in allowed]
    for out in (Path(p) for p in outputs if p is not None):
        resolved = out.resolve()
        if any(resolved == place or resolved.is_relative_to(place) for place in places):
            continue
        for source in given:
            same = (
                os.path.samefile(out, source)
                if out.exists() and source.exists()
                else resolved == source.resolve()
            )
            if same or source.resolve().is_relative_to(resolved):
                raise ConventionError(
                    f"the output would overwrite the input {str(source)!r}", path=out
                )
            if source.is_dir() and resolved.is_relative_to(source.resolve()):
                raise ConventionError(
                    f"the output would lie inside the input folder {str(source)!r}", path=out
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


_TEMPORARY = re.compile(r"\.(.+)\.\d+\.[0-9a-f]{8}\.tmp")


def output_name(path: Path) -> Path:
    """A path as its user named it: a temporary file or folder of ``temporary_beside``
    (``.NAME.<pid>.<random>.tmp``), anywhere in it, is shown as the output it becomes."""
    parts = [m.group(1) if (m := _TEMPORARY.fullmatch(part)) else part for part in path.parts]
    return Path(*parts)


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


def claim_folder(path: Path, what: str = "run") -> int:
    """Lock a folder for this process: an exclusive ``flock`` on its descriptor, which the
    kernel releases when the process ends (a killed writer leaves no lock). Close the
    returned descriptor to release it.

    Raises:
        ConventionError: a live process holds it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConventionError(f"a live {what} is writing it", path=path) from None
    return fd
