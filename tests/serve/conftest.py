"""A LiveServer with chosen network options, its asyncio loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smtpd_sim.serve.net import NetOptions
from smtpd_sim.serve.server import LiveServer


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve``'s defaults (./smtpd-sim-queue, ./maildirs) land in the test's own directory,
    never in the checkout, and no two tests share a queue directory."""
    monkeypatch.chdir(tmp_path)


class ServeThread:
    """``LiveServer.serve()`` on free loopback ports (port 0) in a thread; ``error`` holds
    what ``serve()`` raised, ``ports`` the bound port of each listener kind."""

    def __init__(self, *, net: NetOptions | None = None, starttls: bool = True, smtps: bool = False,
                 maildir: Path | None = None, **server_kw: Any) -> None:
        self.server = LiveServer(maildir=maildir, **server_kw)
        self.net = net
        self.starttls = starttls
        self.smtps = smtps
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, int] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return self.ports["plain"]

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        def ready(ports: dict[str, int]) -> None:
            self.ports = ports
            self._ready.set()

        try:
            self.loop.run_until_complete(self.server.serve(
                "127.0.0.1", 0, 0 if self.starttls else None,
                smtps_port=0 if self.smtps else None, net=self.net, on_ready=ready))
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            self.error = e
        finally:
            pending = asyncio.all_tasks(self.loop)
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.done.set()
            self._ready.set()

    def __enter__(self) -> ServeThread:
        self.thread.start()
        if not self._ready.wait(20) or not self.ports:
            raise RuntimeError(f"the server did not start listening: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
        if not self.done.is_set():
            self.loop.call_soon_threadsafe(stop)
        self.thread.join(10)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

    def call(self, fn: Any) -> Any:
        """Run ``fn`` in the server's thread with the simulation brought to now; wait."""
        done = threading.Event()
        box: list[Any] = []

        def go() -> None:
            try:
                self.server.event(lambda: box.append(fn()))
            finally:
                done.set()

        self.loop.call_soon_threadsafe(go)
        done.wait(10)
        return box[0] if box else None


@pytest.fixture
def serve_thread() -> Iterator[type[ServeThread]]:
    yield ServeThread
