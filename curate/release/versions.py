"""Release versions: the next vN, and the slot a build stages into and renames into place (never
overwriting a version)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curate.core.errors import ConfigError, InputError
from curate.core.stages import fault_point

_AUTO_VERSION = re.compile(r"^v(\d+)$")


def next_version(base: Path) -> str:
    taken = [int(m.group(1)) for p in base.iterdir() if (m := _AUTO_VERSION.match(p.name))] if base.is_dir() else []
    return f"v{max(taken, default=0) + 1}"


def refuse_existing(base: Path, version: str) -> None:
    if version and (base / version).exists():
        raise ConfigError(
            f"release {base.name} {version} already exists at {base / version}; releases are never overwritten. "
            f"Fix: set release.version to a new version (or leave it empty for the next one, {next_version(base)})"
        )


@contextmanager
def release_slot(root: Path, name: str, version: str) -> Iterator[tuple[str, Path, Path]]:
    """(version, staging folder, final folder). A lock per release name serialises builds, so
    two of them never pick the same vN; an existing version is an error, never overwritten."""
    import fasteners

    base = root / "releases" / name
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create {base} ({exc.strerror or exc}). Fix: pass --output with a folder you can write to"
        ) from None
    with fasteners.InterProcessLock(str(base / ".lock")):
        refuse_existing(base, version)
        version = version or next_version(base)
        final = base / version
        staging = base / f".{version}.tmp-{os.getpid()}"
        # Under the lock no other build of this name runs: any staging folder left is from a
        # build that was killed (SIGKILL skips the cleanup below) and is removed.
        for stale in base.glob(".*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir()
        try:
            yield version, staging, final
            fault_point("release:staged")  # crash tests: every file staged, nothing renamed
            _fsync_dir(staging / "data")
            os.rename(staging, final)
            _fsync_dir(base)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
