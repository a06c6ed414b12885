"""Proposal payloads on `{base}/pools/{pool}/propose_power`: strict parsing and replies.

Pure code apart from reading an aiomqtt message's properties. A proposal that fails
any check raises `ProposalError` with a message that says what is wrong and how to
fix it; the caller replies with it and changes nothing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.core.model import Bounds
from gateway.core.power_manager import DEFAULT_EXPIRY, Expiry

MAX_PAYLOAD = 64 * 1024
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_SOURCE = "default"
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
FIELDS = frozenset({"source", "priority", "power", "bounds", "transaction", "expires_in"})
DEFAULT_MAX_EXPIRES_IN = 86_400.0
"""Longest `expires_in` accepted unless `[power] max_expires_in` says otherwise (1 day)."""
EXAMPLE = '{"source": "hems", "priority": 10, "power": 11000.0}'

Transaction = str | int | float | None


class ProposalError(ValueError):
    """The proposal is refused; `source` and `transaction` are echoed when known."""

    def __init__(self, message: str, source: str | None = None, transaction: Transaction = None):
        super().__init__(message)
        self.source = source
        self.transaction = transaction


@dataclass(frozen=True, slots=True)
class ProposalRequest:
    """A valid proposal, as the power manager takes it."""

    source: str
    priority: int
    power: float | None
    bounds: Bounds
    transaction: Transaction = None
    expires_in: Expiry = DEFAULT_EXPIRY
    """Seconds the proposal holds; None: until withdrawn or replaced; `DEFAULT_EXPIRY`
    when the payload gave none (the pool's `max_proposal_age` applies)."""

    @property
    def withdraws(self) -> bool:
        """No power and no bounds: the source takes its proposal back."""
        return self.power is None and self.bounds.lower is None and self.bounds.upper is None

    def expiry(self, now: float) -> Expiry:
        """The power manager's `Proposal.expires` for this request received at `now`."""
        if self.expires_in is None or self.expires_in is DEFAULT_EXPIRY:
            return self.expires_in
        assert isinstance(self.expires_in, float)
        return now + self.expires_in


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; send a finite number")


def parse_proposal(
    payload: bytes,
    retained: bool = False,
    *,
    max_expires_in: float = DEFAULT_MAX_EXPIRES_IN,
) -> ProposalRequest:
    """Parse and validate one proposal payload (JSON object, or a bare number).

    `max_expires_in` is the longest `expires_in` (s) accepted.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ProposalError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProposalError(f"payload is not UTF-8 text ({exc.reason}); send JSON") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ProposalError(f"payload is not valid JSON ({exc}); send e.g. {EXAMPLE}") from None
    if _is_number(data):
        data = {"power": data}
    if not isinstance(data, dict):
        raise ProposalError(
            f"payload must be a JSON object or a bare number, got {type(data).__name__}; "
            f"send e.g. {EXAMPLE}"
        )
    source = _source(data)
    transaction = _transaction(data, source)
    try:
        request = _validated(data, source, transaction, max_expires_in)
    except ValueError as exc:
        raise ProposalError(str(exc), source, transaction) from None
    if retained:
        raise ProposalError(
            "retained message: a retained proposal is a stale set-point and is not applied; "
            "publish proposals without the retain flag (and clear the retained one with an "
            "empty retained payload)",
            source,
            transaction,
        )
    return request


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _source(data: dict[str, Any]) -> str | None:
    source = data.get("source", DEFAULT_SOURCE)
    if isinstance(source, str) and NAME_RE.fullmatch(source):
        return source
    return None


def _transaction(data: dict[str, Any], source: str | None) -> Transaction:
    transaction = data.get("transaction")
    if transaction is None or isinstance(transaction, str):
        return transaction
    if _is_number(transaction) and _finite(transaction) is not None:
        return transaction  # type: ignore[no-any-return]
    raise ProposalError("transaction must be a string or a finite number", source, None)


def _validated(
    data: dict[str, Any], source: str | None, transaction: Transaction, max_expires_in: float
) -> ProposalRequest:
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(FIELDS))}"
        )
    if source is None:
        raise ValueError("source must be a string of 1-64 characters from [A-Za-z0-9_-]")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ValueError(f"priority must be an integer, got {_short(priority)}")
    if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise ValueError("priority must fit in 32 bits (-2147483648 to 2147483647)")
    power = _watts(data.get("power"), "power")
    if power is not None and power < 0:
        raise ValueError(
            f"power {power:g} W is negative: discharging EVs is not supported; "
            "send a power >= 0 W (0 pauses charging)"
        )
    bounds = _bounds(data.get("bounds"))
    expires_in = _expires_in(data, max_expires_in)
    return ProposalRequest(source, priority, power, bounds, transaction, expires_in)


def _expires_in(data: dict[str, Any], maximum: float) -> Expiry:
    """`expires_in`: absent -> the default age, null -> lasting, else 0 < s <= maximum."""
    if "expires_in" not in data:
        return DEFAULT_EXPIRY
    value = data["expires_in"]
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(
            "expires_in must be a number of seconds, or null for a set-point that holds "
            f"until withdrawn or replaced; got {_short(value)}"
        )
    seconds = _finite(value)
    if seconds is None or not 0 < seconds <= maximum:
        raise ValueError(
            f"expires_in must be above 0 and at most {maximum:g} s ([power] max_expires_in), "
            f"got {_short(value)}; send null for a set-point that holds until withdrawn"
        )
    return seconds


def _watts(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(f"{name} must be a number of watts or null, got {_short(value)}")
    number = _finite(value)
    if number is None:
        raise ValueError(f"{name} must be a finite number of watts")
    return number


def _finite(value: int | float) -> float | None:
    """`value` as a finite float; None when it is not (NaN, infinite, too large an int)."""
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range, e.g. 309 digits
        return None
    return number if math.isfinite(number) else None


SHORT = 60
"""Characters of an offending value quoted back in an error message."""


def _short(value: Any) -> str:
    """`value` as JSON, cut to `SHORT` characters so a reply never echoes a huge input."""
    try:
        text = json.dumps(value)
    except (ValueError, TypeError):
        text = type(value).__name__
    return text if len(text) <= SHORT else text[: SHORT - 3] + "..."


def _bounds(value: Any) -> Bounds:
    if value is None:
        return Bounds(None, None)
    if not isinstance(value, dict):
        raise ValueError('bounds must be an object like {"lower": 0.0, "upper": 22000.0}')
    unknown = sorted(set(value) - {"lower", "upper"})
    if unknown:
        raise ValueError(f"unknown field(s) in bounds: {', '.join(unknown)}; allowed: lower, upper")
    lower = _watts(value.get("lower"), "bounds.lower")
    upper = _watts(value.get("upper"), "bounds.upper")
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"bounds.lower ({lower:g} W) is above bounds.upper ({upper:g} W)")
    return Bounds(lower, upper)


def ok_reply(source: str, transaction: Transaction) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "ok", "source": source}
    if transaction is not None:
        body["transaction"] = transaction
    return body


def error_reply(source: str | None, error: str, transaction: Transaction) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "source": source, "error": error}
    if transaction is not None:
        body["transaction"] = transaction
    return body


def _publishable(topic: str) -> bool:
    """A topic we may publish to: no wildcards, not empty, within MQTT's length limit."""
    return "+" not in topic and "#" not in topic and 0 < len(topic.encode()) <= 65535


def reply_target(message: aiomqtt.Message, default_topic: str) -> tuple[str, Properties | None]:
    """Where to reply: the MQTT 5 response topic with its correlation data, else the default."""
    props = message.properties
    response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
    if not response_topic or not _publishable(str(response_topic)):
        return default_topic, None
    reply_props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    correlation = getattr(props, "CorrelationData", None)
    if correlation:
        reply_props.CorrelationData = correlation
    return str(response_topic), reply_props
