"""Dataset releases: mixed, token-counted, verified shards with a manifest and a dataset card.

    build_release(cfg, web_parts, synthetic_parts)  -> OUTPUT/releases/<name>/<version>/
    verify_release(dir), release_stats(dir), diff_releases(a, b), card_markdown(dir)
"""

from curate.release.config import MixConfig, ReleaseConfig

__all__ = ["MixConfig", "ReleaseConfig"]
