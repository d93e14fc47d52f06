"""The baseline for bench_e2e: a bare datatrove pipeline with the same reader, extractor and
filters as curate's defaults, dropping as it goes (datatrove's normal mode), one process.

Usage: python -m bench.bare_datatrove INPUT_WARC OUTPUT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import ParquetWriter

from filters.language import OfflineLID, default_lid_model


def main(input_warc: str, output_dir: str) -> None:
    src = Path(input_warc)
    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    language.model = OfflineLID(str(default_lid_model()), ["en"])  # same model file, offline
    pipeline = [
        WarcReader(str(src.parent), glob_pattern=src.name),
        Trafilatura(favour_precision=True, timeout=10.0, deduplicate=False),
        language,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        ParquetWriter(output_dir),
    ]
    executor = LocalPipelineExecutor(
        pipeline, tasks=1, workers=1, logging_dir=str(Path(output_dir) / "logs"), skip_completed=False
    )
    stats = executor.run()
    reader_stats = json.loads(stats.to_json())
    print(json.dumps({"stats": reader_stats}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
