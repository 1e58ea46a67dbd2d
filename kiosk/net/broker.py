"""Run a private Mosquitto broker on a free loopback port (tests, demo, one-room clinic).

`MosquittoBroker` writes a mosquitto.conf into its own directory, starts the binary, and
waits until the port accepts connections. The configuration is either the default (one
plain listener on loopback, anonymous clients allowed, persistence in the directory) or
text the caller gives (TLS, ACLs). Caller text may use these placeholders, replaced
literally (not str.format, so braces elsewhere are safe):

    {port}  the chosen port        {host}  the listen address        {dir}  the broker directory

If the text has no `listener` line, `listener {port} {host}` is put first. Persistence in
`{dir}` and a log file `{dir}/mosquitto.log` are added unless the text sets them. Started as
root, Mosquitto would drop to the `mosquitto` user and lose access to the directory, so a
`user` line naming the current user is added unless the text has one.

`restart()` keeps the port and the persistence directory, so persistent sessions and
retained messages survive it; `kill()` is SIGKILL (no final persistence write).
"""
from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kiosk.errors import TransportError

log = logging.getLogger(__name__)

DEFAULT_CONF = """\
listener {port} {host}
allow_anonymous true
max_packet_size 1048576
set_tcp_nodelay true
"""


def find_mosquitto() -> str:
    """The mosquitto binary: on PATH, else /usr/sbin or /usr/local/sbin."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(p, os.X_OK):
            return p
    raise TransportError("mosquitto binary not found (install the mosquitto package)")


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _has_directive(text: str, name: str) -> bool:
    return any(line.split()[:1] == [name] for line in text.splitlines())


class MosquittoBroker:
    """A Mosquitto process on a loopback port, with its own config and persistence directory."""

    def __init__(self, conf: str | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 directory: Path | str | None = None, binary: str | None = None,
                 start_timeout_s: float = 15.0) -> None:
        self.host = host
        self.port = port or 0
        self._conf_template = conf if conf is not None else DEFAULT_CONF
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary or find_mosquitto()
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None

    # ------------------------------------------------------------------ config
    @property
    def conf_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    def render_conf(self) -> str:
        """The configuration text for the current port and directory."""
        text = (self._conf_template.replace("{port}", str(self.port)).replace("{host}", self.host)
                .replace("{dir}", str(self.directory)))
        head = []
        if not _has_directive(text, "listener") and not _has_directive(text, "port"):
            head.append(f"listener {self.port} {self.host}")
        if not _has_directive(text, "persistence"):
            head += ["persistence true", f"persistence_location {self.directory}/"]
        if not _has_directive(text, "log_dest"):
            head.append(f"log_dest file {self.log_path}")
        if os.geteuid() == 0 and not _has_directive(text, "user"):
            head.append(f"user {getpass.getuser()}")
        return "\n".join(head + [text]) + "\n"

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until its port accepts connections."""
        if self.running:
            return self
        fixed_port = bool(self.port)
        attempts = 1 if fixed_port else 5
        last = ""
        for _ in range(attempts):
            if not fixed_port:
                self.port = free_port(self.host)
            self.conf_path.write_text(self.render_conf())
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _port_open(self.host, self.port):
                    log.info("mosquitto started on %s:%d (pid %d)", self.host, self.port, self.proc.pid)
                    return self
                time.sleep(0.05)
            last = self._reap()
            if not fixed_port:
                self.port = 0
        raise TransportError(f"mosquitto did not start on {self.host}:{self.port or 'a free port'}"
                             + (f": {last}" if last else ""))

    def _reap(self) -> str:
        """Stop a broker that failed to start; return the end of its error output."""
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                _, e = self.proc.communicate(timeout=5)
                err = (e or b"").decode(errors="replace").strip()[-300:]
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        if not err and self.log_path.exists():
            err = self.log_path.read_text(errors="replace").strip()[-300:]
        return err

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM and wait (Mosquitto writes its persistence file on a clean exit)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL: the broker dies without writing anything (a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> MosquittoBroker:
        """Stop (if running) and start again on the same port with the same persistence."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the broker and remove its directory if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MosquittoBroker({self.host}:{self.port}, running={self.running})"
