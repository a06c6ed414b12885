"""Proposal payload validation: every bad input is refused with a helpful message."""

from __future__ import annotations

import json

import pytest

from gateway.core.model import Bounds
from gateway.core.power_manager import DEFAULT_EXPIRY
from gateway.proposals import MAX_PAYLOAD, ProposalError, ProposalRequest, parse_proposal


def test_full_proposal() -> None:
    request = parse_proposal(
        json.dumps(
            {
                "source": "hems",
                "priority": 10,
                "power": 11000,
                "bounds": {"lower": 0.0, "upper": 22000.0},
                "transaction": "t-1",
            }
        ).encode()
    )
    assert request == ProposalRequest("hems", 10, 11000.0, Bounds(0.0, 22000.0), "t-1")


def test_bare_number_is_a_power_from_the_default_source() -> None:
    assert parse_proposal(b"7400") == ProposalRequest("default", 0, 7400.0, Bounds(None, None))


def test_null_power_without_bounds_withdraws() -> None:
    assert parse_proposal(b'{"source": "a", "power": null}').withdraws
    assert not parse_proposal(b'{"source": "a", "bounds": {"upper": 5}}').withdraws


BAD = [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b'"7400"', "JSON object"),
    (b'{"power": 1, "colour": "red"}', "unknown field(s) colour"),
    (b'{"power": "1000"}', "power must be a number"),
    (b'{"power": true}', "power must be a number"),
    (b'{"power": NaN}', "finite"),
    (b'{"power": Infinity}', "finite"),
    (b'{"power": 1e400}', "finite"),
    (b'{"power": -1}', "discharging EVs is not supported"),
    (b"-5", "discharging EVs is not supported"),
    (b'{"priority": 1.5, "power": 1}', "priority must be an integer"),
    (b'{"priority": "high", "power": 1}', "priority must be an integer"),
    (b'{"bounds": {"lower": 10, "upper": 5}}', "above bounds.upper"),
    (b'{"bounds": [0, 5]}', "bounds must be an object"),
    (b'{"bounds": {"low": 0}}', "unknown field(s) in bounds"),
    (b'{"source": "bad source!", "power": 1}', "source must be"),
    (b'{"source": "' + b"x" * 65 + b'", "power": 1}', "source must be"),
    (b'{"power": 1, "transaction": [1]}', "transaction"),
    (b" " * (MAX_PAYLOAD + 1), "limit is 65536 bytes"),
]


@pytest.mark.parametrize(("payload", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, message: str) -> None:
    with pytest.raises(ProposalError) as info:
        parse_proposal(payload)
    assert message in str(info.value)


def test_error_keeps_source_and_transaction_for_the_reply() -> None:
    with pytest.raises(ProposalError) as info:
        parse_proposal(b'{"source": "hems", "power": -3, "transaction": 42}')
    assert info.value.source == "hems"
    assert info.value.transaction == 42


def test_retained_proposal_is_refused_as_stale() -> None:
    with pytest.raises(ProposalError, match="retained"):
        parse_proposal(b'{"source": "hems", "power": 5000}', retained=True)


# ------------------------------------------------------------------ expires_in


def test_expires_in_absent_null_and_seconds() -> None:
    absent = parse_proposal(b'{"power": 1}')
    assert absent.expires_in is DEFAULT_EXPIRY and absent.expiry(100.0) is DEFAULT_EXPIRY
    lasting = parse_proposal(b'{"power": 1, "expires_in": null}')
    assert lasting.expires_in is None and lasting.expiry(100.0) is None
    timed = parse_proposal(b'{"power": 1, "expires_in": 30}')
    assert timed.expires_in == 30.0 and timed.expiry(100.0) == 130.0
    longest = parse_proposal(b'{"power": 1, "expires_in": 600}', max_expires_in=600.0)
    assert longest.expiry(0.0) == 600.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "above 0 and at most 86400 s"),
        ("-1", "above 0 and at most 86400 s"),
        ("86401", "above 0 and at most 86400 s"),
        ("1" * 309, "above 0 and at most 86400 s"),
        ("1e400", "above 0 and at most 86400 s"),
        ('"60"', "expires_in must be a number of seconds, or null"),
        ("true", "expires_in must be a number of seconds, or null"),
        ("[60]", "expires_in must be a number of seconds, or null"),
    ],
)
def test_bad_expires_in_is_refused(value: str, message: str) -> None:
    with pytest.raises(ProposalError, match=message) as info:
        parse_proposal(f'{{"source": "ha", "power": 1, "expires_in": {value}}}'.encode())
    assert info.value.source == "ha"
    assert len(str(info.value)) < 300


def test_expires_in_above_a_configured_maximum_names_it() -> None:
    with pytest.raises(ProposalError, match="at most 3600 s"):
        parse_proposal(b'{"power": 1, "expires_in": 3601}', max_expires_in=3600.0)
