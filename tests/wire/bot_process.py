"""One bot process under the wire harness: started, killed (`kill -9`), stopped (Ctrl-C), its log.

The harness runs one of these by default; a test of several processes (shards split between
them, one PostgreSQL) adds more with `WireHarness.add_bot()`. Each has its own settings on top of
the harness's, and its own log file per launch (`<name>-<launch>.log` in the scratch directory).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

BOT_MODULE = "tests.wire.run_bot"
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 60
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # discord.py colours its log even into a file in a container


class BotProcess:
    """`python -m tests.wire.run_bot` with an environment of the harness's making."""

    def __init__(self, name: str, workdir: Path, settings: dict[str, str]) -> None:
        self.name = name
        self.workdir = workdir
        self.settings = settings  # on top of the harness's own
        self.process: asyncio.subprocess.Process | None = None
        self.launches = 0
        self.launched_at = 0.0
        self.killed = False  # ended on purpose: a test waiting on the others is not failed by it

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def exited_unexpectedly(self) -> bool:
        return self.process is not None and self.process.returncode is not None and not self.killed

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.launches}.log"

    async def start(self, environment: dict[str, str], module: str = BOT_MODULE) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.launches += 1
        self.launched_at = time.monotonic()
        self.killed = False
        log_file = await asyncio.to_thread(self.log_path.open, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                *module.split(" "),
                cwd=self.workdir,
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log_file.close()
        log.info("Started %s (launch %d, pid %d)", self.name, self.launches, self.process.pid)

    async def kill(self) -> None:
        """SIGKILL, as `kill -9` does: no clean-up of any kind."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.killed = True
        process.send_signal(signal.SIGKILL)
        await process.wait()
        log.info("Killed %s (pid %d)", self.name, process.pid)

    async def stop(self) -> None:
        """Stop as Ctrl-C does; SIGKILL if it does not end within a grace period."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.killed = True
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("%s did not stop within %ss; killing it", self.name, STOP_GRACE_SECONDS)
            await self.kill()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no bot log)"
        return "\n".join(ANSI_COLOUR.sub("", line) for line in text.splitlines()[-lines:])
