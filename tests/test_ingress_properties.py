"""Property tests: whatever bytes or JSON arrive, exactly one reply and no exception."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mqtt import payloads
from gateway.mqtt.ingress import ProposalRules, read_proposal
from gateway.proposals import ProposalError, error_reply, ok_reply, parse_proposal

BASE = "ev-gateway"
TOPIC = f"{BASE}/pools/default/propose_power"
RULES = ProposalRules(max_expires_in=3600.0, rated_power=22080.0)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**7), max_value=10**7)
    | st.sampled_from([10**308 * 10, -(10**309), 2**63, 2**1024, 1796169287237])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=10,
)
FIELDS = ["source", "priority", "power", "bounds", "transaction", "expires_in", "colour"]
proposal_like = st.dictionaries(
    st.sampled_from(FIELDS),
    json_values | st.fixed_dictionaries({}, optional={"lower": json_values, "upper": json_values}),
    max_size=7,
)


def one_reply(payload: bytes, retain: bool = False) -> dict[str, Any] | None:
    """The single reply the gateway would send for `payload` (None: ignored, no reply)."""
    message = aiomqtt.Message(TOPIC, payload, qos=1, retain=retain, mid=1, properties=None)
    read = read_proposal(message, BASE, f"{TOPIC}/response", RULES)
    if read is None:
        assert payload == b""
        return None
    assert (read.request is None) != (read.error is None)  # exactly one outcome
    assert read.reply.topic == f"{TOPIC}/response"
    if read.error is not None:
        assert "\n" not in str(read.error)  # one line
        body = error_reply(read.error.source, str(read.error), read.error.transaction)
    else:
        assert read.request is not None
        body = ok_reply(read.request.source, read.request.transaction)
    text = payloads.dumps(body)  # the reply itself always serialises
    assert len(text) < 2000
    parsed: dict[str, Any] = json.loads(text)
    return parsed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_get_exactly_one_reply(payload: bytes, retain: bool) -> None:
    reply = one_reply(payload, retain)
    assert (reply is None) == (payload == b"")
    if retain and reply is not None:
        assert reply["status"] == "error"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_gets_exactly_one_reply(value: Any) -> None:
    reply = one_reply(json.dumps(value).encode())
    assert reply is not None and reply["status"] in ("ok", "error")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(proposal_like)
def test_any_proposal_shaped_object_gets_exactly_one_reply(value: dict[str, Any]) -> None:
    payload = json.dumps(value).encode()
    reply = one_reply(payload)
    assert reply is not None
    try:
        request = parse_proposal(payload, max_expires_in=RULES.max_expires_in)
    except ProposalError:
        assert reply["status"] == "error"
        return
    # accepted: every number it carries is finite and within the rules
    if reply["status"] == "ok":
        assert request.power is None or 0 <= request.power <= RULES.rated_power


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from([b"[", b'{"a":', b'[{"b":']))
def test_any_nesting_depth_gets_exactly_one_reply(depth: int, opener: bytes) -> None:
    reply = one_reply(opener * depth + b"1")
    assert reply is not None and reply["status"] == "error"
