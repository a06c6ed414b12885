"""Ingress building blocks without a network: outbox lanes, the incoming queue, the
proposal inbox, reply-topic rules, plausibility and the log limiter."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt
import pytest

from gateway.core.model import Bounds
from gateway.logsafe import MAX_KINDS, LogLimiter
from gateway.mqtt.ingress import (
    IngressQueue,
    ProposalInbox,
    ProposalRules,
    read_proposal,
    superseded_reply,
)
from gateway.mqtt.outbox import Lane, Outbox, Outgoing
from gateway.proposals import (
    MAX_DEPTH,
    ProposalError,
    ProposalRequest,
    check_plausible,
    parse_proposal,
    response_topic_problem,
)

BASE = "ev-gateway"
TOPIC = f"{BASE}/pools/default/propose_power"
DEFAULT_REPLY = f"{TOPIC}/response"
RULES = ProposalRules(max_expires_in=86400.0, rated_power=22080.0)


def message(payload: bytes, retain: bool = False) -> aiomqtt.Message:
    return aiomqtt.Message(TOPIC, payload, qos=1, retain=retain, mid=1, properties=None)


# ------------------------------------------------------------------ outbox


def test_outbox_serves_state_then_telemetry_then_replies_then_bulk() -> None:
    outbox = Outbox(10)
    outbox.put(Outgoing("r1", "x", 1, False))
    outbox.put(Outgoing("b1", "x", 1, False), Lane.BULK)
    outbox.put(Outgoing("t1", "x", 0, False))
    outbox.put(Outgoing("s1", "x", 1, True))
    outbox.put(Outgoing("t2", "x", 0, False))
    order = []
    while (item := outbox.get_nowait()) is not None:
        order.append(item.topic)
    assert order == ["s1", "t1", "t2", "r1", "b1"]
    assert len(outbox) == 0


def test_outbox_keeps_the_newest_value_of_a_retained_topic_in_its_place() -> None:
    outbox = Outbox(10)
    outbox.put(Outgoing("a", "1", 1, True))
    outbox.put(Outgoing("b", "1", 1, True))
    assert outbox.put(Outgoing("a", "2", 1, True))
    first, second = outbox.get_nowait(), outbox.get_nowait()
    assert first is not None and second is not None
    assert (first.topic, first.payload, second.topic) == ("a", "2", "b")
    assert outbox.dropped[Lane.STATE] == 0


def test_a_full_lane_drops_its_oldest_and_counts_it() -> None:
    outbox = Outbox(3)
    results = [outbox.put(Outgoing(f"r{i}", "x", 1, False)) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert outbox.dropped[Lane.REPLY] == 2
    topics = [m.topic for m in iter(outbox.get_nowait, None)]
    assert topics == ["r2", "r3", "r4"]
    # bulk is a tenth of the size (at least 1)
    for i in range(3):
        outbox.put(Outgoing(f"b{i}", "x", 1, False), Lane.BULK)
    assert (len(outbox), outbox.dropped[Lane.BULK]) == (1, 2)


async def test_outbox_get_waits_for_a_message() -> None:
    outbox = Outbox(3)
    waiter = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    outbox.put(Outgoing("t", "x", 0, False))
    assert (await asyncio.wait_for(waiter, 1)).topic == "t"


# ------------------------------------------------------------------ incoming queue


def test_ingress_queue_drops_the_oldest_when_full_and_batches_the_rest() -> None:
    queue = IngressQueue(3)
    for i in range(5):
        queue.put_nowait(message(str(i).encode()))
    assert (queue.received, queue.dropped, queue.qsize()) == (5, 2, 3)
    first = queue.get_nowait()
    batch = queue.batch(first)
    assert [m.payload for m in batch] == [b"2", b"3", b"4"]
    assert queue.empty()


# ------------------------------------------------------------------ inbox


def test_inbox_keeps_the_newest_per_source_and_counts_every_message() -> None:
    inbox = ProposalInbox()
    reads = []
    for n, source in enumerate(["a", "b", "a", "a", "b"]):
        read = read_proposal(
            message(f'{{"source": "{source}", "power": {n}, "transaction": {n}}}'.encode()),
            BASE,
            DEFAULT_REPLY,
            RULES,
        )
        assert read is not None
        reads.append(inbox.offer(read))
    superseded = [r.request.transaction for r in reads if r is not None and r.request]
    assert superseded == [0, 2, 1]
    applied = inbox.take()
    assert [(r.request.source, r.request.power) for r in applied if r.request] == [
        ("a", 3.0),
        ("b", 4.0),
    ]
    assert (inbox.counts.applied, inbox.counts.superseded, inbox.counts.total) == (2, 3, 5)
    assert inbox.take() == []


def test_superseded_reply_names_the_reason_and_echoes_the_transaction() -> None:
    request = ProposalRequest("hems", 0, 1.0, Bounds(None, None), "t-1")
    body = superseded_reply(request)
    assert body["status"] == "superseded" and body["transaction"] == "t-1"
    assert "newer proposal" in str(body["error"])


def test_an_empty_payload_is_ignored_even_when_retained() -> None:
    assert read_proposal(message(b""), BASE, DEFAULT_REPLY, RULES) is None
    assert read_proposal(message(b"", retain=True), BASE, DEFAULT_REPLY, RULES) is None


def test_a_retained_proposal_is_refused() -> None:
    read = read_proposal(message(b'{"power": 1}', retain=True), BASE, DEFAULT_REPLY, RULES)
    assert read is not None and read.error is not None and "retained" in str(read.error)


# ------------------------------------------------------------------ reply topics


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("replies/#", "wildcard"),
        ("replies/+/x", "wildcard"),
        ("$SYS/broker", "starts with $"),
        (f"{BASE}/bridge/state", "under the gateway's base topic"),
        (f"{BASE}/pools/default/power", "under the gateway's base topic"),
        (f"{BASE}/pools/default/propose_power", "under the gateway's base topic"),
        (f"{BASE}/pools/a/b/propose_power/response", "under the gateway's base topic"),
        (BASE, "under the gateway's base topic"),
        ("", "empty"),
        ("x" * 70000, "longer than MQTT allows"),
    ],
)
def test_response_topics_the_gateway_will_not_use(topic: str, problem: str) -> None:
    found = response_topic_problem(topic, BASE)
    assert found is not None and problem in found
    assert len(found) < 300


@pytest.mark.parametrize(
    "topic",
    ["client-7/replies", f"{BASE}/pools/garage/propose_power/response", f"{BASE}-other/x"],
)
def test_response_topics_the_gateway_uses(topic: str) -> None:
    assert response_topic_problem(topic, BASE) is None


# ------------------------------------------------------------------ plausibility, limits


def test_a_power_above_the_rated_maximum_is_refused_naming_it() -> None:
    request = parse_proposal(b"1796169287237")
    with pytest.raises(ProposalError, match="above the pool's rated maximum of 22080 W"):
        check_plausible(request, 22080.0)
    lower = parse_proposal(b'{"bounds": {"lower": 30000}}')
    with pytest.raises(ProposalError, match=r"bounds\.lower 30000 W"):
        check_plausible(lower, 22080.0)
    check_plausible(parse_proposal(b'{"power": 22080, "bounds": {"upper": 1e9}}'), 22080.0)


@pytest.mark.parametrize(
    ("payload", "message_part"),
    [
        (b"[" * 1000 + b"]" * 1000, f"deeper than {MAX_DEPTH} levels"),
        (b'{"power": ' + b"[" * 100_000, "limit is 65536 bytes"),
        (b'{"a":' * 20 + b"1" + b"}" * 20, f"deeper than {MAX_DEPTH} levels"),
        (b'{"power": ' + b"9" * 309 + b"}", "power must be a finite number"),
        (b'{"power": 1, "transaction": ' + b"9" * 309 + b"}", "transaction must be"),
        (b'{"power": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"power": 1, "transaction": "' + b"t" * 129 + b'"}', "limit is 128"),
    ],
)
def test_hostile_payloads_get_an_error_not_an_exception(payload: bytes, message_part: str) -> None:
    with pytest.raises(ProposalError, match=message_part) as info:
        parse_proposal(payload)
    assert len(str(info.value)) < 400


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"power": 1, "transaction": "' + "[" * 100 + '"}'
    assert parse_proposal(text.encode()).transaction == "[" * 100


# ------------------------------------------------------------------ log limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_log_limiter_writes_one_line_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limiter = LogLimiter(logging.getLogger("test.logsafe"), interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.logsafe"):
        assert limiter.warning("k", "bad thing %d", 1)
        for i in range(500):
            clock.now += 0.01
            assert not limiter.warning("k", "bad thing %d", i)
        assert limiter.info("other", "another kind")
        clock.now = 10.0
        assert limiter.warning("k", "bad thing %d", 501)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "bad thing 1",
        "another kind",
        "bad thing 501 (and 500 more like it in 10 s)",
    ]
    assert limiter.suppressed == 500


def test_log_limiter_flush_reports_a_burst_that_stopped(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = LogLimiter(logging.getLogger("test.logsafe"), interval=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.logsafe"):
        limiter.warning("k", "refused: %s", "a")
        limiter.warning("k", "refused: %s", "b")
        assert limiter.flush() == 0  # interval not over yet
        clock.now = 6.0
        assert limiter.flush() == 1
        assert limiter.flush() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "refused: a",
        "refused: b (repeated 1 times in 6 s)",
    ]


def test_log_limiter_memory_is_bounded() -> None:
    limiter = LogLimiter(logging.getLogger("test.logsafe"), clock=FakeClock())
    for i in range(MAX_KINDS * 2):
        limiter.info(i, "x")
    assert len(limiter._kinds) == MAX_KINDS
