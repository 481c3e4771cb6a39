"""Starts the local system for `make run` / `make demo`: stack, model, item vectors, worker, API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from pydantic import SecretStr

from harness.stack.procs import stop_all
from harness.stack.servers import LocalStack, StackError
from harness.stack.settings import StackSettings
from producers.items import embedding_records, publish, read_item_table
from producers.kafka import open_sender
from streams.api.auth import with_token
from streams.settings import Settings
from streams.stores.index import ItemIndex


def to_env(settings: Settings) -> dict[str, str]:
    """The RECALL_* environment that makes a child process build the same Settings."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"RECALL_{name.upper()}"] = str(value)
    return env


def metrics_urls(settings: Settings) -> dict[str, str]:
    """Where the worker and the API serve /metrics (the worker only when its port is set)."""
    urls = {"api": f"http://{settings.api_host}:{settings.api_port}/metrics"}
    if settings.worker_web_port:
        urls["worker"] = f"http://{settings.worker_web_host}:{settings.worker_web_port}/metrics"
    return urls


def model_dir_for(settings: Settings, data: str | None) -> str:
    """Where the model for a data source lives: the default dir, or one per dataset file."""
    return settings.model_dir if not data else f"{settings.model_dir}-{Path(data).stem}"


def ensure_model(model_dir: str, data: str | None, log: IO[str]) -> None:
    """Train and export a small model when `model_dir` holds none (never serve random weights)."""
    if (Path(model_dir) / "LATEST").is_file():
        print(f"model: using {model_dir} ({(Path(model_dir) / 'LATEST').read_text().strip()})")
        return
    source = ["--data", data] if data else ["--synthetic"]
    command = [sys.executable, "-m", "model.train", *source, "--epochs", "3", "--no-progress",
               "--out", model_dir]
    print(f"model: none in {model_dir}; training a small one: {' '.join(command[1:])}")
    subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float,
               alive: Callable[[], None] = lambda: None) -> None:
    """Poll `ready` until true; `alive` raises if a process it depends on died."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        alive()
        if time.monotonic() > deadline:
            raise StackError(f"{what} not ready after {timeout_s:.0f}s")
        time.sleep(0.2)


class System:
    """The local stack plus a trained model, its item vectors in Milvus, the worker and the API.

    With the API and RECALL_API_AUTH=token but no RECALL_API_TOKEN, a token is made here and
    given to the API in its environment (`token_generated`: show it to the user, once)."""

    def __init__(self, base: Settings, data: str | None = None, api: bool = True,
                 stack: StackSettings | None = None):
        base, self.token_generated = with_token(base) if api else (base, False)
        self.base = base.model_copy(update={"model_dir": model_dir_for(base, data)})
        self.data = data
        self.api = api
        where = stack or StackSettings()
        self.stack = LocalStack(self.base, stack_dir=where.stack_dir, kafka_port=where.kafka_port,
                                redis_port=where.redis_port, milvus_port=where.milvus_port)
        self.settings = self.stack.settings
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> System:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log_path(self, name: str) -> Path:
        return self.stack.log_path(name)

    def start(self) -> None:
        try:
            self.stack.start()
            print(f"stack: kafka {self.settings.kafka_bootstrap}, {self.settings.redis_url}, "
                  f"milvus {self.settings.milvus_uri} (logs in {self.stack.dir})")
            with open(self.log_path("train"), "w") as log:
                ensure_model(self.settings.model_dir, self.data, log)
            self.spawn("worker", "streams.worker")
            if self.api:
                self.spawn("api", "streams.api")
            self.stream_items()
            if self.api:
                url = f"http://{self.settings.api_host}:{self.settings.api_port}/health"
                wait_until("api", lambda: _answers(url), 120, self.check_alive)
            urls = {k: v for k, v in metrics_urls(self.settings).items() if self.api or k != "api"}
            print("metrics: " + ", ".join(f"{name} {url}" for name, url in urls.items()))
        except BaseException:
            self.stop()
            raise

    def spawn(self, name: str, module: str, extra_env: dict[str, str] | None = None) -> None:
        log = open(self.log_path(name), "wb")  # noqa: SIM115 - lives as long as the process
        env = to_env(self.settings)
        if module != "streams.api":  # only the API needs its token
            env.pop("RECALL_API_TOKEN", None)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module], stdout=log, stderr=subprocess.STDOUT,
            env={**_base_env(), **env, **(extra_env or {})},
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}; see {self.log_path(name)}")

    def stream_items(self) -> None:
        """Publish the model's item table to the items topic; wait until Milvus holds it all."""
        _, ids, vectors = read_item_table(self.settings.model_dir)
        with open_sender(self.settings.kafka_bootstrap, self.settings.items_topic,
                         settings=self.settings) as sender:
            publish(embedding_records(ids, vectors), sender, progress=True, total=len(ids))
        index = ItemIndex(self.settings.milvus_uri, self.settings.milvus_collection,
                          vectors.shape[1], self.settings.milvus_index,
                          token=self.settings.milvus_token,
                          build_params=self.settings.build_params())
        index.start()
        try:
            wait_until("item vectors in milvus", lambda: index.count() >= len(ids), 300,
                       self.check_alive)
        finally:
            index.close()
        print(f"items: {len(ids)} vectors streamed into Milvus")

    def stop_processes(self, report: Callable[[str, int], None] | None = None) -> None:
        """Stop the processes started here (SIGTERM, SIGKILL after 15 s); servers stay."""
        try:
            stop_all(self.procs, 15, report)
        finally:
            self.procs.clear()

    def stop(self, report: Callable[[str, int], None] | None = None) -> None:
        """Processes first, then the servers; `report(name, exit status)` for each."""
        try:
            self.stop_processes(report)
        finally:
            self.stack.stop(report)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _base_env() -> dict[str, str]:
    """The launcher's environment minus RECALL_* (children get the stack's values instead)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RECALL_")}
