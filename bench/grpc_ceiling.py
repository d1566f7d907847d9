"""The transport's ceiling: a raw grpcio stream of a file's bytes between two
processes on loopback, with the message size fityard uses, and nothing else
(no protobuf message around the bytes, no store, no hashing).

The server is a `grpc.aio` server like the gateway, in a process of its own;
the client a blocking channel like the SDK's. `Put` streams the file to the
server (which counts and drops the bytes), `Get` streams it back (the client
counts and drops them): an upload and a download without their ends' work.
A transfer through fityard is measured against the lower of this and the
store's own rate (bench/transfer.py).

The same for online predictions: `PredictEcho` serves
fityard.v1.PredictionService.Predict with a fixed answer shaped like a real
one (the request parsed, two classes, one row's label and probabilities),
in as many processes as the predictor pool has, each on a port of its own
like the predictors: what a unary call costs here with no model behind it.

    python -m bench.grpc_ceiling serve PORT          # the servers, as the benchmark
    python -m bench.grpc_ceiling predict-echo PORT   # starts them
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import grpc

from fityard.limits import MAX_MESSAGE_BYTES
from fityard.v1 import predictions_pb2, predictions_pb2_grpc
from services.embedded import free_port, pool_target

SERVICE = "ceiling.Bytes"
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def _same(b: bytes) -> bytes:
    return b


async def _put(chunks, context) -> bytes:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
    return str(total).encode()


async def _get(request: bytes, context):
    path, chunk_size = request.decode().rsplit("|", 1)
    with open(path, "rb") as f:
        while chunk := f.read(int(chunk_size)):
            yield chunk


async def _serve(port: int) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Put": grpc.stream_unary_rpc_method_handler(_put, _same, _same),
                    "Get": grpc.unary_stream_rpc_method_handler(_get, _same, _same),
                },
            )
        ]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class RawStream:
    """A ceiling server in a subprocess and a channel to it."""

    def __enter__(self) -> RawStream:
        port = free_port()
        self._server = subprocess.Popen(
            [sys.executable, "-m", "bench.grpc_ceiling", "serve", str(port)],
            cwd=Path(__file__).resolve().parents[1],
        )
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
        grpc.channel_ready_future(self._channel).result(timeout=30)
        self._put = self._channel.stream_unary(f"/{SERVICE}/Put", _same, _same)
        self._get = self._channel.unary_stream(f"/{SERVICE}/Get", _same, _same)
        return self

    def __exit__(self, *exc) -> None:
        self._channel.close()
        self._server.terminate()
        self._server.wait(10)

    def upload_seconds(self, path: Path, chunk_size: int) -> float:
        def chunks():
            with open(path, "rb") as f:
                while chunk := f.read(chunk_size):
                    yield chunk

        started = time.perf_counter()
        received = int(self._put(chunks()))
        seconds = time.perf_counter() - started
        _check(received, path)
        return seconds

    def download_seconds(self, path: Path, chunk_size: int) -> float:
        started = time.perf_counter()
        received = sum(len(c) for c in self._get(f"{path}|{chunk_size}".encode()))
        seconds = time.perf_counter() - started
        _check(received, path)
        return seconds


class _Echo(predictions_pb2_grpc.PredictionServiceServicer):
    def __init__(self):
        self.answer = predictions_pb2.PredictResponse(
            probabilities=[predictions_pb2.ClassProbabilities(values=[0.25, 0.75])]
        )
        for label in (0, 1):
            self.answer.classes.add().number_value = label
        self.answer.labels.add().number_value = 1

    async def Predict(self, request, context):
        return self.answer


async def _serve_predict_echo(port: int) -> None:
    server = grpc.aio.server(options=_OPTIONS)
    predictions_pb2_grpc.add_PredictionServiceServicer_to_server(_Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class PredictEcho:
    """`processes` echo servers of Predict, a port each like the predictors
    of an embedded stack; `address` names them all (a round_robin channel
    spreads calls over them) once they answer."""

    def __init__(self, processes: int):
        self.processes = processes

    def __enter__(self) -> PredictEcho:
        ports = []
        while len(ports) < self.processes:
            if (port := free_port()) not in ports:
                ports.append(port)
        addresses = [f"127.0.0.1:{port}" for port in ports]
        self.address = pool_target(addresses)
        self._servers = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.grpc_ceiling", "predict-echo", str(port)],
                cwd=Path(__file__).resolve().parents[1],
            )
            for port in ports
        ]
        for address in addresses:
            with grpc.insecure_channel(address) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.terminate()
        for server in self._servers:
            server.wait(10)


def _check(received: int, path: Path) -> None:
    if received != path.stat().st_size:
        raise RuntimeError(f"raw stream moved {received} bytes of {path}'s {path.stat().st_size}")


if __name__ == "__main__":
    servers = {"serve": _serve, "predict-echo": _serve_predict_echo}
    if sys.argv[1:2] == [] or sys.argv[1] not in servers:
        sys.exit(__doc__)
    asyncio.run(servers[sys.argv[1]](int(sys.argv[2])))
