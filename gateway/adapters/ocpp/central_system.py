"""`OcppCentralSystem`: the gateway's OCPP 1.6J server that charge points connect to.

A charge point opens `ws[s]://host:port/<charge_point_id>` with the subprotocol
`ocpp1.6`. The handshake is checked before any OCPP is spoken:
- an identity that no `[[chargers]]` entry claims gets HTTP 404 (OCPP-J §3.1);
- a charge point with a `basic_auth` password (security profile 1) must send HTTP
  Basic credentials with its identity as the user name, else HTTP 401;
- a client that does not offer `ocpp1.6` completes the handshake without a
  subprotocol and is closed at once, as OCPP-J §3.1.2 prescribes.
TLS is on when both `cert_file` and `key_file` are set (security profile 2).

Each connection gets its own `ChargePointSession` (and so its own CALL lock and
timeout): a dead charge point never delays another. A known identity that connects
again replaces its old connection.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.frames import CloseCode
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.adapters.ocpp.charge_point import OcppCharger
from gateway.adapters.ocpp.session import SessionContext
from gateway.config import ChargerConfig, OcppConfig

LOG = logging.getLogger(__name__)

OCPP16 = Subprotocol("ocpp1.6")
CLOSE_TIMEOUT = 2.0
"""Seconds to wait for a charge point to finish the closing handshake."""


def charge_point_id_from_path(path: str) -> str:
    """The charge point identity: the last segment of the URL path, percent-decoded."""
    segment = urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(segment)


class OcppCentralSystem:
    """The OCPP server and the `OcppCharger` adapters of the configured charge points.

    `chargers` may be the whole `[[chargers]]` list: entries with another adapter are
    ignored. `probe_interval` is how long a charge point may stay silent before it is
    asked for a Heartbeat; keep it below `power.max_data_age` (None turns it off).
    """

    def __init__(
        self,
        config: OcppConfig,
        chargers: list[ChargerConfig],
        nominal_voltage: float = 230.0,
        probe_interval: float | None = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._by_charge_point: dict[str, OcppCharger] = {}
        self._by_id: dict[str, OcppCharger] = {}
        for charger_config in chargers:
            if charger_config.adapter != "ocpp":
                continue
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
        )
        self._server: Server | None = None

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
        tls = self._ssl_context()
        self._server = await serve(
            self._handle_connection,
            self._config.host,
            self._config.port,
            subprotocols=[OCPP16],
            select_subprotocol=_select_subprotocol,
            process_request=self._check_handshake,
            ssl=tls,
            close_timeout=CLOSE_TIMEOUT,
        )
        scheme = "wss" if tls is not None else "ws"
        LOG.info(
            "OCPP central system listening on %s://%s:%d/<charge_point_id>",
            scheme,
            self._config.host,
            self.port,
        )

    async def stop(self) -> None:
        """Close every connection and the listening socket; close the adapters."""
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
        context.load_cert_chain(cert, key)
        return context

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse unknown identities (404) and wrong or missing credentials (401)."""
        charge_point_id = charge_point_id_from_path(request.path)
        charger = self._by_charge_point.get(charge_point_id)
        if charger is None:
            LOG.warning(
                "refused unknown charge point %r from %s", charge_point_id, _peer(connection)
            )
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"unknown charge point id {charge_point_id!r}\n"
            )
        if charger.closed:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "the central system is closing\n"
            )
        password = self._config.basic_auth.get(charge_point_id)
        if password is not None and not _credentials_match(
            request.headers, charge_point_id, password
        ):
            LOG.warning(
                "refused charge point %r from %s: wrong or missing credentials",
                charge_point_id,
                _peer(connection),
            )
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic("ev-gateway")
            return response
        return None

    async def _handle_connection(self, connection: ServerConnection) -> None:
        """Run one charge point's session until its connection ends."""
        request = connection.request
        assert request is not None  # the handshake is complete here
        charger = self._by_charge_point.get(charge_point_id_from_path(request.path))
        if charger is None or charger.closed:
            await connection.close(CloseCode.GOING_AWAY, "charge point unknown or closing")
            return
        if connection.subprotocol != OCPP16:
            LOG.warning(
                "charge point %s from %s offered no ocpp1.6 subprotocol; closing",
                charger.charge_point_id,
                _peer(connection),
            )
            await connection.close(CloseCode.PROTOCOL_ERROR, "subprotocol ocpp1.6 required")
            return
        session = charger.attach(connection, self._context)
        try:
            await session.start()
        except ConnectionClosed as exc:
            LOG.info("charge point %s: connection closed (%s)", charger.charge_point_id, exc)
        finally:
            charger.detach(session)


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    """ocpp1.6 when offered; otherwise no subprotocol, and the handler closes."""
    return OCPP16 if OCPP16 in subprotocols else None


def _credentials_match(headers: Headers, user: str, password: str) -> bool:
    """HTTP Basic credentials with the charge point id as user and its password."""
    header = headers.get("Authorization")
    if header is None:
        return False
    try:
        given_user, given_password = parse_authorization_basic(header)
    except InvalidHeader:
        return False
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user_ok and password_ok


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "unknown peer"
