"""A local model zoo on a real Triton Inference Server (PyTriton, CPU only).

Workers, integration tests and the demo need a Triton that speaks the production LLM
contract (`text_input` BYTES -> `text_output` BYTES, optional `max_tokens` INT32) but whose
answers carry what the labelled data knows, so a simulated user can rate them and cost
accounting can charge the measured energy. Each zoo member is one Triton model with three
extra outputs: `would_satisfy` (BOOL), `cost` (FP64, the data's cost unit) and `tokens`
(INT32). Answers are looked up by exact prompt text; any other prompt gets a deterministic
fallback row chosen by CRC-32 of its text and is flagged as such in the answer. The answer
text itself is a short stand-in ("[llama-3.1-8b] answer to #123"); `max_tokens` truncates
it word by word, and `tokens` counts its words.

It also declares the optional inputs and outputs of Triton's vLLM backend and behaves as
that backend does, so the model worker's handling of them is tested for real:
`sampling_parameters` (JSON: max_tokens, stop; temperature is accepted and ignored, the
zoo being deterministic), `exclude_input_in_output` (without it true, the prompt comes back
in front of the answer, as vLLM returns it), and `return_finish_reason`,
`return_num_input_tokens`, `return_num_output_tokens` with their outputs (`finish_reason`
"length" when max_tokens cut the answer, else "stop"; words count as tokens).

Two ways to run it: `ZooServer` in this process (Triton's Python models then run in this
process's threads), or `start_zoo_process`, a child process that tests can kill without
fear: its stop() leaves no process, /dev/shm segment or workspace behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from router.dataset import ZooData, load_csv
from router.synthetic import synthetic_zoo
from workers.errors import InferenceError
from workers.triton_client import wait_until_ready

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "SYNTHETIC_PROMPTS",
    "ZooBook",
    "ZooError",
    "ZooProcess",
    "ZooServer",
    "load_zoo",
    "serve",
    "start_zoo_process",
]

DEFAULT_MAX_BATCH_SIZE = 256
SYNTHETIC_PROMPTS = 2000
# Triton waits this long for in-flight work on shutdown; each model needs ~2 s to unload.
EXIT_TIMEOUT_S = 5
_LOG_TAIL_LINES = 30


# Boolean inputs of Triton's vLLM backend the zoo understands as that backend does.
_VLLM_FLAGS = (
    "exclude_input_in_output",
    "return_finish_reason",
    "return_num_input_tokens",
    "return_num_output_tokens",
)

# Longest prompt a zoo model accepts (below MESSPLUS_MAX_PROMPT_BYTES, so clients can
# submit prompts the servers refuse, as happens with real context windows).
CONTEXT_BYTES = 8192


class ZooError(RuntimeError):
    """The zoo could not be started or stopped; the message carries Triton's last log lines."""


def load_zoo(data_path: str | Path | None) -> ZooData:
    """The replay data at `data_path`, or the project's default synthetic zoo."""
    if data_path is None:
        return synthetic_zoo(SYNTHETIC_PROMPTS, seed=0).data
    return load_csv(data_path)


class ZooBook:
    """Every zoo member's answers, looked up by exact prompt text. A prompt listed twice in
    the data answers from its first row.
    """

    def __init__(self, data: ZooData) -> None:
        self.data = data
        self._rows: dict[str, int] = {}
        for row, prompt in enumerate(data.prompts):
            self._rows.setdefault(prompt, row)

    def row(self, prompt: str) -> tuple[int, bool]:
        """(row, known): an unknown prompt maps to a row fixed by its text, on every run."""
        row = self._rows.get(prompt)
        if row is not None:
            return row, True
        return zlib.crc32(prompt.encode("utf-8")) % self.data.n_requests, False

    def answer(
        self,
        model_index: int,
        prompts: Sequence[str],
        max_tokens: Sequence[int | None] | None,
        *,
        stops: Sequence[Sequence[str]] | None = None,
        echo: Sequence[bool] | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        """One zoo member's outputs for a batch of prompts, each shaped (batch, 1).

        Per prompt: `max_tokens` truncates the answer word by word, the first of `stops`
        found ends it there (as vLLM leaves the stop string out), and `echo` puts the prompt
        in front of it. A prompt longer than CONTEXT_BYTES is refused, failing its whole
        batch, as a real LLM server refuses a prompt over its context window.
        """
        for prompt in prompts:
            if len(prompt.encode("utf-8")) > CONTEXT_BYTES:
                raise ValueError(f"prompt of {len(prompt.encode())} bytes exceeds the context")
        data = self.data
        model = data.models[model_index]
        rows = np.empty(len(prompts), dtype=np.int64)
        texts, tokens, reasons = [], [], []
        for i, prompt in enumerate(prompts):
            row, known = self.row(prompt)
            rows[i] = row
            text = (
                f"[{model}] answer to #{row}"
                if known
                else f"[{model}] fallback answer from #{row} (prompt not in {data.name})"
            )
            words = text.split()
            limit = None if max_tokens is None else max_tokens[i]
            reason = "stop"
            if limit is not None and len(words) > limit:
                words, reason = words[: max(int(limit), 0)], "length"
            answer = " ".join(words)
            for stop in stops[i] if stops is not None else ():
                if stop and stop in answer:
                    answer, reason = answer[: answer.index(stop)], "stop"
            texts.append(((prompt if echo is not None and echo[i] else "") + answer).encode())
            tokens.append(len(answer.split()))
            reasons.append(reason.encode("utf-8"))
        return {
            "text_output": np.array(texts, dtype=np.object_).reshape(-1, 1),
            "would_satisfy": data.satisfied[rows, model_index].astype(np.bool_).reshape(-1, 1),
            "cost": data.cost[rows, model_index].astype(np.float64).reshape(-1, 1),
            "tokens": np.array(tokens, dtype=np.int32).reshape(-1, 1),
            "finish_reason": np.array(reasons, dtype=np.object_).reshape(-1, 1),
            "num_input_tokens": np.array(
                [len(p.split()) for p in prompts], dtype=np.uint32
            ).reshape(-1, 1),
            "num_output_tokens": np.array(tokens, dtype=np.uint32).reshape(-1, 1),
        }


class _ZooModel:
    """The inference callable of one zoo member; Triton hands it every request it batched."""

    def __init__(self, book: ZooBook, model_index: int) -> None:
        self._book = book
        self._index = model_index

    def __call__(self, requests: Sequence[Any]) -> list[dict[str, npt.NDArray[Any]]]:
        responses = []
        for request in requests:
            prompts = [_decode(raw) for raw in np.asarray(request["text_input"]).reshape(-1)]
            n = len(prompts)
            limit = request.data.get("max_tokens")
            max_tokens: list[int | None] = (
                [None] * n if limit is None else np.asarray(limit).reshape(-1).tolist()
            )
            stops: list[list[str]] = [[] for _ in range(n)]
            raw_params = request.data.get("sampling_parameters")
            if raw_params is not None:
                for i, raw in enumerate(np.asarray(raw_params).reshape(-1)):
                    params = json.loads(_decode(raw))
                    max_tokens[i] = params.get("max_tokens", max_tokens[i])
                    stop = params.get("stop", [])
                    stops[i] = [stop] if isinstance(stop, str) else list(stop)
            exclude = request.data.get("exclude_input_in_output")
            echo = (
                [True] * n if exclude is None else [not x for x in np.asarray(exclude).reshape(-1)]
            )
            responses.append(
                self._book.answer(self._index, prompts, max_tokens, stops=stops, echo=echo)
            )
        return responses


class _StreamingZooModel(_ZooModel):
    """A zoo member served as Triton's vLLM backend serves models: decoupled (the answer
    comes on a response stream, followed by an empty final response) and unbatched."""

    def __call__(  # type: ignore[override]
        self, requests: Sequence[Any]
    ) -> Iterator[list[dict[str, npt.NDArray[Any]]]]:
        answers = super().__call__(requests)
        yield [{name: array.reshape(-1) for name, array in answer.items()} for answer in answers]


def _decode(raw: object) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _free_port(host: str, taken: Sequence[int] = ()) -> int:
    """A port nobody listens on now. Another process may take it before Triton binds it;
    on this single-user machine that race has not been seen, and start() would then fail
    loudly with Triton's bind error.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            return port


def _require_free(host: str, port: int, what: str) -> None:
    """Fail now if someone listens on `port`: PyTriton would wait 120 s for a Triton that
    already exited on its bind error. SO_REUSEADDR, as Triton binds, so TIME_WAIT is fine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ZooError(f"{what} port {host}:{port} is not available: {exc}") from exc


def _with_libdir_first(ld_library_path: str | None) -> str:
    """LD_LIBRARY_PATH for Triton: a non-system Python (pyenv) must shadow the system
    libpython, or the Python backend stub loads the wrong one and models fail to load.
    """
    libdir = str(sysconfig.get_config_var("LIBDIR"))
    return f"{libdir}:{ld_library_path}" if ld_library_path else libdir


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


class ZooServer:
    """The zoo on a Triton server started by this process; use as a context manager.

    Ports 0 mean "any free port"; the URLs are known once start() returns. Triton's log and
    workspace live in a private temporary directory removed by stop().
    """

    def __init__(
        self,
        data: ZooData,
        *,
        grpc_port: int = 0,
        http_port: int = 0,
        host: str = "127.0.0.1",
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        decoupled: bool = False,
    ) -> None:
        self.data = data
        self.host = host
        self.max_batch_size = max_batch_size
        self.decoupled = decoupled
        self.grpc_port = grpc_port
        self.http_port = http_port
        self._triton: Any = None
        self._workdir: Path | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return self.data.models

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def __enter__(self) -> ZooServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ZooServer:
        """Start Triton and return once every model is loaded and ready."""
        if self._triton is not None:
            raise ZooError("zoo server already started")
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

        self.grpc_port = self.grpc_port or _free_port(self.host)
        self.http_port = self.http_port or _free_port(self.host, taken=(self.grpc_port,))
        _require_free(self.host, self.grpc_port, "gRPC")
        _require_free(self.host, self.http_port, "HTTP")
        self._workdir = Path(tempfile.mkdtemp(prefix="messplus-zoo-"))
        log_path = self._workdir / "tritonserver.log"
        config = TritonConfig(
            grpc_address=self.host,
            grpc_port=self.grpc_port,
            http_address=self.host,
            http_port=self.http_port,
            allow_metrics=False,
            exit_timeout_secs=EXIT_TIMEOUT_S,
            log_file=log_path,
        )
        book = ZooBook(self.data)
        saved = os.environ.get("LD_LIBRARY_PATH")
        try:
            self._triton = Triton(
                config=config,
                workspace=self._workdir / "workspace",
                # Local use: no access token on statistics/repository/trace endpoints.
                security_config=TritonSecurityConfig(restricted_endpoints=[]),
            )
            for index, name in enumerate(self.data.models):
                self._triton.bind(
                    model_name=name,
                    infer_func=(_StreamingZooModel if self.decoupled else _ZooModel)(book, index),
                    inputs=[
                        Tensor(name="text_input", dtype=np.bytes_, shape=(1,)),
                        Tensor(name="max_tokens", dtype=np.int32, shape=(1,), optional=True),
                        # The vLLM backend's optional inputs (see the module docstring).
                        Tensor(
                            name="sampling_parameters",
                            dtype=np.bytes_,
                            shape=(1,),
                            optional=True,
                        ),
                        *(
                            Tensor(name=flag, dtype=np.bool_, shape=(1,), optional=True)
                            for flag in _VLLM_FLAGS
                        ),
                    ],
                    outputs=[
                        Tensor(name="text_output", dtype=np.bytes_, shape=(-1,)),
                        Tensor(name="would_satisfy", dtype=np.bool_, shape=(1,)),
                        Tensor(name="cost", dtype=np.float64, shape=(1,)),
                        Tensor(name="tokens", dtype=np.int32, shape=(1,)),
                        Tensor(name="finish_reason", dtype=np.bytes_, shape=(1,)),
                        Tensor(name="num_input_tokens", dtype=np.uint32, shape=(1,)),
                        Tensor(name="num_output_tokens", dtype=np.uint32, shape=(1,)),
                    ],
                    config=(
                        ModelConfig(batching=False, decoupled=True)
                        if self.decoupled
                        else ModelConfig(
                            max_batch_size=self.max_batch_size, batcher=DynamicBatcher()
                        )
                    ),
                    strict=True,
                )
            # tritonserver copies this process's environment when it is spawned by run().
            os.environ["LD_LIBRARY_PATH"] = _with_libdir_first(saved)
            self._triton.run()
        except BaseException as exc:
            tail = _log_tail(log_path)
            self.stop()
            if isinstance(exc, Exception):
                raise ZooError(f"zoo server did not start: {exc}\n{tail}") from exc
            raise
        finally:
            if saved is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = saved
        return self

    def is_alive(self) -> bool:
        return self._triton is not None and bool(self._triton.is_alive())

    def stop(self) -> None:
        """Stop Triton (close your clients first) and remove the working directory."""
        triton, self._triton = self._triton, None
        if triton is not None:
            triton.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(
    data: ZooData,
    *,
    grpc_port: int,
    http_port: int,
    host: str = "127.0.0.1",
    on_ready: Callable[[ZooServer], None] | None = None,
    decoupled: bool = False,
) -> int:
    """Serve the zoo in the foreground until SIGINT or SIGTERM; must run in the main thread.

    Triton stops cleanly only through KeyboardInterrupt, and a background process ignores
    SIGINT, so both signals raise it here. Returns 0 after a signal, 1 if Triton died.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in signals}
    server = ZooServer(
        data, grpc_port=grpc_port, http_port=http_port, host=host, decoupled=decoupled
    )
    try:
        server.start()
        if on_ready is not None:
            on_ready(server)
        while server.is_alive():
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in signals:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ZooProcess:
    """A zoo running in a child process (its own session), as returned by start_zoo_process."""

    def __init__(
        self, process: subprocess.Popen[bytes], workdir: Path, grpc_url: str, http_url: str
    ):
        self.process = process
        self.workdir = workdir
        self.grpc_url = grpc_url
        self.http_url = http_url
        self.models: tuple[str, ...] = ()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "zoo.log"

    def __enter__(self) -> ZooProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the child's ready file, then confirm every model over gRPC."""
        deadline = time.monotonic() + timeout_s
        ready_file = self.workdir / "ready.json"
        while not ready_file.exists():
            if not self.is_alive():
                raise ZooError(
                    f"zoo process exited with status {self.process.returncode} before it was "
                    f"ready:\n{_log_tail(self.log_path)}"
                )
            if time.monotonic() >= deadline:
                raise ZooError(f"zoo not ready after {timeout_s:g} s:\n{_log_tail(self.log_path)}")
            time.sleep(0.1)
        self.models = tuple(json.loads(ready_file.read_text(encoding="utf-8"))["models"])
        try:
            wait_until_ready(self.grpc_url, self.models, max(deadline - time.monotonic(), 1.0))
        except InferenceError as exc:
            raise ZooError(str(exc)) from exc

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the child and wait; on timeout kill its whole session. Either way no
        process, shared-memory segment or working directory of this zoo is left.
        """
        if self.is_alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill_session()
        # Normally empty by now; catches Triton helpers orphaned by a crashed child.
        if _session_pids(self.pid):
            self._kill_session()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_session(self) -> None:
        segments = {seg for pid in _session_pids(self.pid) for seg in _shm_segments(pid)}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while _session_pids(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process.wait()
        segments.update(Path("/dev/shm").glob(f"pytrtion{self.pid}-*"))  # python backend regions
        for segment in segments:
            segment.unlink(missing_ok=True)


def _proc_entries() -> Iterator[Path]:
    return (entry for entry in Path("/proc").iterdir() if entry.name.isdigit())


def _session_pids(session_id: int) -> list[int]:
    """Processes still in the child's session (Linux /proc): the child, tritonserver, stubs."""
    pids = []
    for entry in _proc_entries():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == session_id:  # state, ..., field 6 = session
            pids.append(int(entry.name))
    return pids


def _shm_segments(pid: int) -> set[Path]:
    """The /dev/shm files a process has mapped, to remove them if it must be killed."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    return {Path(line.split(maxsplit=5)[5]) for line in maps.splitlines() if " /dev/shm/" in line}


def start_zoo_process(
    data_path: str | Path | None = None,
    *,
    grpc_port: int = 0,
    http_port: int = 0,
    host: str = "127.0.0.1",
    ready_timeout_s: float = 120.0,
    decoupled: bool = False,
) -> ZooProcess:
    """Start the zoo in a child process and return once every model is ready.

    Ports 0 are replaced by free ports. `decoupled` serves every model as the vLLM backend
    does (decoupled, unbatched), for tests of that path. The child keeps its workspace,
    temporary files and log under one private directory; stop() (or leaving the `with`
    block) removes it.
    """
    grpc_port = grpc_port or _free_port(host)
    http_port = http_port or _free_port(host, taken=(grpc_port,))
    workdir = Path(tempfile.mkdtemp(prefix="messplus-zoo-process-"))
    project_root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env.update(
        PYTRITON_HOME=str(workdir / "pytriton"),
        TMPDIR=str(workdir),
        LD_LIBRARY_PATH=_with_libdir_first(env.get("LD_LIBRARY_PATH")),
        PYTHONPATH=os.pathsep.join(filter(None, [str(project_root), env.get("PYTHONPATH")])),
    )
    command = [
        sys.executable, "-m", "workers.zoo_server",
        "--host", host,
        "--grpc-port", str(grpc_port),
        "--http-port", str(http_port),
        "--ready-file", str(workdir / "ready.json"),
    ]  # fmt: skip
    if data_path is not None:
        command += ["--data", str(Path(data_path).resolve())]
    if decoupled:
        command.append("--decoupled")
    with (workdir / "zoo.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    zoo = ZooProcess(process, workdir, f"grpc://{host}:{grpc_port}", f"http://{host}:{http_port}")
    try:
        zoo.wait_ready(ready_timeout_s)
    except BaseException:
        zoo.stop()
        raise
    return zoo


def _child_main(argv: Sequence[str]) -> int:
    """Entry point of the start_zoo_process child: serve, announce readiness in a file."""
    parser = argparse.ArgumentParser(prog="python -m workers.zoo_server")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--decoupled", action="store_true")
    args = parser.parse_args(argv)

    def announce(server: ZooServer) -> None:
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps({"models": list(server.models)}), encoding="utf-8")
        partial.replace(args.ready_file)  # the parent never reads a half-written file

    return serve(
        load_zoo(args.data),
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        host=args.host,
        on_ready=announce,
        decoupled=args.decoupled,
    )


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
