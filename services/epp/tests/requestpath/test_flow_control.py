"""The request path with flow control as the admission (the `flowControl` gate, wired as
`EppService` wires it): requests wait for room, are routed over the pool as it is once admitted,
Explain never queues, and admitted sheddable requests are followed to their end."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from igw.common.envoy import BodyMode
from igw.common.errors import ServiceUnavailableError
from igw.common.extproc import ExtProcServicer, HttpRequest, StreamInfo
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView
from igw.epp.flowcontrol import EvictionConfig, InFlight
from igw.epp.requestpath.headers import OBJECTIVE, read_control_headers
from igw.epp.testing.builders import FakeClock, endpoint
from igw.epp.testing.flowcontrol import flow_controlled_director
from igw.epp.testing.requestpath import CHAT_BODY, CHAT_HEADERS, build_exchanges, run_request
from igw.epp.testing.waiting import wait_until

BUSY = endpoint("busy", address="10.0.0.1", waiting=9)  # over the queue threshold (5)


def destination(replies: list[ReplyView]) -> str:
    return replies[0].set_headers["x-gateway-destination-endpoint"]


async def test_a_request_waits_for_room_and_goes_where_the_pool_is_then() -> None:
    """Scale from zero: no endpoint when it arrives; routed to the one that appears."""
    director, controller, source = flow_controlled_director()
    controller.start()
    try:
        task = asyncio.create_task(run_request(director))
        await wait_until(lambda: controller.bands.length == 1)
        source.states = (endpoint("new", address="10.0.0.7"),)
        controller.wake()
        replies = await asyncio.wait_for(task, 10)
        assert destination(replies) == "10.0.0.7:8000"
    finally:
        await controller.stop()


async def test_a_request_waiting_past_its_ttl_is_refused_and_counted() -> None:
    clock = FakeClock()
    director, controller, _ = flow_controlled_director(
        [BUSY], flow_control="{defaultRequestTTL: 2s}", clock=clock
    )
    controller.start()
    try:
        task = asyncio.create_task(run_request(director))
        await wait_until(lambda: controller.bands.length == 1)
        clock.now += 2.0
        controller.wake()
        with pytest.raises(ServiceUnavailableError, match="request timed out in queue"):
            await asyncio.wait_for(task, 10)
        assert director.metrics.errors.labels("m", "m", "ServiceUnavailable").value == 1
    finally:
        await controller.stop()


async def test_explain_never_queues() -> None:
    director, controller, _ = flow_controlled_director([BUSY])
    control = read_control_headers(CHAT_HEADERS)
    facts = director.read(control, "/v1/chat/completions", CHAT_HEADERS, CHAT_BODY, dry_run=True)
    result = await asyncio.wait_for(
        director.schedule(facts.inference, [BUSY], explain=True, dry_run=True), 10
    )
    assert result.targets[0].endpoint.name == "busy"
    assert controller.bands.length == 0


async def test_an_admitted_sheddable_request_is_followed_to_its_end() -> None:
    director, controller, _ = flow_controlled_director([endpoint("free")], objectives={"batch": -1})
    in_flight = controller.in_flight = InFlight(EvictionConfig())
    controller.start()
    try:
        exchange = build_exchanges(director)(StreamInfo(span=None))
        headers = {**CHAT_HEADERS, OBJECTIVE: "batch"}
        request = HttpRequest(headers, CHAT_BODY, False, BodyMode.FULL_DUPLEX_STREAMED)
        await asyncio.wait_for(exchange.request(request), 10)
        signal = exchange.interruption()
        assert signal is not None
        assert not signal.done()
        assert len(in_flight) == 1
        exchange.close(True)  # the response ended: no longer evictable
        assert len(in_flight) == 0
        assert signal.cancelled()
    finally:
        await controller.stop()


async def test_a_stream_reset_while_queued_takes_the_request_out_at_once() -> None:
    """Through the real ext_proc servicer over gRPC: a cancelled call (what Envoy does when the
    client goes) cancels the stream's task, and with it the wait in the queue."""
    director, controller, _ = flow_controlled_director([BUSY])
    controller.start()
    server = grpc.aio.server()
    duplex = BodyMode.FULL_DUPLEX_STREAMED
    servicer = ExtProcServicer(build_exchanges(director), request_mode=duplex, response_mode=duplex)
    server.add_generic_rpc_handlers([servicer.rpc_handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        call = messages.ext_proc_call(channel)(timeout=10)
        await call.write(messages.request_headers(CHAT_HEADERS))
        await call.write(messages.request_body(CHAT_BODY, end_of_stream=True))
        await wait_until(lambda: controller.bands.length == 1)
        call.cancel()
        await wait_until(lambda: controller.bands.length == 0)
        cancelled = ("default-flow", "0", "EvictedContextCancelled", "pool", "m", "m")
        assert sum(controller.metrics.queue_duration.labels(*cancelled).counts) == 1
        assert (
            controller.metrics.queue_size.labels("default-flow", "0", "pool", "m", "m").value == 0
        )
    finally:
        await channel.close()
        await server.stop(None)
        await controller.stop()
