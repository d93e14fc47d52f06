"""Shared fixtures: the real data under ../shared/data, builders that write small real input
files (JSONL plain/.gz/.zst, Parquet, WARC/WET through warcio) into a temporary folder, and
the real flow run against one session-wide Prefect test server (started once, ~10 s).

Everything here writes real files and runs the real code; nothing is mocked."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# Offline and quiet, before Prefect or the hub client is imported by any test module.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# As curate's CLI does: Prefect's 20 s for its temporary API is too short on a loaded 2-core box.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

# Prefect binds its console log handler to whatever sys.stderr is when it is first imported.
# Imported lazily inside a test that uses capsys (e.g. `curate run` called in-process), that is
# the test's capture stream, closed when the test ends, and every later Prefect log line then
# fails ("I/O operation on closed file", then RecursionError). Importing it here, during
# collection, binds it to pytest's session-long stream instead (`prefect.main` is the module
# whose import runs Prefect's logging setup; a bare `import prefect` is lazy).
import prefect.main  # noqa: E402,F401

REPO_ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ missing components
# CI (CI=true, as .ci/run runs) is meant to have every component a test needs: a local Slurm
# cluster (.ci/run starts it), root with mount rights, setpriv, a deterministic fastText
# (fasttext-ng, installed by `make setup`), vllm, Prefect, Ray. There a missing one is a
# failure, so a green CI cannot hide tests that never ran; elsewhere the test skips (or
# xfails) with the reason. Test modules use it as `from conftest import require_or_skip`.
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_or_skip(reason: str, *, xfail: bool = False) -> None:
    """A component this test needs is missing (`reason` names it and the fix): skip (xfail
    when `xfail`) on a developer's machine, fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true and a component CI must have is missing: {reason}", pytrace=False)
    if xfail:
        pytest.xfail(reason)
    pytest.skip(reason)


SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SAMPLE_WARC_NAME = "cc-main-2020-34-sample.warc.gz"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"shared test data not found: {path}. The tests read real data from ../shared/data beside the "
            f"repository (see shared/data/README.md); put that folder at {SHARED_DATA}",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def sample_warc(shared_data: Path) -> Path:
    """The real Common Crawl WARC: 16 HTML responses plus their requests and metadata."""
    return _require(shared_data / SAMPLE_WARC_NAME)


@pytest.fixture(scope="session")
def articles(shared_data: Path) -> list[dict[str, str]]:
    """Real article bodies (mostly English news and blogs) as {id, text, url}, sorted by id."""
    truth = json.loads(_require(shared_data / "article-extraction-benchmark" / "ground-truth.json").read_text())
    return [{"id": key, "text": value["articleBody"], "url": value["url"]} for key, value in sorted(truth.items())]


# ----------------------------------------------------------------------------- texts
# Hand-written texts, each built to fail exactly one rule first (in the pipeline's order:
# language, gopher_repetition, gopher_quality, c4, fineweb), and one that passes all.

GOOD = (
    "Photosynthesis is the process by which green plants, algae and some bacteria turn light into chemical energy. "
    "It takes place mostly in the leaves, inside small structures called chloroplasts that contain the pigment "
    "chlorophyll.\n"
    "During the light reactions, energy from sunlight splits water molecules and releases oxygen as a by-product. "
    "The energy captured in this step is stored for a short time in two carrier molecules, ATP and NADPH.\n"
    "In the second stage, known as the Calvin cycle, the plant uses that stored energy to fix carbon dioxide from the "
    "air. "
    "The result is a simple sugar that the plant can burn for energy or build into starch and cellulose.\n"
    "Because nearly every food chain on Earth starts with organisms that photosynthesize, the process supports almost "
    "all life. "
    "It also keeps the oxygen in our atmosphere at the level that animals, including humans, need in order to breathe."
)
# Three more passing paragraphs on other topics, so that tests needing several good
# documents do not feed near-duplicates (which a dedup stage would rightly drop).
WATER = (
    "The water cycle describes how water moves between the oceans, the air and the land. "
    "Heat from the sun warms the surface of the sea, and some of that water evaporates into the atmosphere as vapour.\n"
    "As the moist air rises it cools, and the vapour condenses into tiny droplets that gather as clouds. "
    "When the droplets grow heavy enough, they fall back to the ground as rain, sleet or snow.\n"
    "Some of that water soaks into the soil and becomes groundwater, while the rest runs off into streams and rivers. "
    "Rivers carry it back to the sea, where the whole cycle can begin again.\n"
    "Plants also return water to the air through their leaves, a process called transpiration. "
    "Over a year, this steady circulation shapes the weather, fills lakes and keeps fresh water available to living "
    "things."
)
ROCKS = (
    "The outer shell of the Earth is broken into large slabs of rock called tectonic plates. "
    "These plates float on a layer of hot, slowly flowing rock in the mantle and move a few centimetres each year.\n"
    "Where two plates pull apart, molten rock rises to fill the gap and forms new crust, as happens along the middle "
    "of the Atlantic Ocean. "
    "Where they push together, one plate may sink beneath the other and melt back into the mantle.\n"
    "Collisions between continents fold and lift the crust into mountain ranges such as the Himalayas. "
    "When plates slide past each other, stress builds up along the boundary until it is released suddenly as an "
    "earthquake.\n"
    "Geologists study the shapes of coastlines, the ages of rocks and the records of old magnetic fields to trace how "
    "the plates have moved. "
    "Their work shows that the map of the world has changed many times over hundreds of millions of years."
)
CELLS = (
    "Every living thing is made of cells, and new cells come only from the division of existing ones. "
    "Before a cell divides, it copies all of its genetic material so that each daughter cell receives a complete set "
    "of instructions.\n"
    "In the kind of division called mitosis, the copied chromosomes line up in the middle of the cell and are pulled "
    "apart to opposite ends. "
    "The cell then pinches in two, leaving two daughter cells that are identical to the parent.\n"
    "A second kind of division, meiosis, produces the egg and sperm cells used in sexual reproduction. "
    "It halves the number of chromosomes and shuffles the genes, which is why brothers and sisters are never exactly "
    "alike.\n"
    "Errors in the control of cell division can lead to diseases such as cancer, in which cells keep dividing when "
    "they should stop. "
    "For this reason, biologists and doctors pay close attention to the signals that tell a cell when to grow and "
    "when to rest."
)
FRENCH = (
    "La photosynthèse est le processus par lequel les plantes vertes, les algues et certaines bactéries transforment "
    "la lumière en énergie chimique. Elle se déroule surtout dans les feuilles, à l'intérieur de petites structures "
    "appelées chloroplastes qui contiennent la chlorophylle.\n"
    "Pendant la première phase, l'énergie du soleil décompose les molécules d'eau et libère de l'oxygène. "
    "Dans la seconde phase, la plante utilise cette énergie pour fixer le dioxyde de carbone de l'air et fabriquer "
    "des sucres.\n"
    "Comme presque toutes les chaînes alimentaires commencent par des organismes qui font la photosynthèse, "
    "ce processus soutient presque toute la vie sur Terre."
)
# 30 words: under Gopher's 50, yet long enough that no single 2-gram dominates (a shorter
# text would fail gopher_repetition's top_2_gram rule first).
SHORT = (
    "Green plants turn sunlight into sugar inside their leaves. Water enters through the roots and climbs the stem. "
    "Oxygen escapes through tiny pores on the underside of each leaf."
)
# Four lines, each four times: three quarters of the lines repeat an earlier one.
REPEATED = "\n".join(
    [
        "Water boils at one hundred degrees Celsius at sea level.",
        "The boiling point drops as you climb higher above the sea.",
        "Salt dissolved in water raises its boiling point slightly.",
        "Pressure cookers work by raising the pressure inside the pot.",
    ]
    * 4
)
# LOREM and CURLY are good text plus one bad line, on topics of their own (not near-copies
# of a kept paragraph, which a dedup stage could drop before C4 says why).
LOREM = (
    "Bread is one of the oldest prepared foods. Bakers mix flour, water, salt and yeast into a dough. "
    "The yeast feeds on sugars in the flour and releases carbon dioxide, which makes the dough rise. "
    "Kneading develops gluten, a network of proteins that traps the gas. "
    "After a second rise, the loaf is baked in a hot oven until the crust turns brown.\n"
    "The page template still shows lorem ipsum dolor sit amet where the caption should go."
)
CURLY = (
    "Engineers choose the shape of a bridge according to the distance it must span. "
    "Short crossings often use simple beams resting on two supports. "
    "Arch bridges carry their load outward into the ground at each end. "
    "Suspension bridges hang the deck from cables slung between tall towers. "
    "Each design balances cost, weight and the forces of wind and traffic.\n"
    "The theme stylesheet sets body { margin: 0; padding: 0 } for every page of the site."
)
# One long sentence with no full stop: enough words for Gopher, too few sentences for C4.
FEW_SENTENCES = (
    "Photosynthesis is the process by which green plants and algae and some kinds of bacteria turn the energy of "
    "sunlight into chemical energy that is stored in sugars, and it takes place mostly in the leaves of the plant "
    "inside small green structures called chloroplasts, which hold the pigment chlorophyll and the enzymes that the "
    "plant needs in order to fix carbon dioxide from the air into the simple sugars that feed the rest of the living "
    "plant"
)
# Eight sentences as lines, none ending in punctuation: FineWeb's line_punct_ratio.
NO_PUNCT = "\n".join(
    [
        "Photosynthesis turns the energy of sunlight into chemical energy in plants",
        "It happens mostly in the leaves inside small structures called chloroplasts",
        "The light reactions split water molecules and release oxygen into the air",
        "Energy from this step is stored for a short time in ATP and NADPH",
        "The Calvin cycle then uses that stored energy to fix carbon dioxide",
        "The result is a simple sugar that the plant can burn or store as starch",
        "Nearly every food chain on Earth starts with organisms that photosynthesize",
        "The process also keeps oxygen in the atmosphere at a level animals need",
    ]
)
# Twenty lines of at most 30 characters: FineWeb's short_line_ratio (each line keeps >= 3
# words so that C4's line filter, which rewrites the text before FineWeb sees it, keeps it).
SHORT_LINES = "\n".join(
    [
        "Plants need light to grow.",
        "Leaves hold green chlorophyll.",
        "Roots take water from soil.",
        "Stems carry sap to leaves.",
        "Oxygen leaves through pores.",
        "Sugar feeds every growing cell.",
        "Starch is the stored food.",
        "Young cells divide quickly.",
        "Bright flowers attract bees.",
        "Bees carry pollen between.",
        "Seeds hold a tiny embryo.",
        "Fruit protects the seeds.",
        "Wind scatters light seeds.",
        "Spring rain wakes the seeds.",
        "Shoots bend toward light.",
        "Moss grows on wet rocks.",
        "Ferns release their spores.",
        "Pines keep needles all year.",
        "Oaks drop leaves in autumn.",
        "Cut grass regrows quickly.",
    ]
)


@pytest.fixture(scope="session")
def texts() -> SimpleNamespace:
    return SimpleNamespace(
        GOOD=GOOD,
        WATER=WATER,
        ROCKS=ROCKS,
        CELLS=CELLS,
        FRENCH=FRENCH,
        SHORT=SHORT,
        REPEATED=REPEATED,
        LOREM=LOREM,
        CURLY=CURLY,
        FEW_SENTENCES=FEW_SENTENCES,
        NO_PUNCT=NO_PUNCT,
        SHORT_LINES=SHORT_LINES,
    )


# -------------------------------------------------------------------------- builders


@dataclass
class WarcRecord:
    """One record to write. `body` is the HTTP payload of a response or the block of a
    conversion (WET), resource or metadata record; a request carries none. `content_type` is
    the HTTP Content-Type of a response, the WARC Content-Type of the others."""

    url: str
    body: str | bytes = ""
    type: str = "response"
    content_type: str = "text/html; charset=utf-8"
    status: str = "200 OK"
    record_id: str | None = None


class Inputs:
    """Writes real input files under `root`. Compression follows the name (.gz, .zst)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def bytes(self, name: str, data: bytes) -> Path:
        path = self.path(name)
        path.write_bytes(data)
        return path

    def jsonl(self, name: str, records: list[dict[str, Any] | str | bytes]) -> Path:
        """dicts become JSON lines; str/bytes are written as they are (for broken lines)."""
        lines = []
        for record in records:
            if isinstance(record, dict):
                lines.append(json.dumps(record, ensure_ascii=False).encode())
            elif isinstance(record, str):
                lines.append(record.encode())
            else:
                lines.append(record)
        return self.bytes(name, compress(name, b"".join(line + b"\n" for line in lines)))

    def parquet(self, name: str, columns: dict[str, list[Any]] | Any) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = columns if isinstance(columns, pa.Table) else pa.table(columns)
        path = self.path(name)
        pq.write_table(table, path)
        return path

    def warc(self, name: str, records: list[WarcRecord | dict[str, Any]], warcinfo: bool = True) -> Path:
        """A WARC (gzip per record when the name ends .gz), optionally led by a warcinfo record.
        Records are WarcRecord or dicts of its fields (test modules do not import conftest)."""
        from warcio.statusandheaders import StatusAndHeaders
        from warcio.warcwriter import WARCWriter

        path = self.path(name)
        with open(path, "wb") as f:
            writer = WARCWriter(f, gzip=name.endswith(".gz"))
            if warcinfo:
                writer.write_record(
                    writer.create_warcinfo_record(name, {"software": "curate tests", "format": "WARC/1.0"})
                )
            for item in records:
                rec = item if isinstance(item, WarcRecord) else WarcRecord(**item)
                body = rec.body.encode() if isinstance(rec.body, str) else rec.body
                headers = {"WARC-Record-ID": f"<{rec.record_id}>"} if rec.record_id else None
                if rec.type == "response":
                    http = StatusAndHeaders(rec.status, [("Content-Type", rec.content_type)], protocol="HTTP/1.1")
                    record = writer.create_warc_record(
                        rec.url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=headers
                    )
                elif rec.type == "request":
                    http = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.org")], is_http_request=True)
                    record = writer.create_warc_record(
                        rec.url, "request", payload=io.BytesIO(b""), http_headers=http, warc_headers_dict=headers
                    )
                else:  # conversion (WET), resource, metadata: a plain block
                    record = writer.create_warc_record(
                        rec.url,
                        rec.type,
                        payload=io.BytesIO(body),
                        warc_content_type=rec.content_type,
                        warc_headers_dict=headers,
                    )
                writer.write_record(record)
        return path


def compress(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def warc_index(path: Path) -> list[dict[str, Any]]:
    """Every record of a WARC as warcio sees it: offset, length (the gzip member for .gz),
    type, id and URL. The independent reference the reader is checked against."""
    from warcio.archiveiterator import ArchiveIterator

    rows = []
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        for record in it:
            headers = record.rec_headers
            rows.append(
                {
                    "type": record.rec_type,
                    "id": (headers.get_header("WARC-Record-ID") or "").strip("<>"),
                    "url": headers.get_header("WARC-Target-URI"),
                    "offset": it.get_record_offset(),
                    "length": it.get_record_length(),
                }
            )
    return rows


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path / "in")


@pytest.fixture(scope="session")
def make_inputs() -> Callable[[Path], Inputs]:
    """For module-scoped fixtures, which cannot use the function-scoped `inputs`."""
    return Inputs


@pytest.fixture(scope="session")
def warc_records() -> Callable[[Path], list[dict[str, Any]]]:
    return warc_index


# ---------------------------------------------------------------------------- scripts


def quality_data_script() -> Any:
    """scripts/build_quality_data.py as a module (scripts/ is not a package), freshly executed."""
    import importlib.util
    import sys

    path = REPO_ROOT / "scripts" / "build_quality_data.py"
    spec = importlib.util.spec_from_file_location("build_quality_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_quality_data", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- reading


def read_docs(path: str | Path, **kwargs: Any) -> list[Any]:
    """Every Document the reader yields for one input, rejected records included."""
    from curate.readers.reader import RecordReader

    return list(RecordReader([str(path)], **kwargs).run())


def reject_reason(doc: Any) -> str | None:
    from curate.core.schema import META_REJECT

    reject = doc.metadata.get(META_REJECT)
    return reject[0] if reject else None


@pytest.fixture(scope="session")
def read() -> Callable[..., list[Any]]:
    return read_docs


@pytest.fixture(scope="session")
def reason() -> Callable[[Any], str | None]:
    return reject_reason


# ------------------------------------------------------------------- running a pipeline


def write_config(path: Path, name: str = "test", **sections: dict[str, Any]) -> Path:
    """A YAML recipe with one worker (tests run on a shared 2-core machine) plus `sections`."""
    import yaml

    data: dict[str, Any] = {"name": name, "executor": {"workers": 1}}
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class RunResult:
    root: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def kept(self) -> Any:
        """All shards, in manifest order, as one polars DataFrame."""
        import polars as pl

        return pl.concat([pl.read_parquet(self.root / s["path"]) for s in self.manifest["shards"]])

    def ledger(self) -> Any:
        from curate.core.ledger import read_ledger

        return read_ledger(self.root / "rejected")

    def annotated_parts(self) -> list[Path]:
        """The annotate stage's parts (every document, nothing dropped) in this output folder."""
        stage_dirs = sorted(self.root.glob("_work/annotate-*"))
        assert len(stage_dirs) == 1, f"expected one annotate stage under {self.root / '_work'}, found {stage_dirs}"
        return sorted((stage_dirs[0] / "parts").glob("*.parquet"))

    def annotations(self) -> Any:
        import polars as pl

        return pl.concat([pl.read_parquet(p) for p in self.annotated_parts()])


def run_pipeline(config: Path, inputs: list[str | Path], output: Path, overrides: list[str] | None = None) -> RunResult:
    """The real Prefect flow, called like the CLI calls it (needs the `prefect_harness`)."""
    from flows.curate_corpus import curate_corpus

    manifest_path = Path(curate_corpus(str(config), list(overrides or []), [str(p) for p in inputs], str(output)))
    assert manifest_path.parent == Path(output)
    return RunResult(
        Path(output), json.loads(manifest_path.read_text()), json.loads((Path(output) / "summary.json").read_text())
    )


@pytest.fixture(scope="session")
def run_curate(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., RunResult]:
    # One throwaway run first: the first flow of a process pays several seconds of one-off
    # loading (spaCy's tokenizer, the fastText model, Prefect's engine). Paid here, in fixture
    # setup, it does not make whichever test happens to run first look slow.
    root = tmp_path_factory.mktemp("warm-up")
    source = Inputs(root / "in").jsonl("warm.jsonl", [{"id": "warm", "text": GOOD}])
    run_pipeline(write_config(root / "warm.yaml", name="warm-up"), [source], root / "out")
    return run_pipeline


@pytest.fixture(scope="session")
def config_file() -> Callable[..., Path]:
    return write_config


# ------------------------------------------------------------------------ CLI, Prefect


def curate_command() -> list[str]:
    """The installed `curate` console script next to this interpreter, else `python -m curate`."""
    script = Path(sys.executable).parent / "curate"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "curate"]


@pytest.fixture(scope="session")
def curate_cli() -> list[str]:
    return curate_command()


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a `curate` subprocess: offline, and its own Prefect home so the
    temporary server's SQLite file is not shared with other test runs."""
    env = dict(os.environ)
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        DO_NOT_TRACK="1",
        PREFECT_HOME=str(tmp_path / "prefect-home"),
    )
    return env


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server (SQLite) for the whole session: it takes ~10 s to start."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def no_tmp_files() -> Callable[[Path], list[Path]]:
    """Temporary files left under a folder (atomic writers use `.NAME.tmp`)."""

    def find(root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*") if p.name.endswith(".tmp"))

    return find
