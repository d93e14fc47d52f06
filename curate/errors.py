"""The few kinds of failure curate distinguishes, each with one meaning.

- ConfigError: the recipe or a flag is wrong; raised before any work, names the key and fix.
- InputError: an input path is missing or the output is not writable; raised before any work.
- DependencyError: a package that a configured stage needs is not importable; raised at start.
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
