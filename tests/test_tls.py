"""TLS and mTLS end to end, with certificates the test makes: a gateway
given a certificate serves only TLS; with a client CA it also requires a
client certificate signed by it. The SDK and the CLI connect with a CA file
(and a client certificate); a client without what the gateway requires is
refused at the handshake."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pandas as pd
import pytest

from fityard import Client, Unavailable
from services.embedded import EmbeddedStack
from tests.support.certs import make_certs

pytestmark = pytest.mark.stack

FRAME = pd.DataFrame({"col_0": [0.0, 1.0, 2.0, 3.0] * 10, "y": [0, 1] * 20})


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def _tls_env(certs, mutual: bool) -> dict[str, str]:
    env = {
        "FITYARD_TLS_CERT_FILE": str(certs.server.cert),
        "FITYARD_TLS_KEY_FILE": str(certs.server.key),
    }
    if mutual:
        env["FITYARD_TLS_CLIENT_CA_FILE"] = str(certs.ca)
    return env


def _trusting(certs, client_cert: bool) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=certs.ca.read_bytes(),
        private_key=certs.client.key.read_bytes() if client_cert else None,
        certificate_chain=certs.client.cert.read_bytes() if client_cert else None,
    )


@pytest.fixture(scope="module")
def mtls_stack(tmp_path_factory, certs):
    with EmbeddedStack(
        tmp_path_factory.mktemp("mtls"),
        trainers=1,
        env=_tls_env(certs, mutual=True),
        client_tls=_trusting(certs, client_cert=True),
    ) as running:
        yield running


def test_with_mtls_a_client_with_its_certificate_runs_the_workflow(mtls_stack, certs):
    with Client(
        mtls_stack.address,
        ca_file=str(certs.ca),
        cert_file=str(certs.client.cert),
        key_file=str(certs.client.key),
    ) as client:
        dataset = client.upload(FRAME)
        fit = client.fit(dataset, max_iter=5).wait(timeout=120)
        assert fit.state == "SUCCEEDED"


@pytest.mark.parametrize(
    "connect",
    [
        pytest.param({}, id="plaintext"),
        pytest.param({"tls": True}, id="system CAs"),
        pytest.param({"ca": True}, id="no client certificate"),
        pytest.param({"other_ca": True, "cert": True}, id="another CA"),
    ],
)
def test_with_mtls_a_client_without_what_it_requires_is_refused(mtls_stack, certs, connect):
    kwargs = {}
    if connect.get("tls"):
        kwargs["tls"] = True
    if connect.get("ca"):
        kwargs["ca_file"] = str(certs.ca)
    if connect.get("other_ca"):
        kwargs["ca_file"] = str(certs.other_ca)
    if connect.get("cert"):
        kwargs |= {"cert_file": str(certs.client.cert), "key_file": str(certs.client.key)}
    with Client(mtls_stack.address, timeout=5, **kwargs) as client:
        with pytest.raises(Unavailable):
            client.jobs()


def test_tls_without_client_certificates_and_the_cli(tmp_path, certs):
    with EmbeddedStack(
        tmp_path / "tls",
        trainers=1,
        env=_tls_env(certs, mutual=False),
        client_tls=_trusting(certs, client_cert=False),
    ) as stack:
        with Client(stack.address, ca_file=str(certs.ca)) as client:
            dataset = client.upload(FRAME)
        env = {**os.environ, "FITYARD_ADDRESS": stack.address}
        listed = subprocess.run(
            [sys.executable, "-m", "fityard", "--ca-file", str(certs.ca), "datasets"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert dataset.id in listed.stdout
        plain = subprocess.run(
            [sys.executable, "-m", "fityard", "datasets"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plain.returncode == 1
