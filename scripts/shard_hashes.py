"""sha256 of every shard and ledger file of two reference runs, to prove a refactor changed no byte.

    .venv/bin/python scripts/shard_hashes.py --write /tmp/before.json   # on the old commit
    .venv/bin/python scripts/shard_hashes.py --compare /tmp/before.json # on the new one

The two runs: the demo recipe on the embedded sample (`curate run demo`) and the same recipe on
the shared Common Crawl sample (../shared/data/cc-main-2020-34-sample.warc.gz). Only data/ and
rejected/ are hashed: the manifest and summary carry timings and absolute paths. `--also WARC`
adds a run of the same recipe on that file (e.g. large pages: bench/profile_pages.py's WCXB WARC).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CC_WARC = ROOT.parent / "shared" / "data" / "cc-main-2020-34-sample.warc.gz"


def _run(out: Path, extra: list[str], overrides: list[str]) -> dict[str, str]:
    sets = [arg for kv in overrides for arg in ("--set", kv)]
    cmd = [str(ROOT / ".venv" / "bin" / "curate"), "run", "demo", "--quiet", "--output", str(out), *extra, *sets]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    hashes = {}
    for sub in ("data", "rejected"):
        for f in sorted((out / sub).glob("*")):
            hashes[f"{sub}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return hashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path)
    g.add_argument("--compare", type=Path)
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to both runs, e.g. --set filters.engine=datatrove",
    )
    ap.add_argument("--also", type=Path, action="append", default=[], metavar="INPUT", help="one more run, on INPUT")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="curate-hashes-") as tmp:
        got = {
            "demo": _run(Path(tmp) / "demo", [], args.overrides),
            "cc_sample": _run(Path(tmp) / "cc", ["--input", str(CC_WARC)], args.overrides),
        }
        for i, extra in enumerate(args.also):
            got[f"also:{extra.name}"] = _run(Path(tmp) / f"also-{i}", ["--input", str(extra.resolve())], args.overrides)
    if args.write:
        args.write.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"wrote {sum(len(v) for v in got.values())} hashes to {args.write}")
        return 0
    want = json.loads(args.compare.read_text())
    bad = [
        f"{run}/{name}: {want.get(run, {}).get(name)} -> {got[run].get(name)}"
        for run in sorted(set(want) | set(got))
        for name in sorted(set(want.get(run, {})) | set(got.get(run, {})))
        if want.get(run, {}).get(name) != got.get(run, {}).get(name)
    ]
    for line in bad:
        print("DIFFERENT", line)
    n = sum(len(v) for v in got.values())
    print(f"{n - len(bad) if not bad else n} files compared, {len(bad)} different")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
