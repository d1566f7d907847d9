"""moto's S3 server as a real subprocess: the S3 endpoint the tests use in
place of MinIO (no MinIO binary can be installed on the test machines)."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from fityard.embedded import free_port
from services.common.config import StorageConfig

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


class MotoS3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "MotoS3Server":
        moto = Path(sys.executable).parent / "moto_server"
        self._proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.endpoint}/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # answering, even if with an error status
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError("moto_server exited at start")
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not answer on {self.endpoint}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> "MotoS3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def storage_config_for(endpoint: str, bucket: str) -> StorageConfig:
    return StorageConfig(
        backend="s3",
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=bucket,
        secure=False,
        part_size=5 * 1024 * 1024,
    )
