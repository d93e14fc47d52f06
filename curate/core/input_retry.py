"""Reading an input file through transient failures: a connection reset by an object store,
a server that cuts a download short, a disk read error.

fsspec has no retry of its own for a read that fails part-way (HTTPFileSystem passes
`client_kwargs` to aiohttp, which has none; s3fs and gcsfs retry single requests, not a
file read that broke off), so `RetryingFile` does it one level up, for every backend: on a
transient error it waits, reopens the file and seeks to the byte where reading stopped.
When the error persists, or is not transient, reading fails with `ReadFailed`, naming the
file and that byte: the annotate stage is then not marked done and the next run reads the
file again. A file that cannot be opened at all for a permanent reason (missing, no read
permission) is not this: it is one `unreadable_file` row in the ledger, as before."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import fsspec

from curate.core.errors import InputError
from curate.core.input_config import InputConfig

T = TypeVar("T")

# Not worth a second try: the file is gone, not ours to read, or not a file. Any other
# OSError (ECONNRESET, EIO, ETIMEDOUT, ...) may pass on the next try.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        from fsspec.exceptions import FSTimeoutError

        types.append(FSTimeoutError)
    except ImportError:  # pragma: no cover - fsspec always has it
        pass
    try:
        import aiohttp  # HTTP(S) inputs: a cut payload is aiohttp.ClientPayloadError, not an OSError

        types.append(aiohttp.ClientError)
    except ImportError:  # pragma: no cover - only with fsspec's http extra
        pass
    return tuple(types)


TRANSIENT_ERRORS = _transient_types()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, PERMANENT_ERRORS)


class ReadFailed(InputError):
    """An input file could not be read to its end. Not an OSError on purpose: the readers turn
    OSErrors from decompression into ledger rows, and this one must stop the run."""

    def __init__(self, path: str, offset: int, exc: BaseException, attempts: int) -> None:
        tried = f" (tried {attempts} times)" if attempts > 1 else ""
        detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        super().__init__(
            f"cannot read {path} at byte {offset}{tried}: {detail}. Fix: check the connection or the disk and rerun "
            "the "
            "same command: the files read to their end are reused and this one is read again (input.read_retries sets "
            "how often a read is retried)"
        )
        self.path = path
        self.offset = offset

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (datatrove's worker pool pickles it): rebuild from the message.
        return (InputError, (str(self),))


MAX_WAIT_S = 60.0  # the longest single wait between two read attempts


@dataclass(frozen=True)
class RetryPolicy:
    retries: int  # further attempts after the first failed one, per place in the file
    wait_s: float  # before the first retry; doubled for each next one

    def wait(self, attempt: int) -> None:
        # Doubling, capped: 20 retries from 1 s would otherwise end in a 6-day sleep that
        # looks like a hang; past a minute a longer wait tells nothing new about the server.
        time.sleep(min(MAX_WAIT_S, self.wait_s * (2 ** (attempt - 1))))

    @classmethod
    def from_config(cls, cfg: InputConfig) -> RetryPolicy:
        return cls(cfg.read_retries, cfg.read_retry_wait_s)


DEFAULT_RETRY = RetryPolicy.from_config(InputConfig())  # the defaults, and why: curate.core.input_config.InputConfig


class RetryingFile(io.RawIOBase):
    """A read-only, seekable view of `path` that survives transient read errors (see module
    docstring). `tell()` is the byte offset in the file as stored (compressed bytes for
    .gz), which is what the error names."""

    def __init__(self, path: str, policy: RetryPolicy, opener: Callable[[], BinaryIO]) -> None:
        super().__init__()
        self.path = path
        self.policy = policy
        self._opener = opener
        self._pos = 0
        self._f: BinaryIO | None = None
        self._opened = False  # a permanent error before the first open is the caller's ledger row
        self._f = self._retrying(self._file)
        self._opened = True

    def _open_at_pos(self) -> BinaryIO:
        f = self._opener()
        if self._pos:
            f.seek(self._pos)
        return f

    def _retrying(self, call: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:
                if not self._opened and not is_transient(exc):
                    raise  # cannot be opened at all (missing, forbidden, bad URL): the caller's `unreadable_file` row
                if not is_transient(exc) or attempt >= self.policy.retries:
                    raise ReadFailed(self.path, self._pos, exc, attempt + 1) from exc
                attempt += 1
                self.policy.wait(attempt)
                self._reopen()

    def _reopen(self) -> None:
        old, self._f = self._f, None
        if old is not None:
            try:
                old.close()
            except Exception:  # the broken handle may fail to close; the new one matters
                pass
        try:
            self._f = self._open_at_pos()
        except Exception:
            self._f = None  # the next attempt of the call reopens (see _file)

    def _file(self) -> BinaryIO:
        if self._f is None:
            self._f = self._open_at_pos()
        return self._f

    # io.RawIOBase interface ---------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """`size` bytes, fewer only at the end of the file (all of it for -1): a short read is
        read on from where it stopped, since some readers (pyarrow) take a short read as the
        end. Each piece read moves the position, so a retry reopens exactly there."""
        pieces: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            ask = -1 if wanted is None else wanted - got
            piece = self._retrying(lambda: self._file().read(ask))
            if not piece:
                break
            self._pos += len(piece)
            got += len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._retrying(lambda: self._file().seek(offset, whence))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            finally:
                self._f = None
        super().close()


def with_retries(call: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """`call()` (listing or looking up an input: fsspec's glob, isdir, info), retried on
    transient errors like a read; when they persist, an InputError naming `what`."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt >= policy.retries:
                detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")
                raise InputError(
                    f"cannot look up {what} (tried {attempt + 1} times): {detail}. Fix: check the connection or the "
                    "disk and "
                    "rerun the same command (input.read_retries sets how often a read is retried)"
                ) from exc
            attempt += 1
            policy.wait(attempt)


def open_input(path: str, policy: RetryPolicy, compression: str | None = None) -> BinaryIO:
    """`path` opened for reading through `RetryingFile`; with `compression` (an fsspec codec
    name) the decompressed stream on top of it. Raises the OSError of a file that cannot be
    opened for a permanent reason, ReadFailed when opening keeps failing for a transient one."""
    raw = RetryingFile(path, policy, lambda: fsspec.open(path, "rb").open())
    if compression is None:
        return raw  # type: ignore[return-value]
    from fsspec.compression import compr

    return compr[compression](raw, mode="rb")
