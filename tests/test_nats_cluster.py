"""FITYARD_NATS_REPLICAS on a real 3-node JetStream cluster (three
nats-server processes on loopback, as the Helm chart runs them): fityard's
streams and buckets are created with three copies, and losing one node loses
no record and stops no queue."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import replace

import nats
import pytest

from services.common import bus
from services.common.config import Config
from services.embedded import free_port, nats_server_binary

pytestmark = pytest.mark.stack

NODES = 3


@pytest.fixture
def cluster(tmp_path):
    """Three clustered nats-servers with JetStream; yields (urls, processes)."""
    ports = [free_port() for _ in range(NODES)]
    routes = [free_port() for _ in range(NODES)]
    route_urls = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
    procs = []
    for i in range(NODES):
        procs.append(
            subprocess.Popen(
                [
                    nats_server_binary(),
                    "-js",
                    "-sd",
                    str(tmp_path / f"n{i}"),
                    "-n",
                    f"n{i}",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(ports[i]),
                    "--cluster_name",
                    "fityard",
                    "--cluster",
                    f"nats://127.0.0.1:{routes[i]}",
                    "--routes",
                    route_urls,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield [f"nats://127.0.0.1:{p}" for p in ports], procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


async def _topology_when_ready(js, config: Config) -> None:
    """ensure_topology, once the cluster has elected its JetStream leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await bus.ensure_topology(js, config)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def test_streams_and_buckets_have_the_configured_copies_and_survive_a_node(cluster):
    urls, procs = cluster
    config = replace(Config.from_env(), nats_replicas=3)

    async def scenario():
        nc = await nats.connect(servers=urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=10)
        await _topology_when_ready(js, config)
        streams = [bus.JOBS_STREAM, bus.EVENTS_STREAM]
        streams += [f"KV_{b}" for b in (bus.JOBS_BUCKET, bus.DATASETS_BUCKET, bus.REQUESTS_BUCKET)]
        replicas = {name: (await js.stream_info(name)).config.num_replicas for name in streams}
        assert replicas == dict.fromkeys(streams, 3)

        jobs = await bus.jobs_bucket(js)
        await jobs.put("default.job_1", b"a record")
        # One node goes (not necessarily the one we are connected to).
        procs[0].kill()
        procs[0].wait()
        deadline = time.monotonic() + 30
        while True:
            try:
                entry = await jobs.get("default.job_1")
                await jobs.put("default.job_2", b"written after the loss")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        assert entry.value == b"a record"
        assert (await jobs.get("default.job_2")).value == b"written after the loss"
        await nc.close()

    asyncio.run(scenario())


def test_one_copy_by_default(cluster):
    """Without FITYARD_NATS_REPLICAS the embedded single-server default."""
    urls, _ = cluster

    async def scenario():
        nc = await nats.connect(servers=urls)
        js = nc.jetstream(timeout=10)
        await _topology_when_ready(js, Config.from_env())
        assert (await js.stream_info(bus.JOBS_STREAM)).config.num_replicas == 1
        await nc.close()

    asyncio.run(scenario())
