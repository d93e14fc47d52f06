"""The few kinds of failure curate distinguishes, each with one meaning.

- ConfigError: the recipe or a flag is wrong; raised before any work, names the key and fix.
- InputError: an input path is missing or the output is not writable; raised before any work.
- DependencyError: a package that a configured stage needs is not importable; raised at start.
- OutputError: writing the output failed mid-run (disk full, read-only or forbidden path);
  names the path and the fix. Files finished before it stay complete; a rerun resumes.
Bad *records* are not exceptions: they are skipped, counted and written to the ledger.
Anything else is a bug and fails loudly.
"""


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


def output_error(exc: BaseException, path: object) -> OutputError | None:
    """The user-facing error for a failed write of `path`, or None when `exc` is not a
    disk-full or permission failure (then it is a bug and is raised as it is)."""
    errno = getattr(exc, "errno", None)
    text = str(exc)
    if errno in _DISK_FULL_ERRNOS or any(t in text for t in _DISK_FULL_TEXT):
        return OutputError(
            f"disk full while writing {path}. Files finished before it are complete. "
            "Fix: free space on that disk (or pass --output on a larger one) and rerun the same command; finished stages are reused"
        )
    reason = _FORBIDDEN_ERRNOS.get(errno) if errno is not None else None
    if reason is None and "Read-only file system" in text:
        reason = "read-only file system"
    if reason is not None:
        return OutputError(
            f"cannot write {path}: {reason}. Fix: make that folder writable (or pass --output with a folder you can write to) "
            "and rerun the same command; finished stages are reused"
        )
    return None
