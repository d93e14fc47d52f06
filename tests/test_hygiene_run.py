"""Acceptance, through a real `curate run` (the Prefect flow, default stages): planted
e-mails, phone numbers, cards, IBANs and keys are gone from the output shards while the
years, prices, ISBNs and version strings beside them are untouched; pages from a
blocklisted domain are dropped with their list named in the ledger; clean real articles
pass unchanged. Then the switches: pii.mode drop, and both steps off."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.hygiene.pii import find_pii
from curate.hygiene.urls import DATATROVE_LIST

PLANTED = {
    "email": ["jane.doe@example.org"],
    "phone": ["(212) 555-0147"],
    "card": ["4111 1111 1111 1111"],
    "iban": ["DE89 3704 0044 0532 0130 00"],
    "secret": ["AKIAIOSFODNN7EXAMPLE", "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"],
}
SURVIVORS = ["first edition of 1998", "ISBN 978-0-306-40615-7", "$1,299.99", "version 1.2.3.4", "15 January 2024"]
PARAGRAPH = (
    "The first edition of 1998 (ISBN 978-0-306-40615-7) sold for $1,299.99 until 15 January 2024, when version 1.2.3.4 "
    "of the software replaced it. Orders: jane.doe@example.org or (212) 555-0147; pay by card 4111 1111 1111 1111 or "
    "to "
    "DE89 3704 0044 0532 0130 00. The leaked build used AKIAIOSFODNN7EXAMPLE and "
    "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB."
)


@pytest.fixture(scope="module")
def hygiene_inputs(
    tmp_path_factory, make_inputs, articles: list[dict[str, str]]
) -> tuple[list[Path], Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("hygiene-in")
    clean = [a for a in articles if a["text"].isascii() and len(a["text"]) > 2000 and find_pii(a["text"]) == []][:5]
    assert len(clean) == 5
    planted_body = clean[0]["text"].split("\n")
    records = [
        {
            "id": "planted",
            "url": "https://news.example.com/story",
            "text": "\n".join(planted_body[:1] + [PARAGRAPH] + planted_body[1:]),
        },
        {"id": "shipped-blocked", "url": "https://www.pornhub.com/some/page", "text": clean[1]["text"]},
        {"id": "user-blocked", "url": "https://shop.bad-site.example/item", "text": clean[2]["text"]},
        *({"id": f"clean-{i}", "url": a["url"], "text": a["text"]} for i, a in enumerate(clean[3:])),
    ]
    blocklist = root / "blocked-domains.txt"
    blocklist.write_text("# sites we never train on\nbad-site.example\n")
    jsonl = make_inputs(root).jsonl("web.jsonl", records)
    return [jsonl], blocklist, {r["id"]: r["text"] for r in records}


def _recipe(config_file, root: Path, blocklist: Path, name: str, **extra: dict) -> Path:
    # Keep everything the hygiene steps keep: no language, heuristic or quality cut.
    off = {"enabled": False}
    return config_file(
        root / "recipe.yaml",
        name=name,
        language={"keep": [], "min_score": 0.0},
        filters={"gopher_repetition": off, "gopher_quality": off, "c4": off, "fineweb": off},
        urls={"block_domains_files": [str(blocklist)]},
        **extra,
    )


@pytest.mark.slow
def test_default_run_redacts_pii_and_drops_blocklisted_pages(tmp_path, run_curate, config_file, hygiene_inputs) -> None:
    files, blocklist, originals = hygiene_inputs
    recipe = _recipe(
        config_file, tmp_path, blocklist, "hygiene", release={"enabled": True, "plots": False, "count_tokens": False}
    )
    result = run_curate(recipe, files, tmp_path / "out")
    kept = result.kept()
    shard_text = "\n".join(kept["text"].to_list())
    for kind, values in PLANTED.items():
        for value in values:
            assert value not in shard_text, f"{kind} {value} reached the shards"
    planted = kept.filter(pl.col("id") == "planted").row(0, named=True)
    for survivor in SURVIVORS:
        assert survivor in planted["text"]
    assert planted["text"] == originals["planted"].replace(
        PARAGRAPH,
        (
            "The first edition of 1998 (ISBN 978-0-306-40615-7) sold for $1,299.99 until 15 January 2024, when "
            "version 1.2.3.4 "
            "of the software replaced it. Orders: <EMAIL> or <PHONE>; pay by card <CARD> or to <IBAN>. The leaked "
            "build used <SECRET> and <SECRET>."
        ),
    )
    assert planted["pii"] == {"email": 1, "phone": 1, "ip": 0, "card": 1, "iban": 1, "secret": 2}
    # Clean real articles: untouched, counted as clean.
    for row in kept.filter(pl.col("id").str.starts_with("clean-")).iter_rows(named=True):
        assert row["text"] == originals[row["id"]] and set(row["pii"].values()) == {0}
    assert sorted(kept["id"]) == ["clean-0", "clean-1", "planted"]
    ledger = result.ledger().select("id", "stage", "reason", "value", "matched").sort("id").to_dicts()
    assert ledger == [
        {
            "id": "shipped-blocked",
            "stage": "urls",
            "reason": "blocklisted_domain",
            "value": f"{DATATROVE_LIST} domains",
            "matched": "pornhub.com",
        },
        {
            "id": "user-blocked",
            "stage": "urls",
            "reason": "blocklisted_domain",
            "value": f"urls.block_domains_files[0] {blocklist}",
            "matched": "bad-site.example",
        },
    ]
    assert {"stage": "urls", "reason": "blocklisted_domain", "documents": 2} in result.summary["by_reason"]
    # The release card counts what was replaced, per kind, over the released documents.
    card = (tmp_path / "out" / "releases" / "hygiene" / "v1" / "README.md").read_text()
    assert "## PII" in card
    for line in (
        "| email | `<EMAIL>` | 1 | 1 | 33.3% |",
        "| secret | `<SECRET>` | 2 | 1 | 33.3% |",
        "| ip | `<IP>` | 0 | 0 | 0.0% |",
        "| any |  | 6 | 1 | 33.3% |",
    ):
        assert line in card


@pytest.mark.slow
def test_drop_mode_and_switches(tmp_path, run_curate, config_file, hygiene_inputs) -> None:
    files, blocklist, originals = hygiene_inputs
    recipe = _recipe(config_file, tmp_path, blocklist, "hygiene-drop")
    dropped = run_curate(recipe, files, tmp_path / "drop", ["pii.mode=drop", "urls.enabled=false"])
    rows = dropped.ledger().select("id", "stage", "reason", "value").to_dicts()
    assert rows == [
        {"id": "planted", "stage": "pii", "reason": "pii", "value": "email=1 phone=1 card=1 iban=1 secret=2"}
    ]
    assert "shipped-blocked" in dropped.kept()["id"].to_list()  # urls off: nothing dropped for its URL

    off = run_curate(recipe, files, tmp_path / "off", ["pii.enabled=false", "urls.enabled=false"])
    kept = off.kept()
    assert kept.height == len(originals) and off.ledger().height == 0
    assert kept.filter(pl.col("id") == "planted")["text"][0] == originals["planted"]
    assert kept["pii"].null_count() == kept.height
