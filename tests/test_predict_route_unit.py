"""The SDK follows a gateway to the predictor pool (fityard/client.py,
Client._predict), against stand-in PredictionService servers on loopback:
a gateway that names the pool in its answer's trailing metadata has the
client's next calls go to the pool; a named address that does not answer
costs the caller nothing (the call is answered through the gateway) and is
not tried again; `follow_predict_route=False` and a `predict_address` keep
their own way. The real gateway's header and `fityard up`'s pool are
checked on a stack in test_online_predict.py."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from fityard import Client
from fityard._predictions import ROUTE_HEADER
from fityard.v1 import predictions_pb2, predictions_pb2_grpc
from services.embedded.ports import free_port


class _Predictions(predictions_pb2_grpc.PredictionServiceServicer):
    """Answers every Predict with one label (its own), naming `route`."""

    def __init__(self, label: float, route: str = ""):
        self.label, self.route, self.calls = label, route, 0

    def Predict(self, request, context):
        self.calls += 1
        if self.route:
            context.set_trailing_metadata(((ROUTE_HEADER, self.route),))
        response = predictions_pb2.PredictResponse()
        response.classes.add().number_value = self.label
        response.labels.add().number_value = self.label
        response.probabilities.add().values.append(1.0)
        return response


@pytest.fixture
def serve():
    servers = []

    def start(servicer) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(2))
        predictions_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


def _labels(client: Client, calls: int) -> list:
    return [client.predict_rows("job_1", [{"a": 1.0}])[0].label for _ in range(calls)]


def test_a_client_goes_where_the_gateway_says_the_pool_is(serve):
    pool = _Predictions(label=2.0)
    gateway = _Predictions(label=1.0, route=serve(pool))
    with Client(serve(gateway)) as client:
        assert _labels(client, 5) == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert (gateway.calls, pool.calls) == (1, 4)


def test_a_named_address_that_does_not_answer_leaves_the_calls_on_the_gateway(serve):
    gateway = _Predictions(label=1.0, route=f"127.0.0.1:{free_port()}")  # nothing listens
    with Client(serve(gateway)) as client:
        assert _labels(client, 5) == [1.0] * 5
    assert gateway.calls == 5  # each answered there, the dead address tried once


def test_follow_predict_route_false_and_a_predict_address_keep_their_own_way(serve):
    pool, elsewhere = _Predictions(label=2.0), _Predictions(label=3.0)
    gateway = _Predictions(label=1.0, route=serve(pool))
    with Client(serve(gateway), follow_predict_route=False) as stays:
        assert _labels(stays, 3) == [1.0] * 3
    with Client(serve(gateway), predict_address=serve(elsewhere)) as told:
        assert _labels(told, 3) == [3.0] * 3
    assert (gateway.calls, pool.calls, elsewhere.calls) == (3, 0, 3)
