"""URL and domain filtering: datatrove's shipped blocklist and word lists, user allow and
block lists, the list and entry named in every verdict, real URLs passing, and the error
messages for bad list files (word for word: they are the user's only guide)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from datatrove.data import Document
from warcio.archiveiterator import ArchiveIterator

from curate.config import load_config
from curate.core.errors import ConfigError
from curate.hygiene.urls import DATATROVE_LIST, URLBlocklistFilter, URLFilterConfig, datatrove_assets

SHIPPED = DATATROVE_LIST  # "datatrove url_filterblacklistsv0_3_0"


def verdict(f: URLBlocklistFilter, url: str | None) -> tuple[object, str | None]:
    doc = Document(text="some text", id="x", metadata={"url": url} if url is not None else {})
    return f.filter(doc), doc.metadata.get("url_match")


@pytest.fixture(scope="module")
def shipped() -> URLBlocklistFilter:
    return URLBlocklistFilter(URLFilterConfig())


def test_shipped_domain_list_drops_domain_and_subdomains(shipped: URLBlocklistFilter) -> None:
    assert verdict(shipped, "https://pornhub.com/view") == (
        (False, "blocklisted_domain"),
        f"{SHIPPED} domains: pornhub.com",
    )
    assert verdict(shipped, "http://www.pornhub.com/") == (
        (False, "blocklisted_domain"),
        f"{SHIPPED} domains: pornhub.com",
    )
    assert verdict(shipped, "https://a.b.0-1avsex.com/x?y=1") == (
        (False, "blocklisted_domain"),
        f"{SHIPPED} domains: 0-1avsex.com",
    )


def test_shipped_url_and_word_lists(shipped: URLBlocklistFilter) -> None:
    url = "http://0149614511.strimbat.fr/porno-anal-escort-granville-faire-sa-salope-baise-une-vache-video-gratuite-x-escort-girl-auxerre"
    result, match = verdict(shipped, url)
    # The URL list entry, or (the domain is listed too) the domain: either names the shipped list.
    assert result in ((False, "blocklisted_url"), (False, "blocklisted_domain")) and match.startswith(SHIPPED)
    assert verdict(shipped, "https://example.org/blog/sexy-webcam-girls") == (
        (False, "soft_banned_url_words"),
        f"{SHIPPED} soft_banned_words.txt: sexy webcam",
    )
    assert verdict(shipped, "https://example.org/videos/bukkake-party") == (
        (False, "banned_url_word"),
        f"{SHIPPED} banned_words.txt: bukkake",
    )
    assert verdict(shipped, "https://example.org/free-phone-sex-line") == (
        (False, "banned_url_subword"),
        f"{SHIPPED} banned_subwords.txt: phonesex",
    )


def test_documents_without_url_pass(shipped: URLBlocklistFilter) -> None:
    assert verdict(shipped, None) == (True, None)
    assert verdict(shipped, "") == (True, None)
    assert verdict(shipped, "not a url at all") == (True, None)


def test_real_urls_pass(shipped: URLBlocklistFilter, articles: list[dict[str, str]], sample_warc: Path) -> None:
    """The 181 article pages of the extraction benchmark and the 16 pages of the Common Crawl
    sample: news sites, blogs, shops. None is adult, malware or phishing."""
    urls = [a["url"] for a in articles]
    with open(sample_warc, "rb") as f:
        urls += [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(f) if r.rec_type == "response"]
    assert len(urls) == 197
    assert [(u, verdict(shipped, u)) for u in urls if verdict(shipped, u)[0] is not True] == []


@pytest.mark.slow  # datatrove's own filter loads its 4.56 M domains as a set (~6 s, ~800 MB)
def test_every_sampled_shipped_domain_is_dropped_as_datatrove_drops_it(shipped: URLBlocklistFilter) -> None:
    """Parity with datatrove's URLFilter on 2,000 entries of its own list (every 2,000th)."""
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    with tarfile.open(datatrove_assets() / "url_filterblacklistsv0_3_0.tar.gz", "r:gz") as tar:
        lines = tar.extractfile("domains").read().decode().splitlines()
    sample = [d for d in lines[::2000] if "." in d][:2000]
    theirs = URLFilter()
    theirs.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)  # offline
    for domain in sample:
        url = f"https://{domain}/index.html"
        if theirs.filter(Document(text="x", id="x", metadata={"url": url})) is not True:
            assert verdict(shipped, url)[0] is not True, url


def test_user_block_and_allow_lists(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked.txt"
    blocked.write_text("# our own list\nbad-site.example\n\n*.tracker.example  # wildcard form\n")
    allowed = tmp_path / "allowed.txt"
    allowed.write_text("pornhub.com\n")
    cfg = URLFilterConfig(
        block_domains=["inline-bad.example"],
        block_domains_files=[str(blocked)],
        allow_domains_files=[str(allowed)],
        banned_words=["casino"],
    )
    f = URLBlocklistFilter(cfg)
    assert verdict(f, "https://shop.bad-site.example/a") == (
        (False, "blocklisted_domain"),
        f"urls.block_domains_files[0] {blocked}: bad-site.example",
    )
    assert verdict(f, "https://x.tracker.example/") == (
        (False, "blocklisted_domain"),
        f"urls.block_domains_files[0] {blocked}: tracker.example",
    )
    assert verdict(f, "https://inline-bad.example/") == (
        (False, "blocklisted_domain"),
        "urls.block_domains: inline-bad.example",
    )
    assert verdict(f, "https://news.example.com/best-casino-bonus") == (
        (False, "banned_url_word"),
        "urls.banned_words: casino",
    )
    assert verdict(f, "https://pornhub.com/") == (True, None)  # allowed beats the shipped list
    assert verdict(f, "https://bad-site.example.org/") == (True, None)  # another domain


def test_shipped_lists_can_be_switched_off() -> None:
    f = URLBlocklistFilter(URLFilterConfig(use_datatrove_lists=False, block_domains=["x.example"]))
    assert verdict(f, "https://pornhub.com/") == (True, None)
    assert verdict(f, "https://www.x.example/") == ((False, "blocklisted_domain"), "urls.block_domains: x.example")


def _load(tmp_path: Path, urls: dict) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"urls": urls}))
    load_config(recipe)


def test_missing_list_file_fails_before_work(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"block_domains_files": [str(missing)]})
    assert str(err.value) == (
        f"urls.block_domains_files[0]: the domain list {missing} does not exist. "
        "Fix: create it (one domain per line) or remove it from urls.block_domains_files[0]"
    )


def test_corrupt_list_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "allow.txt"
    bad.write_text("good.example\nthis is not a domain\n")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"allow_domains_files": [str(bad)]})
    assert str(err.value) == (
        f"urls.allow_domains_files[0]: line 2 of {bad} is not a domain: 'this is not a domain'. "
        "Fix: write one domain per line (example.com; '#' starts a comment)"
    )


def test_binary_list_file_fails(tmp_path: Path) -> None:
    bad = tmp_path / "block.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"block_domains_files": [str(bad)]})
    assert (
        str(err.value)
        == f"urls.block_domains_files[0]: the domain list {bad} is not UTF-8 text. Fix: save it as UTF-8 text, one domain per line"  # noqa: E501
    )


def test_bad_inline_domain_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"block_domains": ["https://ok.example/path", "not a domain"]})
    assert (
        str(err.value)
        == "urls.block_domains: 'not a domain' is not a domain. Fix: write bare domains such as example.com"
    )


def test_disabled_filter_does_not_read_its_lists(tmp_path: Path) -> None:
    _load(tmp_path, {"enabled": False, "block_domains_files": [str(tmp_path / "nope.txt")]})


@pytest.mark.slow  # builds the 4.56 M-domain table twice (~10 s of CPU each)
def test_a_torn_blocklist_cache_is_rebuilt_and_an_unwritable_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache file cut short (power loss) is rebuilt, not trusted; a cache folder that
    cannot be written fails naming it and the fix (review)."""
    from curate.core.errors import ConfigError
    from curate.hygiene.urls import shipped_lists

    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    table, urls = shipped_lists()
    whole = table.read_bytes()
    table.write_bytes(whole[:100])  # torn
    assert shipped_lists() == (table, urls)
    assert table.read_bytes() == whole
    assert not [p for p in table.parent.iterdir() if p.name.endswith(".tmp")]

    blocked = tmp_path / "ro"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("CURATE_CACHE", str(blocked))
    with pytest.raises(ConfigError) as err:
        shipped_lists()
    assert str(err.value).startswith(f"cannot write the URL blocklist cache in {blocked / 'url-blocklist'}: ")
    assert str(err.value).endswith("Fix: set CURATE_CACHE to a writable folder, or set urls.use_datatrove_lists: false")
