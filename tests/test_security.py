"""Security: configs are data only, output paths stay inside the output folder, secrets come
from the environment or a Prefect Secret block and never land in outputs, artifacts or
logs, and models load only from configured paths (no hub download)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curate.cli import main
from curate.config import load_config
from curate.core.errors import ConfigError, InputError
from curate.core.layout import prepare_output

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-curate-planted-7f3a9c2e51d04b86"

# ------------------------------------------------------------------- configs are data


def test_yaml_python_tag_is_rejected_and_never_run(tmp_path: Path) -> None:
    witness = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f'name: !!python/object/apply:os.system ["touch {witness}"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value) == (
        f"config {config} uses the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system', which curate does not "
        "load: "
        "a config holds plain data (mappings, lists, strings, numbers), never Python objects. Fix: remove the tag and "
        "write the plain value"
    )
    assert not witness.exists()


def test_no_unsafe_deserialisation_in_curate() -> None:
    """No yaml.load / unsafe_load, pickle or marshal loads, eval or exec anywhere in curate's
    own code (datatrove and Ray pickle pipeline steps internally; that is theirs, not ours)."""
    unsafe = re.compile(
        r"yaml\.(load|unsafe_load|full_load)\(|yaml\.(Unsafe|Full)?Loader\b|pickle\.loads?\(|marshal\.loads?\(|\beval\(|\bexec\(|import pickle|import dill|import cloudpickle"  # noqa: E501
    )
    # Not inputs or configs: evaluation text read from a file inside a pinned PyPI wheel
    # (gensim's test data), through a find_class allow-list.
    reviewed = {"bench/webeval.py"}
    hits = []
    for folder in ("curate", "flows", "filters", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if str(path.relative_to(REPO)) in reviewed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if unsafe.search(line):
                    hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert hits == []
    # And the YAML that is read is read with safe_load.
    loads = [p for p in (REPO / "curate").rglob("*.py") if "yaml." in p.read_text() and "safe_load" in p.read_text()]
    assert loads


# ------------------------------------------------------------- paths stay inside output


@pytest.mark.parametrize(
    ("key", "value"), [("release.name", "../../etc"), ("release.version", "v1/../../x"), ("name", "/abs/path")]
)
def test_names_that_would_escape_the_output_are_rejected(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"{key}={json.dumps(value)}"])
    assert str(err.value) == (
        f"invalid config (defaults):\n  {key}: {value!r} is not a plain name; names become folders under the output "
        "folder, so only "
        f"letters, digits, '.', '_' and '-' are allowed, starting with a letter or digit (no '/'). Fix: set {key} to "
        "a name such as my-corpus."
    )


def test_symlink_in_output_leading_outside_is_refused(tmp_path: Path, inputs, config_file, capsys) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "part-00000.parquet").write_text("not curate's to delete")
    out = tmp_path / "out"
    out.mkdir()
    (out / "data").symlink_to(outside)
    with pytest.raises(InputError) as err:
        prepare_output(out)
    assert str(err.value) == (
        f"{out / 'data'} is a symbolic link to {outside}, outside the output folder {out}; curate writes and deletes "
        "files under the output folder and will not follow it. Fix: remove the link, or pass --output with another "
        "folder"
    )
    # The same through `curate run`, before any work, and the file outside is untouched.
    source = inputs.jsonl("ok.jsonl", [{"text": "x"}])
    code = main(["run", str(config_file(tmp_path / "c.yaml")), "--input", str(source), "--output", str(out), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: {out / 'data'} is a symbolic link to {outside}")
    assert (outside / "part-00000.parquet").read_text() == "not curate's to delete"
    # A deeper link (inside _work) is found too; a link that stays inside is fine.
    (out / "data").unlink()
    (out / "_work" / "annotate-x").mkdir(parents=True)
    (out / "_work" / "annotate-x" / "parts").symlink_to(outside)
    with pytest.raises(InputError, match="annotate-x/parts is a symbolic link"):
        prepare_output(out)
    (out / "_work" / "annotate-x" / "parts").unlink()
    (out / "_work" / "annotate-x" / "parts").symlink_to(out / "_work")
    prepare_output(out)


def test_release_commands_refuse_a_symlink_leading_outside(tmp_path: Path, capsys) -> None:
    from bench.bench_release import write_parts
    from curate.cli import main as release_main

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "part-00000.parquet").write_text("not curate's to delete")
    parts = write_parts(tmp_path / "parts", docs=20, parts=1)

    def refused(argv: list[str], link: Path) -> None:
        assert release_main(argv) == 2
        assert capsys.readouterr().err == (
            f"error: {link} is a symbolic link to {outside}, outside the output folder {link.parent}; curate writes "
            "and deletes "
            "files under the output folder and will not follow it. Fix: remove the link, or pass --output with "
            "another folder\n"
        )

    # `curate release`: its output folder (where releases/NAME/VERSION is written) is checked
    # before anything is written, and the file behind the link is untouched.
    out = tmp_path / "out"
    out.mkdir()
    (out / "releases").symlink_to(outside)
    refused(["release", str(parts[0]), "--output", str(out)], out / "releases")
    assert sorted(p.name for p in outside.iterdir()) == ["part-00000.parquet"]
    assert (outside / "part-00000.parquet").read_text() == "not curate's to delete"
    # `verify`, `stats` and `diff` read a release folder: a shard that is a link leading out
    # of it is refused rather than checked, shown or compared.
    release = tmp_path / "v1"
    (release / "data").mkdir(parents=True)
    (release / "data" / "train-00000.parquet").symlink_to(outside / "part-00000.parquet")
    link = release / "data" / "train-00000.parquet"
    (tmp_path / "v0").mkdir()
    for argv in (["verify", str(release)], ["stats", str(release)], ["diff", str(tmp_path / "v0"), str(release)]):
        assert release_main(argv) == 2
        assert capsys.readouterr().err == (
            f"error: {link} is a symbolic link to {outside / 'part-00000.parquet'}, outside the output folder "
            f"{release}; curate writes "
            "and deletes files under the output folder and will not follow it. Fix: remove the link, or pass --output "
            "with another folder\n"
        )


# ---------------------------------------------------------------------------- secrets


def test_a_literal_key_in_the_config_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = tmp_path / "keyed.yaml"
    config.write_text(f"engine:\n  kind: openai\n  urls: [http://127.0.0.1:9/v1]\n  api_key: {SECRET}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value) == (
        f"invalid config {config}:\n  engine.api_key: secrets never go in a config (it is copied into every output as "
        "config.resolved.yaml). "
        "Fix: delete it, export the key in an environment variable and set engine.api_key_env: ITS_NAME "
        "(or store it in a Prefect Secret block and set engine.api_key_secret: BLOCK_NAME)."
    )
    assert SECRET not in str(err.value)


class KeyCheckingServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 that answers only requests carrying
    `Authorization: Bearer <key>` (401 otherwise) with a fixed textbook paragraph."""

    ANSWER = (
        "Rivers shape the land over long periods of time. Water flowing downhill picks up small grains of sand and "
        "rock "
        "and carries them along the channel. Where the current slows, on the inside of a bend or at the mouth of the "
        "river, "
        "the grains settle and build banks, bars and deltas. Over thousands of years this slow work carves valleys and "
        "spreads fertile soil across the plains, which is why so many farms and cities grew up beside rivers.\n"
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                server.seen.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    self._send(401, {"error": {"message": "bad key"}})
                    return False
                return True

            def do_GET(self) -> None:
                if self._authorised():
                    self._send(200, {"object": "list", "data": [{"id": "key-checked", "object": "model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if self._authorised():
                    text = " ".join([server.ANSWER] * 2)
                    self._send(
                        200,
                        {
                            "choices": [
                                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                            ],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 180, "total_tokens": 280},
                        },
                    )

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def key_server() -> Iterator[KeyCheckingServer]:
    server = KeyCheckingServer(SECRET)
    yield server
    server.close()


def _prefect_records(flow_run_id: str | None) -> str:
    """Every artifact and every log line the Prefect API holds, as one text."""
    from prefect.client.orchestration import get_client

    async def gather() -> str:
        # Raw API calls: this Prefect/fastapi pair rejects the explicit null filters that the
        # client's read_artifacts/read_logs send (see README, "Scheduled runs").
        async with get_client() as client:
            texts = []
            for route in ("/artifacts/filter", "/logs/filter"):
                offset = 0
                while True:
                    page = (await client._client.post(route, json={"limit": 200, "offset": offset})).json()
                    texts += [json.dumps(item) for item in page]
                    if len(page) < 200:
                        break
                    offset += 200
        return "\n".join(texts)

    return asyncio.run(gather())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["in-process", "prefect"])
def test_planted_secret_is_used_and_never_written_anywhere(
    mode: str,
    tmp_path: Path,
    inputs,
    texts,
    config_file,
    key_server: KeyCheckingServer,
    prefect_harness,
    monkeypatch,
    capfd,
    caplog,
) -> None:
    monkeypatch.setenv("CURATE_TEST_API_KEY", SECRET)
    source = inputs.jsonl(
        "seeds.jsonl", [{"id": k, "text": getattr(texts, k)} for k in ("GOOD", "WATER", "ROCKS", "CELLS")]
    )
    config = config_file(
        tmp_path / "secret.yaml",
        name="secret-test",
        engine={"kind": "openai", "urls": [key_server.url], "api_key_env": "CURATE_TEST_API_KEY", "max_retries": 0},
        generate={"enabled": True, "n": 4, "min_words": 20, "score_quality": False, "sampling": {"max_tokens": 300}},
        release={"enabled": True, "count_tokens": False, "mix": {"unit": "documents"}, "plots": False},
    )
    out = tmp_path / "out"
    caplog.set_level("DEBUG")
    # in-process: the default without a Prefect API. --prefect: the run goes through the flow, so its
    # artifacts and logs are Prefect records to search too (the harness's server is set in Prefect's
    # settings context, not in PREFECT_API_URL).
    flags = ["--prefect"] if mode == "prefect" else []
    code = main(["run", str(config), "--input", str(source), "--output", str(out), *flags])
    captured = capfd.readouterr()
    assert code == 0, captured.err[-3000:]
    # The key was really used: every request carried it.
    assert key_server.seen and set(key_server.seen) == {f"Bearer {SECRET}"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["generate"]["prompts"] == 4

    # ... and it is nowhere: no file under the output (bytes, compressed Parquet included:
    # the secret would survive as a literal in any string column or footer), no Prefect
    # artifact or log record, no captured output or log line.
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    import polars as pl

    for part in out.rglob("*.parquet"):
        frame = pl.read_parquet(part)
        for column in frame.columns:
            if frame[column].dtype == pl.String:
                assert not frame[column].str.contains(SECRET, literal=True).any(), (part, column)
    if mode == "prefect":
        prefect_text = _prefect_records(None)
        assert "curate-summary-secret-test" in prefect_text  # the artifacts were really read
        assert SECRET not in prefect_text
    else:
        assert captured.out.startswith("running in-process"), captured.out[:200]
    assert SECRET not in captured.out and SECRET not in captured.err
    assert SECRET not in caplog.text


def test_key_from_a_prefect_secret_block(key_server: KeyCheckingServer, prefect_harness, monkeypatch) -> None:
    from prefect.blocks.system import Secret

    from curate.llm.config import EngineConfig
    from curate.llm.engine import open_engine
    from curate.llm.engines.base import ChatRequest, EngineError

    Secret(value=SECRET).save("curate-test-key", overwrite=True)
    cfg = EngineConfig(kind="openai", urls=[key_server.url], api_key_secret="curate-test-key", max_retries=0)
    with open_engine(cfg) as engine:
        [gen] = engine.generate([ChatRequest.of("Explain rivers.")])
    assert gen.error is None and gen.text.startswith("Rivers shape the land")
    assert key_server.seen[-1] == f"Bearer {SECRET}"

    missing = EngineConfig(kind="openai", urls=[key_server.url], api_key_secret="no-such-block")
    with pytest.raises(EngineError) as err:
        with open_engine(missing):
            pass
    assert str(err.value).startswith(
        "engine.api_key_secret names the Prefect Secret block 'no-such-block', which cannot be loaded ("
    )
    assert str(err.value).endswith("). Fix: create it (prefect block create secret) or correct the name")


# ----------------------------------------------------------------- models: local only


def test_a_model_name_not_on_disk_fails_without_a_network_attempt(monkeypatch, tmp_path: Path) -> None:
    from curate.llm.config import EngineConfig
    from curate.llm.engine import open_engine
    from curate.llm.engines.base import EngineError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # an empty cache
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def record(self: socket.socket, address: object) -> None:
        attempts.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: attempts.append(address))
    for kind in ("vllm", "vllm_server"):
        with pytest.raises(EngineError) as err:
            with open_engine(EngineConfig(kind=kind, model="some-org/not-a-real-model-xyz")):
                pass
        assert str(err.value) == (
            "engine.model: 'some-org/not-a-real-model-xyz' is not a local folder and not in the Hugging Face cache; "
            "curate never downloads models. "
            "Fix: set engine.model to a model folder, download the model yourself first, or use 'default' for the "
            "embedded SmolLM2-135M-Instruct"
        )
    assert attempts == []


@pytest.mark.parametrize("key", ["language.model_path", "quality.model_path"])
def test_fasttext_models_load_only_from_existing_files(tmp_path: Path, key: str) -> None:
    from curate.annotate import annotate_pipeline

    cfg = load_config(None, [f"{key}=lid.176.bin", "quality.enabled=true"])
    with pytest.raises(ConfigError) as err:
        annotate_pipeline(cfg, [str(tmp_path / "x.jsonl")], tmp_path)
    assert "not found: lid.176.bin. Fix: set the path to an existing .bin/.ftz file" in str(err.value)
