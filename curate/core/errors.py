"""The few kinds of failure curate distinguishes, each with one meaning.

- ConfigError: the recipe or a flag is wrong; raised before any work, names the key and fix.
- InputError: an input path is missing or the output is not writable (raised before any work),
  or a file the run needs turned out unreadable (names it).
- DependencyError: a package that a configured stage needs is not importable; raised at start.
- OutputError: writing the output failed mid-run (disk full, read-only or forbidden path);
  names the path and the fix. Files finished before it stay complete; a rerun resumes.
Bad *records* are not exceptions: they are skipped, counted and written to the ledger.
Anything else is a bug and fails loudly.
"""

from pathlib import Path


class CurateError(Exception):
    """Base class: errors a user can fix, printed without a traceback by the CLI."""


class ConfigError(CurateError):
    pass


class InputError(CurateError):
    pass


class DependencyError(CurateError):
    pass


class OutputError(CurateError):
    pass


# errno values (and the text Rust libraries such as polars put in their messages) that mean
# "the disk is full": ENOSPC 28, EDQUOT 122 (quota exceeded, the same to a user).
_DISK_FULL_ERRNOS = {28, 122}
_DISK_FULL_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded")
# EACCES 13, EPERM 1, EROFS 30: the path exists but may not be written.
_FORBIDDEN_ERRNOS = {1: "permission denied", 13: "permission denied", 30: "read-only file system"}
_PERMISSION_ERRNOS = {1, 13}  # unlike EROFS, also what a failed read raises


def output_error(exc: BaseException, path: object) -> OutputError | None:
    """The user-facing error for a failed write of `path`, or None when `exc` is not a
    disk-full or permission failure (then it is a bug and is raised as it is).

    Wrap write calls only: a permission failure also comes from reading (an unreadable input,
    config or model), and that is not "cannot write"."""
    errno = getattr(exc, "errno", None)
    text = str(exc)
    if errno in _DISK_FULL_ERRNOS or any(t in text for t in _DISK_FULL_TEXT):
        return OutputError(
            f"disk full while writing {path}. Files finished before it are complete. "
            "Fix: free space on that disk (or pass --output on a larger one) and rerun the same command; finished "
            "stages are reused"
        )
    reason = _FORBIDDEN_ERRNOS.get(errno) if errno is not None else None
    if reason is None and "Read-only file system" in text:
        reason = "read-only file system"
    if reason is not None:
        return OutputError(
            f"cannot write {path}: {reason}. Fix: make that folder writable (or pass --output with a folder you can "
            "write to) "
            "and rerun the same command; finished stages are reused"
        )
    return None


def access_error(exc: BaseException) -> InputError | None:
    """A permission failure not known to be a write (an unreadable input, model or cache
    file), or None for any other error. It names the file where the exception does, and says
    neither read nor write: the caller does not know which failed."""
    if getattr(exc, "errno", None) not in _PERMISSION_ERRNOS:
        return None
    filename = getattr(exc, "filename", None)
    # A library's own writer may raise without a file name: then say that, not "Permission denied" twice.
    what = filename if filename is not None else "a file this command opened (the system did not name it)"
    return InputError(
        f"permission denied: {what}. Fix: give this user access to it (read for inputs, configs and models; write for "
        "the output folder) and rerun"
    )


def last_resort_error(exc: BaseException, output: object | None) -> CurateError | None:
    """For a caller that sees `exc` without knowing which call raised it (the CLI's last
    resort; `output`: the command's output folder, if it has one). A full disk or a read-only
    file system can only be a write; a permission failure is one only when the file it names
    lies inside `output`, else it is `access_error` (it may be an unreadable input)."""
    filename = getattr(exc, "filename", None)
    error = output_error(exc, filename or output or "the output folder")
    if error is not None and getattr(exc, "errno", None) in _PERMISSION_ERRNOS and not _inside(filename, output):
        return access_error(exc)
    return error


def _inside(filename: object, folder: object | None) -> bool:
    """Whether `filename` names a path inside `folder` (None is never inside, nor holds anything)."""
    if filename is None or folder is None:
        return False
    try:
        Path(str(filename)).resolve().relative_to(Path(str(folder)).resolve())
    except ValueError:
        return False
    return True
