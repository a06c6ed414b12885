"""Who may open an OCPP connection: identity from the raw path, then credentials.

Secure by default: a charge point authenticates with HTTP Basic auth (OCPP security
profile 1; profile 2 is the same over TLS), its identity as the user name and its
`[ocpp] basic_auth` password. Only `[ocpp] allow_unauthenticated` (true for every
charge point, or a list of ids) lets one in without credentials, and the start-up
log and `check-config` warn about each such charge point.

Rules (pure code, no I/O; the central system turns a refusal into an HTTP response):
- The identity is the last segment of the raw request path, compared exactly: no
  percent-decoding and no dot segments, so `x/../CP-2` and `CP%2D2` are not `CP-2`.
  The segments before it (a URL prefix such as `/ocpp/`) are allowed but ignored.
- An unknown identity and wrong or missing credentials get the very same answer
  (401 with the same body), so ids cannot be enumerated; only the log tells them
  apart. Passwords are compared in constant time, also for unknown identities.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_authorization_basic

from gateway.config import ChargerConfig, OcppConfig

REFUSAL_BODY = "authentication required\n"
"""The body of every refusal: the same for unknown ids and bad credentials."""

_DUMMY_PASSWORD = "x" * 32


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused: `reason` is for the log only, never the client."""

    reason: str


def charge_point_id_from_path(target: str) -> str | None:
    """The identity in a raw request target, or None when the path is not acceptable.

    The query string is ignored. No segment may be empty, `.` or `..`, or contain `%`
    or `\\`: such paths mean something else once normalised, and are refused.
    """
    path = target.split("?", 1)[0]
    if not path.startswith("/"):
        return None
    segments = path[1:].split("/")
    for segment in segments:
        if segment in ("", ".", "..") or "%" in segment or "\\" in segment:
            return None
    return segments[-1]


def allowed_without_credentials(config: OcppConfig, charge_point_id: str) -> bool:
    """True when the config lets this charge point in without a password."""
    allowed = config.allow_unauthenticated
    if isinstance(allowed, bool):
        return allowed
    return charge_point_id in allowed


def check_credentials(
    config: OcppConfig, known: bool, charge_point_id: str, headers: Headers
) -> Refusal | None:
    """None when the charge point may connect, else why not (for the log)."""
    password = config.basic_auth.get(charge_point_id) if known else None
    header = headers.get("Authorization")
    if password is None:
        # Compare anyway, so an unknown id costs the same time as a wrong password.
        _matches(header, charge_point_id, _DUMMY_PASSWORD)
        if not known:
            return Refusal("unknown charge point id")
        if allowed_without_credentials(config, charge_point_id):
            return None
        return Refusal(
            "no basic_auth password is configured for it and it is not in "
            "[ocpp] allow_unauthenticated"
        )
    if header is None:
        return Refusal("no credentials sent")
    if not _matches(header, charge_point_id, password):
        return Refusal("wrong credentials")
    return None


def _matches(header: str | None, user: str, password: str) -> bool:
    """HTTP Basic credentials with `user` as user name and `password`, in constant time."""
    given_user, given_password = "", ""
    if header is not None:
        with contextlib.suppress(InvalidHeader):
            given_user, given_password = parse_authorization_basic(header)
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return header is not None and user_ok and password_ok


def security_warnings(config: OcppConfig, chargers: Iterable[ChargerConfig]) -> list[str]:
    """One line per OCPP charge point that connects without authentication or cannot.

    Shown by the start-up log and `check-config`.
    """
    ids = [c.charge_point_id for c in chargers if c.adapter == "ocpp" and c.charge_point_id]
    return _warnings(config, ids, config.basic_auth)


def _warnings(config: OcppConfig, ids: list[str], passwords: Mapping[str, str]) -> list[str]:
    lines: list[str] = []
    tls = config.cert_file is not None
    for charge_point_id in ids:
        if charge_point_id in passwords:
            if not tls:
                lines.append(
                    f"OCPP charge point {charge_point_id}: Basic auth without TLS "
                    "(security profile 1): the password crosses the network in clear text"
                )
        elif allowed_without_credentials(config, charge_point_id):
            lines.append(
                f"OCPP charge point {charge_point_id} may connect without authentication "
                "([ocpp] allow_unauthenticated): anyone who knows its id can act as it"
            )
        else:
            lines.append(
                f"OCPP charge point {charge_point_id} has no [ocpp] basic_auth password and "
                "is not in allow_unauthenticated: it will be refused"
            )
    allowed = config.allow_unauthenticated
    if not isinstance(allowed, bool):
        for unknown in sorted(set(allowed) - set(ids)):
            lines.append(f"[ocpp] allow_unauthenticated names {unknown!r}, which no charger uses")
    return lines
