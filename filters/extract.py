"""HTML to text with trafilatura, through datatrove's extractor and its timeout sandbox."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.extractors.trafilatura import Trafilatura
from pydantic import Field

from curate.core.schema import META_CONTENT, META_EXTRACT_FAIL, META_REJECT
from curate.core.section import Section


class ExtractConfig(Section):
    # favour_precision: we would rather lose a paragraph than keep a menu; the corpus is
    # about density, and the article-extraction benchmark shows trafilatura's precision mode
    # keeps F1 ~0.95 on real news pages.
    favour_precision: bool = True
    include_tables: bool = False
    # A page that takes trafilatura longer than this is almost always pathological HTML.
    timeout_s: float = Field(default=10.0, gt=0)


class AccountedTrafilatura(Trafilatura):
    """datatrove's `Trafilatura`, except that a page that times out, errors or yields no text is
    kept with an `extract_fail` reason instead of vanishing, so the ledger can count it.

    `deduplicate=False` on purpose: trafilatura's dedup keeps an LRU cache across pages, which
    makes a page's text depend on which pages the same worker saw before, so output would
    change with the number of workers. Dedup is our own, deterministic stage."""

    name = "⛏ Trafilatura (accounted)"

    def __init__(self, favour_precision: bool = True, timeout: float = 10.0, include_tables: bool = False) -> None:
        super().__init__(favour_precision=favour_precision, timeout=timeout, deduplicate=False, include_tables=include_tables)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with ExtractorSandbox(timeout=self.timeout, warmup_text="") as extractor:
            for doc in data:
                if META_REJECT in doc.metadata or doc.metadata.get(META_CONTENT) != "html":
                    yield doc
                    continue
                self.stat_update("total")
                with self.track_time():
                    try:
                        text = extractor.process_document(doc.text, self.extract)
                    except TimeoutError:
                        text, failure = "", ("extraction_timeout", f"> extract.timeout_s={self.timeout}")
                    except EOFError:
                        text, failure = "", ("extraction_crashed", "extractor process died (out of memory?)")
                    except Exception as exc:  # trafilatura raises many kinds on broken HTML
                        text, failure = "", ("extraction_error", f"{type(exc).__name__}: {exc}")
                    else:
                        failure = None if text and text.strip() else ("no_main_content", "trafilatura found no main text")
                doc.text = text or ""
                doc.metadata[META_CONTENT] = "text"
                if failure:
                    doc.metadata[META_EXTRACT_FAIL] = failure
                    self.stat_update(failure[0])
                else:
                    self.stat_update("extracted")
                yield doc
