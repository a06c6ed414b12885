"""`OcppCentralSystem`: the gateway's OCPP server that charge points connect to.

A charge point opens `ws[s]://host:port/<charge_point_id>` and offers the subprotocols
it speaks; the gateway picks OCPP 2.0.1 (`ocpp2.0.1`) or 1.6J (`ocpp1.6`), in the charge
point's order of preference, and runs the matching session class. The handshake is
checked before any OCPP is spoken (`handshake`): the identity must be configured and
authenticated (HTTP Basic auth, security profile 1; with `cert_file`/`key_file` the
server speaks TLS, security profile 2), else HTTP 401 with the same body whatever the
reason. A client that offers neither subprotocol completes the handshake without one
and is closed at once, as OCPP-J prescribes.

Each connection gets its own session (and so its own CALL lock, timeout and message
rate limit): a dead or flooding charge point never delays another. Frames are at most
`max_frame_bytes` (a larger one closes the connection with 1009). A known identity
that connects again replaces its old connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from http import HTTPStatus
from types import TracebackType

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.headers import build_www_authenticate_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.adapters.ocpp.charge_point import OcppCharger
from gateway.adapters.ocpp.clock import SYSTEM_CLOCK, Clock
from gateway.adapters.ocpp.handshake import (
    REFUSAL_BODY,
    charge_point_id_from_path,
    check_credentials,
    security_warnings,
)
from gateway.adapters.ocpp.session import SessionBase, SessionContext
from gateway.adapters.ocpp.v16 import V16Session
from gateway.adapters.ocpp.v201 import V201Session
from gateway.config import ChargerConfig, OcppConfig

LOG = logging.getLogger(__name__)

OCPP16 = Subprotocol("ocpp1.6")
OCPP201 = Subprotocol("ocpp2.0.1")
SESSION_CLASSES: dict[Subprotocol, type[SessionBase]] = {OCPP201: V201Session, OCPP16: V16Session}
"""The session class for each subprotocol the central system speaks."""

CLOSE_TIMEOUT = 2.0
"""Seconds to wait for a charge point to finish the closing handshake."""

REFUSAL_LOG_INTERVAL = 10.0
"""At most one refused-connection warning per this many seconds; the rest are counted."""


class OcppCentralSystem:
    """The OCPP server and the `OcppCharger` adapters of the configured charge points.

    `chargers` may be the whole `[[chargers]]` list: entries with another adapter are
    ignored. `probe_interval` is how long a charge point may stay silent before it is
    asked for a Heartbeat; keep it below `power.max_data_age` (None turns it off).
    `clock` drives every timing decision (tests inject a fake one).
    """

    def __init__(
        self,
        config: OcppConfig,
        chargers: list[ChargerConfig],
        nominal_voltage: float = 230.0,
        probe_interval: float | None = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._config = config
        self._charger_configs = [c for c in chargers if c.adapter == "ocpp"]
        self._by_charge_point: dict[str, OcppCharger] = {}
        self._by_id: dict[str, OcppCharger] = {}
        for charger_config in self._charger_configs:
            charger = OcppCharger(charger_config, config, nominal_voltage, probe_interval, clock)
            if charger.charge_point_id in self._by_charge_point:
                raise ValueError(
                    f"charger {charger.charger_id}: charge_point_id "
                    f"{charger.charge_point_id!r} is used by another charger"
                )
            self._by_charge_point[charger.charge_point_id] = charger
            self._by_id[charger.charger_id] = charger
        tags = config.authorize_id_tags
        self._context = SessionContext(
            heartbeat_interval=config.heartbeat_interval,
            response_timeout=config.response_timeout,
            authorize_id_tags=frozenset(tags) if tags is not None else None,
            clock=clock,
            max_message_rate=config.max_message_rate,
            message_burst=config.message_burst,
        )
        self._server: Server | None = None
        self._closing = False
        self._clock = clock
        self._refusal_logged_at: float | None = None
        self._refusals_unlogged = 0

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the real one when configured as 0)."""
        if self._server is None:
            raise RuntimeError("the OCPP central system is not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the OCPP central system has no listening socket")

    @property
    def chargers(self) -> list[OcppCharger]:
        """Every OCPP charger, in config order."""
        return list(self._by_id.values())

    def charger(self, charger_id: str) -> OcppCharger:
        """The adapter of one charger by its config id."""
        try:
            return self._by_id[charger_id]
        except KeyError:
            known = ", ".join(self._by_id) or "none"
            raise KeyError(
                f"no OCPP charger with id {charger_id!r} (OCPP chargers: {known})"
            ) from None

    async def start(self) -> None:
        """Listen on `ocpp.host`:`ocpp.port`. Raises OSError when the port is taken."""
        if self._server is not None:
            return
        for warning in security_warnings(self._config, self._charger_configs):
            LOG.warning("%s", warning)
        tls = self._ssl_context()
        self._closing = False
        self._server = await serve(
            self._handle_connection,
            self._config.host,
            self._config.port,
            subprotocols=list(SESSION_CLASSES),
            select_subprotocol=_select_subprotocol,
            process_request=self._check_handshake,
            ssl=tls,
            close_timeout=CLOSE_TIMEOUT,
            max_size=self._config.max_frame_bytes,
        )
        scheme = "wss" if tls is not None else "ws"
        LOG.info(
            "OCPP central system (1.6J, 2.0.1) listening on %s://%s:%d/<charge_point_id>",
            scheme,
            self._config.host,
            self.port,
        )

    async def stop(self) -> None:
        """Close every connection and the listening socket; close the adapters."""
        self._closing = True
        server, self._server = self._server, None
        # In parallel: each close may wait CLOSE_TIMEOUT for a charge point that hangs.
        await asyncio.gather(*(charger.close() for charger in self._by_id.values()))
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> OcppCentralSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _ssl_context(self) -> ssl.SSLContext | None:
        cert, key = self._config.cert_file, self._config.key_file
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            raise ValueError("ocpp.cert_file and ocpp.key_file must be given together for TLS")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse (401, one answer for every reason) all but known, authenticated ids."""
        if self._closing:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "closing\n")
        charge_point_id = charge_point_id_from_path(request.path)
        charger = self._by_charge_point.get(charge_point_id) if charge_point_id else None
        refusal = check_credentials(
            self._config, charger is not None, charge_point_id or "", request.headers
        )
        if refusal is None:
            return None
        reason = refusal.reason if charge_point_id else "the path is not /<charge_point_id>"
        self._log_refusal(f"refused OCPP connection to {request.path[:80]!r} from "
                          f"{_peer(connection)}: {reason}")  # fmt: skip
        response = connection.respond(HTTPStatus.UNAUTHORIZED, REFUSAL_BODY)
        response.headers["WWW-Authenticate"] = build_www_authenticate_basic("ev-gateway")
        return response

    def _log_refusal(self, line: str) -> None:
        """One warning per REFUSAL_LOG_INTERVAL; a flood of attempts is counted instead."""
        now = self._clock.now()
        last = self._refusal_logged_at
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            self._refusals_unlogged += 1
            return
        if self._refusals_unlogged:
            line += f" (and {self._refusals_unlogged} more refused since the last such line)"
        LOG.warning("%s", line)
        self._refusal_logged_at = now
        self._refusals_unlogged = 0

    async def _handle_connection(self, connection: ServerConnection) -> None:
        """Run one charge point's session until its connection ends."""
        request = connection.request
        assert request is not None  # the handshake is complete here
        charge_point_id = charge_point_id_from_path(request.path)
        charger = self._by_charge_point.get(charge_point_id) if charge_point_id else None
        if charger is None or charger.closed:
            await connection.close(CloseCode.GOING_AWAY, "charge point unknown or closing")
            return
        subprotocol = connection.subprotocol
        session_class = SESSION_CLASSES.get(subprotocol) if subprotocol else None
        if session_class is None:
            LOG.warning(
                "charge point %s from %s offered neither ocpp2.0.1 nor ocpp1.6; closing",
                charger.charge_point_id,
                _peer(connection),
            )
            await connection.close(
                CloseCode.PROTOCOL_ERROR, "subprotocol ocpp2.0.1 or ocpp1.6 required"
            )
            return
        session = session_class(charger.charge_point_id, connection, charger, self._context)
        charger.attach(session)
        try:
            await session.start()  # type: ignore[attr-defined]  # the library's receive loop
        except ConnectionClosed as exc:
            LOG.info("charge point %s: connection closed (%s)", charger.charge_point_id, exc)
        finally:
            charger.detach(session)


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The first subprotocol the charge point offers that the gateway speaks, or none."""
    for offered in subprotocols:
        if offered in SESSION_CLASSES:
            return offered
    return None


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "unknown peer"
