"""moto's S3 server as a real subprocess: the S3 endpoint the tests and the
benchmarks use in place of MinIO (no MinIO binary can be installed on the
test machines).

A real server, not moto's in-process mock, so the tests and benchmarks go
through the same HTTP client, signing and multipart code as production.
Shared by tests/ (tests/support/s3server.py adds what only tests inspect)
and bench/; neither imports the other.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from services.common.config import SCHEMA, StorageConfig
from services.embedded import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
PART_SIZE = 5 * 1024 * 1024  # S3's minimum: multipart tests stay small and fast


def moto_server_binary() -> Path:
    """The `moto_server` console script of this interpreter's environment."""
    path = Path(sys.executable).parent / "moto_server"
    if not path.exists():
        raise RuntimeError(f"{path} not found: install the dev extras (moto[server])")
    return path


class MotoS3Server:
    """`with MotoS3Server() as server:` gives an S3 API at `server.endpoint`."""

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        """host:port, the form StorageConfig.endpoint (and minio) take."""
        if not self.port:
            raise RuntimeError("MotoS3Server is not started")
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, attempts: int = 3) -> MotoS3Server:
        """Start the server and return once it answers HTTP. A free port can
        be taken by another process before moto binds it, so a server that
        exits at start is retried on a new port."""
        for _ in range(attempts):
            self._spawn()
            if self._wait_until_answering(timeout):
                return self
            if self._proc.poll() is None:
                break  # running but silent: another port would not help
        output, endpoint = self._output(), self.endpoint
        self.stop()
        raise RuntimeError(f"moto_server did not start on {endpoint}:\n{output}")

    def _spawn(self) -> None:
        self.stop()
        # Released before moto binds it: another process may take it in
        # between, which start() survives by trying another.
        self.port = free_port()
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [str(moto_server_binary()), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_until_answering(self, timeout: float) -> bool:
        """True once the server answers any HTTP; False if it exited or the
        timeout passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # an error status is still an answer
            except OSError:
                if self._proc.poll() is not None:
                    return False
                time.sleep(0.05)
        return False

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the server: terminate, then kill if it does not exit soon."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def storage_config_for(endpoint: str, bucket: str) -> StorageConfig:
    """An S3 StorageConfig for the moto server at `endpoint` (host:port)."""
    return StorageConfig(
        backend="s3",
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=bucket,
        secure=False,
        part_size=PART_SIZE,
    )


def s3_env(config: StorageConfig) -> dict[str, str]:
    """The FITYARD_S3_* settings that point a stack's services at `config`."""
    return SCHEMA.to_env(
        {
            "storage.endpoint": config.endpoint,
            "storage.access_key": config.access_key,
            "storage.secret_key": config.secret_key,
            "storage.bucket": config.bucket,
            "storage.secure": False,
            "storage.part_size": config.part_size,
        }
    )
