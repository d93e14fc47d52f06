"""URL and domain filtering: datatrove's URL filter rules and the blocklist it ships, user
allow and block lists of domains, and banned words in URLs.

The rules are datatrove's `URLFilter`'s (FineWeb's), in its order: blocklisted domain
(the registered domain, the full host or any domain between them), blocklisted URL, a
banned word in the URL, `soft_word_threshold` soft-banned words, a banned sub-word in the
normalised URL. What differs, and why (bench/RESULTS-pii-urls.md measures it):

- The shipped domain list (4.56 M domains, one merged list: the UT1 categories adult,
  malware, phishing, ... are not told apart in datatrove's tarball) is held as a sorted array
  of 64-bit hashes in a cache file, memory-mapped by every worker: 36 MB shared instead of
  ~800 MB of Python set per worker, and no 5 s load per task. Built once from the tarball.
- tldextract runs on its bundled public-suffix snapshot: no network, ever.
- A blocklisted URL is compared without its scheme (the list's entries have none, so
  datatrove's `url in block_listed_url` never matches a real URL).
- Every drop names the list and the matched entry (the ledger's `value`).
- Documents without a URL pass; a domain on an allow list passes every rule.

User lists are plain text, one domain per line, `#` comments; an entry also covers its
subdomains. A missing, unreadable or malformed list file fails before any work, naming the
file, the config key and the fix.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from curate.core.errors import ConfigError
from curate.core.schema import META_URL_MATCH
from curate.core.section import Section

DATATROVE_LIST = "datatrove url_filterblacklistsv0_3_0"
_TARBALL = "url_filterblacklistsv0_3_0.tar.gz"
_DOMAIN = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)+$")
_NORMALIZER = re.compile(r"[^a-zA-Z0-9]+")  # datatrove's url_filter.normalizer


class URLFilterConfig(Section):
    """The `urls:` section: which pages are dropped for where they come from."""

    # On by default: the shipped lists (adult, malware, phishing domains) cost ~10 us a page.
    enabled: bool = True
    # datatrove's shipped lists: 4.56 M blocklisted domains, 19.6 k URLs, and its banned,
    # soft-banned and banned-sub-word lists for URLs (FineWeb's URL filter).
    use_datatrove_lists: bool = True
    # FineWeb's value: two soft-banned words ("sex", "webcam", ...) in one URL drop it.
    soft_word_threshold: int = Field(default=2, ge=1)
    # Extra domains to drop, and files of them (one per line, '#' comments). An entry covers
    # its subdomains: "example.com" drops shop.example.com too.
    block_domains: list[str] = Field(default_factory=list)
    block_domains_files: list[str] = Field(default_factory=list)
    # Domains never dropped by any URL rule (a site the blocklist or a banned word gets wrong).
    allow_domains: list[str] = Field(default_factory=list)
    allow_domains_files: list[str] = Field(default_factory=list)
    # Extra whole words that drop a URL when they appear in it (split on non-alphanumerics).
    banned_words: list[str] = Field(default_factory=list)


# ----------------------------------------------------------------------------- lists


def domain_hash(domain: str) -> int:
    return int.from_bytes(hashlib.blake2b(domain.encode(), digest_size=8).digest(), "little")


def datatrove_assets() -> Path:
    from datatrove.utils._import_utils import ASSETS_PATH

    return Path(ASSETS_PATH)


def _cache_dir() -> Path:
    return Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate")) / "url-blocklist"


def _shipped_tarball() -> Path:
    tarball = datatrove_assets() / _TARBALL
    if not tarball.is_file():
        raise ConfigError(
            f"datatrove's URL blocklist {tarball} is missing. Fix: reinstall datatrove (`make setup`), or set "
            "urls.use_datatrove_lists: false"
        )
    return tarball


def shipped_lists() -> tuple[Path, Path]:
    """(domain table, URL list) from datatrove's tarball, built once (~10 s) into the cache,
    keyed by the tarball's size and mtime (a datatrove upgrade rebuilds them). The table is
    the sorted uint64 hashes of the 4.56 M domains; the URL list, the 19.6 k URLs without
    their scheme, one a line (the tarball is one gzip stream: reading it costs ~3 s a time)."""
    tarball = _shipped_tarball()
    st = tarball.stat()
    stem = _cache_dir() / f"{st.st_size}-{int(st.st_mtime)}"
    table_path, urls_path = stem.with_name(stem.name + "-domains.u64.npy"), stem.with_name(stem.name + "-urls.txt")
    if table_path.is_file() and urls_path.is_file():
        try:  # a file cut short by a power loss must not fail every later run: rebuild it
            if np.load(table_path, mmap_mode="r").dtype == np.uint64:
                return table_path, urls_path
        except (ValueError, OSError, EOFError):
            pass
    hashes: list[int] = []
    urls: list[str] = []
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is None or member.name not in ("domains", "urls"):
                continue
            for raw in f:
                line = raw.strip().decode("utf-8", "replace")
                if not line or line.startswith("#"):
                    continue
                if member.name == "domains":
                    hashes.append(domain_hash(line.lower()))
                else:
                    urls.append(_strip_scheme(line))
    if not hashes:
        raise ConfigError(
            f"{tarball} has no 'domains' list. Fix: reinstall datatrove (`make setup`), or set "
            "urls.use_datatrove_lists: false"
        )
    # Each process writes its own temp file, syncs it and renames it: workers building at once
    # never see a torn file, nor does a run after a power loss.
    try:
        table_path.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(table_path, lambda out: np.save(out, np.unique(np.array(hashes, dtype=np.uint64))))
        _write_synced(urls_path, lambda out: out.write(("\n".join(sorted(set(urls))) + "\n").encode("utf-8")))
    except OSError as exc:
        raise ConfigError(
            f"cannot write the URL blocklist cache in {table_path.parent}: {exc.strerror or exc}. "
            "Fix: set CURATE_CACHE to a writable folder, or set urls.use_datatrove_lists: false"
        ) from None
    return table_path, urls_path


def _write_synced(path: Path, write: Callable[[Any], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shipped_words(name: str) -> set[str]:
    """datatrove's banned_words.txt / soft_banned_words.txt / banned_subwords.txt, normalised
    as datatrove does (lowercase alphanumerics only)."""
    text = (datatrove_assets() / name).read_text(encoding="utf-8")
    return {_normalize(w) for w in text.splitlines() if w.strip() and not w.startswith("#")}


def _normalize(text: str) -> str:
    return _NORMALIZER.sub("", text).lower()


def _strip_scheme(url: str) -> str:
    url = url.split("://", 1)[1] if "://" in url[:12] else url
    return url.lower()


def _domain_entry(raw: str) -> str | None:
    """A list entry as a bare lowercase domain, or None when it is not one."""
    entry = raw.strip().lower().removeprefix("*.").removeprefix(".").rstrip(".")
    if "://" in entry:
        entry = entry.split("://", 1)[1].split("/", 1)[0]
    return entry if _DOMAIN.match(entry) else None


def read_domain_list(path: str, key: str) -> set[str]:
    """One domain per line, '#' comments and blank lines skipped. Anything else fails before
    work, naming the file, the line, the key and the fix."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"{key}: the domain list {path} does not exist. Fix: create it (one domain per line) or remove it from "
            f"{key}"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{key}: the domain list {path} is not UTF-8 text. Fix: save it as UTF-8 text, one domain per line"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot read the domain list {path} ({exc.strerror or exc}). Fix: make it readable by this user"
        ) from None
    domains = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        entry = _domain_entry(line)
        if entry is None:
            raise ConfigError(
                f"{key}: line {number} of {path} is not a domain: {line[:80]!r}. Fix: write one domain per line "
                "(example.com; '#' starts a comment)"
            )
        domains.add(entry)
    return domains


def _inline_domains(values: Iterable[str], key: str) -> set[str]:
    out = set()
    for value in values:
        entry = _domain_entry(value)
        if entry is None:
            raise ConfigError(f"{key}: {value!r} is not a domain. Fix: write bare domains such as example.com")
        out.add(entry)
    return out


def load_user_lists(cfg: URLFilterConfig) -> tuple[dict[str, str], dict[str, str]]:
    """(blocked, allowed): domain -> the list it comes from, as the ledger names it. Called
    when the recipe is planned, so a bad list fails before any work."""
    lists: list[dict[str, str]] = []
    for kind in ("block", "allow"):
        named: dict[str, str] = {}
        key = f"urls.{kind}_domains"
        for domain in _inline_domains(getattr(cfg, f"{kind}_domains"), key):
            named.setdefault(domain, key)
        for i, path in enumerate(getattr(cfg, f"{kind}_domains_files")):
            file_key = f"urls.{kind}_domains_files[{i}]"
            for domain in read_domain_list(path, file_key):
                named.setdefault(domain, f"{file_key} {path}")
        lists.append(named)
    return lists[0], lists[1]


def list_fingerprints(cfg: URLFilterConfig) -> list[str]:
    """The user list files' contents as hashes: part of the annotate cache key, so an edited
    list re-annotates."""
    prints = []
    for path in cfg.block_domains_files + cfg.allow_domains_files:
        try:
            prints.append(f"{path}|{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}")
        except OSError:
            prints.append(path)
    return prints


# ----------------------------------------------------------------------------- the filter


class URLBlocklistFilter(BaseFilter):
    """datatrove filter: `(False, reason)` for a page from a blocked domain or with a banned
    URL, with `metadata["url_match"] = "<list>: <entry>"`; True for the rest and for
    documents without a URL."""

    name = "😈 url blocklist"
    _requires_dependencies = ["tldextract", ("ahocorasick", "pyahocorasick")]

    def __init__(self, cfg: URLFilterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocked, self.allowed = load_user_lists(cfg)
        # Built here, in the process that plans the run: workers only open the files.
        self.table_path, self.urls_path = (str(p) for p in shipped_lists()) if cfg.use_datatrove_lists else (None, None)
        self.banned_words = {_normalize(w) for w in cfg.banned_words if _normalize(w)}
        self._loaded: dict[str, Any] | None = None

    def _state(self) -> dict[str, Any]:
        """Loaded lazily in each worker: the memory map, tldextract and the word automaton."""
        if self._loaded is None:
            import ahocorasick
            from tldextract import TLDExtract

            state: dict[str, Any] = {"tld": TLDExtract(suffix_list_urls=(), cache_dir=None)}
            state["table"] = (
                np.load(self.table_path, mmap_mode="r").view(np.ndarray) if self.table_path else None
            )  # plain view: memmap indexing is slow
            user_words = {w: "urls.banned_words" for w in self.banned_words}
            shipped = self.cfg.use_datatrove_lists
            state["urls"] = (
                set(Path(self.urls_path).read_text(encoding="utf-8").splitlines()) if self.urls_path else set()
            )
            state["words"] = {
                **(
                    {w: f"{DATATROVE_LIST} banned_words.txt" for w in shipped_words("banned_words.txt")}
                    if shipped
                    else {}
                ),
                **user_words,
            }
            state["soft"] = shipped_words("soft_banned_words.txt") if shipped else set()
            automaton = None
            if shipped:
                automaton = ahocorasick.Automaton()
                for word in shipped_words("banned_subwords.txt"):
                    automaton.add_word(word, word)
                automaton.make_automaton()
            state["subwords"] = automaton
            self._loaded = state
        return self._loaded

    def _candidates(self, host: str, registered: str) -> list[str]:
        """The host, then each parent domain down to the registered one (never a public
        suffix alone: "co.uk" on a list must not drop every British site)."""
        out = [host]
        while host != registered and "." in host:
            host = host.split(".", 1)[1]
            out.append(host)
            if len(host) <= len(registered):
                break
        return out

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        url = document.metadata.get("url")
        if not url or not isinstance(url, str):
            return True
        state = self._state()
        parts = state["tld"](url)
        host = ".".join(p for p in (parts.subdomain, parts.domain, parts.suffix) if p).lower()
        # The registered domain (eTLD+1); for a suffix the snapshot does not know (.example,
        # an intranet name), the last two labels; for an IP address, the address.
        registered = parts.top_domain_under_public_suffix.lower() or (
            host if parts.ipv4 or parts.ipv6 else ".".join(host.split(".")[-2:])
        )
        domains = self._candidates(host, registered) if host else []
        if any(d in self.allowed for d in domains):
            return True
        for d in domains:
            if d in self.blocked:
                return self._drop(document, "blocklisted_domain", f"{self.blocked[d]}: {d}")
        table = state["table"]
        if table is not None and domains and table.size:
            for d in domains:  # scalar lookups: a few candidates, numpy's array set-up costs more
                h = np.uint64(domain_hash(d))
                at = int(table.searchsorted(h))
                if at < table.size and table[at] == h:
                    return self._drop(document, "blocklisted_domain", f"{DATATROVE_LIST} domains: {d}")
        bare = _strip_scheme(url)
        if bare in state["urls"] or bare.rstrip("/") in state["urls"]:
            return self._drop(document, "blocklisted_url", f"{DATATROVE_LIST} urls: {bare[:200]}")
        words = set(_NORMALIZER.split(url.lower()))
        banned = words & state["words"].keys()
        if banned:
            word = min(banned)
            return self._drop(document, "banned_url_word", f"{state['words'][word]}: {word}")
        soft = sorted(words & state["soft"])
        if len(soft) >= self.cfg.soft_word_threshold:
            return self._drop(
                document, "soft_banned_url_words", f"{DATATROVE_LIST} soft_banned_words.txt: {' '.join(soft)}"
            )
        if state["subwords"] is not None:
            found = next(state["subwords"].iter(_normalize(url)), None)
            if found is not None:
                return self._drop(document, "banned_url_subword", f"{DATATROVE_LIST} banned_subwords.txt: {found[1]}")
        return True

    @staticmethod
    def _drop(document: Document, reason: str, detail: str) -> tuple[bool, str]:
        document.metadata[META_URL_MATCH] = detail
        return False, reason

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_loaded"] = None  # the memory map and the automaton are opened in each worker
        return state


class URLStep:
    """The URL step of the hygiene stage (curate.hygiene.build_steps): a Drop with the list
    as `value` and the matched entry as `matched`, or None. Runs first: it reads the URL only."""

    name = "urls"

    def __init__(self, cfg: URLFilterConfig) -> None:
        self.filter = URLBlocklistFilter(cfg)

    def apply(self, doc: dict) -> object | None:
        from curate.hygiene import Drop

        probe = Document(text="", id=str(doc.get("id")), metadata={"url": doc.get("url")})
        result = self.filter.filter(probe)
        if result is True:
            return None
        listed, _, entry = probe.metadata[META_URL_MATCH].rpartition(": ")
        return Drop("urls", result[1], listed, entry)
