"""The ordered stages of `curate run`: the one list that its steps (flows/pipeline.py, run
in-process or as the Prefect flow of flows/curate_corpus.py), `curate run`'s progress display
and the standalone commands (`curate annotate`, `dedup`, `generate`) take their stages from.

Each stage is declared in its own package (curate.core.stages.Stage: name, the config sections
that key its cache, enabled, body); a new stage is its `Stage(...)` plus one entry here. The
cache keys chain in this order, so the order is part of every `_work/<stage>-<key>/` name."""

from __future__ import annotations

from curate.annotate import ANNOTATE
from curate.core.stages import Stage
from curate.dedup.stage import DEDUP
from curate.hygiene.stage import HYGIENE
from curate.select import SELECT
from curate.synth.generate import GENERATE

STAGES: tuple[Stage, ...] = (ANNOTATE, SELECT, HYGIENE, DEDUP, GENERATE)
# After the stages: `write` (curate.core.stages.write_output: shards, ledger, manifest) and, when
# release.enabled, `release`. With the stages, the steps the progress display shows.
WRITE, RELEASE = "write", "release"
STEPS: tuple[str, ...] = (*(s.name for s in STAGES), WRITE, RELEASE)


def stage_named(name: str) -> Stage:
    for stage in STAGES:  # read at call time: a stage added to the list is found
        if stage.name == name:
            return stage
    raise KeyError(f"no stage named {name!r}; the stages are {', '.join(s.name for s in STAGES)}")
