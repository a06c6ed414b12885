"""Proposal payloads on `{base}/pools/{pool}/propose_power`: strict parsing and replies.

Pure code apart from reading an aiomqtt message's properties. A proposal that fails
any check raises `ProposalError` with a message that says what is wrong and how to
fix it; the caller replies with it and changes nothing. Nothing else is ever raised,
whatever the bytes: the size and the nesting depth are checked before the JSON is
decoded, and integers beyond float range are refused like any other bad number.
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
MAX_DEPTH = 16
"""Deepest nesting of JSON arrays/objects accepted; a proposal needs 2."""
MAX_TRANSACTION = 128
"""Longest transaction string (characters): it is echoed in every reply."""
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
    if _nesting(payload) > MAX_DEPTH:
        raise ProposalError(
            f"payload nests arrays/objects deeper than {MAX_DEPTH} levels; send e.g. {EXAMPLE}"
        )
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc)[:SHORT] if isinstance(exc, ValueError) else "nested too deeply"
        raise ProposalError(f"payload is not valid JSON ({reason}); send e.g. {EXAMPLE}") from None
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


def _nesting(payload: bytes) -> int:
    """The deepest nesting of `[`/`{` outside JSON strings (cheap when there is little)."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _source(data: dict[str, Any]) -> str | None:
    source = data.get("source", DEFAULT_SOURCE)
    if isinstance(source, str) and NAME_RE.fullmatch(source):
        return source
    return None


def _transaction(data: dict[str, Any], source: str | None) -> Transaction:
    transaction = data.get("transaction")
    if transaction is None:
        return None
    if isinstance(transaction, str):
        if len(transaction) > MAX_TRANSACTION:
            raise ProposalError(
                f"transaction is {len(transaction)} characters; the limit is {MAX_TRANSACTION}",
                source,
                None,
            )
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
            f"unknown field(s) {_names(unknown)}; allowed: {', '.join(sorted(FIELDS))}"
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


def _names(names: list[str]) -> str:
    """Field names for an error message: plain when harmless, quoted JSON otherwise,
    at most five, so a hostile name can neither break the log line nor flood it."""
    shown = [n if NAME_RE.fullmatch(n) else _short(n) for n in names[:5]]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(shown) + more


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
        raise ValueError(f"unknown field(s) in bounds: {_names(unknown)}; allowed: lower, upper")
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


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where a reply goes, with its MQTT 5 properties; `problem` when the response
    topic the client asked for was refused (the reply then goes to the default)."""

    topic: str
    properties: Properties | None
    problem: str | None = None


def response_topic_problem(topic: str, base_topic: str) -> str | None:
    """Why the gateway will not publish a reply to `topic`; None when it may.

    Refused: empty or over MQTT's length limit, wildcards, `$` topics (broker
    internals), and anything under `{base}/` except a pool's `propose_power/response`,
    so a client cannot make the gateway write onto its own state or telemetry topics.
    """
    shown = topic if len(topic) <= SHORT else topic[: SHORT - 3] + "..."
    if not 0 < len(topic.encode("utf-8", "surrogatepass")) <= 65535:
        return "response topic is empty or longer than MQTT allows"
    if "+" in topic or "#" in topic:
        return f"response topic {shown!r} contains a wildcard (+ or #)"
    if "\x00" in topic:
        return "response topic contains a NUL character"
    if topic.startswith("$"):
        return f"response topic {shown!r} starts with $ (reserved for the broker)"
    if topic.startswith(f"{base_topic}/") or topic == base_topic:
        parts = topic.split("/")
        tail = parts[len(base_topic.split("/")) :]
        if not (
            len(tail) == 4 and tail[0] == "pools" and tail[2:] == ["propose_power", "response"]
        ):
            return (
                f"response topic {shown!r} is under the gateway's base topic {base_topic!r}; "
                f"only {base_topic}/pools/<pool>/propose_power/response is allowed there"
            )
    return None


def reply_target(message: aiomqtt.Message, default_topic: str, base_topic: str) -> ReplyTarget:
    """Where to reply: the MQTT 5 response topic with its correlation data, else the default.

    A response topic the gateway must not publish to (see `response_topic_problem`)
    gives the default topic and the problem; the correlation data is kept either way.
    """
    props = message.properties
    response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
    correlation = getattr(props, "CorrelationData", None) if props is not None else None
    reply_props: Properties | None = None
    if correlation:
        reply_props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        reply_props.CorrelationData = correlation
    if response_topic is None:
        return ReplyTarget(default_topic, reply_props)
    problem = response_topic_problem(str(response_topic), base_topic)
    if problem is not None:
        return ReplyTarget(default_topic, reply_props, problem)
    return ReplyTarget(str(response_topic), reply_props)


def check_plausible(request: ProposalRequest, rated_power: float) -> None:
    """Refuse a power (or lower bound) above what the pool could ever draw.

    `rated_power` is the sum over the pool's chargers of max_current x phases x
    nominal voltage. Such a value is a mistake (a timestamp, mW for W), never a
    wish; clamping it would run the pool at full power, so it is refused instead.
    """
    for name, value in (("power", request.power), ("bounds.lower", request.bounds.lower)):
        if value is not None and value > rated_power:
            raise ProposalError(
                f"{name} {value:g} W is above the pool's rated maximum of {rated_power:g} W "
                "(its chargers' max_current x phases x nominal_voltage); send watts, "
                f"at most {rated_power:g}",
                request.source,
                request.transaction,
            )
