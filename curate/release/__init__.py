"""Dataset releases: mixed, shuffled, token-counted and verified shards with a manifest and a
dataset card, under OUTPUT/releases/<name>/<version>/.

    curate.release.build.build_release(cfg, web_parts, synthetic_parts)  -> the release folder
    curate.release.build.build_release_from_run(cfg, run_dir)            -> the end of `curate run`
    curate.release.verify.verify_release(dir)    curate.release.diff.diff_releases(a, b)
    curate.release.card.card_markdown(dir)       curate.release.cli: release | verify | stats | diff

build.py plans and accounts a release; shuffle.py reads the rows in release order, writer.py writes
the shards, versions.py picks the version and stages the folder.
"""

from curate.release.config import MixConfig, ReleaseConfig

__all__ = ["MixConfig", "ReleaseConfig"]
