"""HTML to text, through datatrove's extractor step and its timeout sandbox: trafilatura (default
settings in ExtractConfig below) or resiliparse (DCLM's choice for speed).

Both engines share one accounting: a page that times out, crashes its extractor process,
raises, or yields no text is kept with an `extract_fail` reason instead of vanishing, so the
ledger counts it."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.extractors.base import BaseExtractor, ExtractorSandbox
from datatrove.pipeline.extractors.trafilatura import Trafilatura
from pydantic import Field, field_validator

from curate.core.schema import META_CONTENT, META_EXTRACT_FAIL, META_REJECT
from curate.core.section import Section


class ExtractConfig(Section):
    """HTML -> text. Defaults measured on the 181 real pages of the article-extraction benchmark
    (`python -m bench.bench_extract`, bench/RESULTS-extract.md; shingle F1 on the test half of a
    split by site, pages per CPU second of the extraction call):

    - trafilatura favour_recall 0.951 at ~126 pages/s: the default, the fastest setting with
      F1 >= 0.90 that keeps the demo's boilerplate out (tests/test_demo.py);
    - trafilatura favour_precision (the default until issue 18) 0.953 at ~72 pages/s: it drops
      tables, link-dense paragraphs and sometimes the whole body (recall 0.952 vs 0.965);
    - resiliparse 0.934 at ~1,180 pages/s: 9x faster again, but precision 0.891 (captions,
      share buttons, footers kept; the demo's table-layout footer leaks): for raw throughput."""

    # Which extractor runs (filters/extract.py).
    engine: str = "trafilatura"
    # trafilatura only. favour_precision: true wins over favour_recall (as configs written
    # before issue 18 meant: precision mode).
    favour_precision: bool = False
    favour_recall: bool = True
    include_tables: bool = False
    # A page that takes the extractor longer than this is almost always pathological HTML.
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in EXTRACT_ENGINES:
            raise ValueError(
                f"unknown extractor (accepted: {', '.join(EXTRACT_ENGINES)}). Fix: set extract.engine to trafilatura "
                "or resiliparse"
            )
        return value


EXTRACT_ENGINES = ("trafilatura", "resiliparse")


class _Accounted(BaseExtractor):
    """The run loop shared by both engines (datatrove's BaseExtractor.run drops failed pages;
    this one keeps them, with the reason)."""

    engine = "?"  # what the ledger's `no_main_content` detail names

    def _extract_or_error(self, html: str) -> str | Exception:
        """Runs in the sandbox process. An exception is sent back as the result (the sandbox
        raises it here, in the parent): raised there, it would end the sandbox process and be
        counted as a crash instead of an `extraction_error` with its message."""
        try:
            return self.extract(html)
        except Exception as exc:  # noqa: BLE001 - every kind is reported, with its type and message
            return exc

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with ExtractorSandbox(timeout=self.timeout, warmup_text="") as extractor:
            for doc in data:
                if META_REJECT in doc.metadata or doc.metadata.get(META_CONTENT) != "html":
                    yield doc
                    continue
                self.stat_update("total")
                with self.track_time():
                    try:
                        text = extractor.process_document(doc.text, self._extract_or_error)
                    except TimeoutError:
                        text, failure = "", ("extraction_timeout", f"> extract.timeout_s={self.timeout}")
                    except EOFError:
                        text, failure = "", ("extraction_crashed", "extractor process died (out of memory?)")
                    except Exception as exc:  # both engines raise many kinds on broken HTML
                        text, failure = "", ("extraction_error", f"{type(exc).__name__}: {exc}")
                    else:
                        empty = not (text and text.strip())
                        failure = ("no_main_content", f"{self.engine} found no main text") if empty else None
                doc.text = text or ""
                doc.metadata[META_CONTENT] = "text"
                if failure:
                    doc.metadata[META_EXTRACT_FAIL] = failure
                    self.stat_update(failure[0])
                else:
                    self.stat_update("extracted")
                yield doc


class AccountedTrafilatura(_Accounted, Trafilatura):
    """datatrove's `Trafilatura` with curate's accounting.

    `deduplicate=False` on purpose: trafilatura's dedup keeps an LRU cache across pages, which
    makes a page's text depend on which pages the same worker saw before, so output would
    change with the number of workers. Dedup is our own, deterministic stage."""

    name = "⛏ Trafilatura (accounted)"
    engine = "trafilatura"

    def __init__(
        self,
        favour_precision: bool = True,
        timeout: float = 10.0,
        include_tables: bool = False,
        favour_recall: bool = False,
    ) -> None:
        # favor_recall only when set: an unset key keeps the kwargs (and the datatrove call) as they were.
        extra = {"favor_recall": True} if favour_recall else {}
        Trafilatura.__init__(
            self,
            favour_precision=favour_precision,
            timeout=timeout,
            deduplicate=False,
            include_tables=include_tables,
            **extra,
        )


class AccountedResiliparse(_Accounted):
    """resiliparse's `extract_plain_text(html, main_content=True)`, as DCLM ran it: a C++ DOM
    parser and a main-content heuristic, ~10x trafilatura's pages/s (bench/RESULTS-extract.md).
    It runs in the same sandbox as trafilatura, so a page that hangs or kills the parser costs
    one ledger row, not the worker."""

    name = "⛏ Resiliparse (accounted)"
    engine = "resiliparse"
    _requires_dependencies = ("resiliparse",)

    def __init__(self, timeout: float = 10.0) -> None:
        super().__init__(timeout)

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        # Chosen on the tuning half of the article-extraction benchmark (bench/RESULTS-extract.md),
        # each off switch raised F1 there and again on the held-out half: alt texts are image
        # descriptions, comments are readers' comments, post meta is bylines and dates; none
        # is the article's prose (shingle F1 0.898 with DCLM's defaults -> 0.934 on the test half).
        return extract_plain_text(text, main_content=True, alt_texts=False, comments=False, post_meta=False)
