"""The OCPP central system under hostile or careless clients, over real websockets.

Secure by default (Basic auth unless allowed otherwise), one answer for every refusal,
ids matched on the raw path, CALLERRORs for bad frames (never a traceback), and a
per-connection message rate limit on the gateway's clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.headers import build_authorization_basic

from gateway.adapters.ocpp import OcppCentralSystem
from gateway.adapters.ocpp.handshake import security_warnings
from tests.ocpp_helpers import FakeClock, connected_charge_point, ocpp_charger, ocpp_config

PASSWORD = "correct-horse-battery"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged with a traceback, and nothing at ERROR."""
    assert all(r.exc_info is None for r in caplog.records), [r.message for r in caplog.records]
    assert all(r.levelno < logging.ERROR for r in caplog.records)


async def refused(port: int, path: str, password: str | None = None, user: str = "CP-1") -> Any:
    """Open a connection that must be refused; the HTTP response."""
    headers = {"Authorization": build_authorization_basic(user, password)} if password else None
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}{path}",
            subprotocols=[websockets.Subprotocol("ocpp1.6")],
            additional_headers=headers,
            open_timeout=5,
        ):
            pass
    return info.value.response


async def test_every_refusal_looks_the_same(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()  # each refusal a log interval apart, so each is logged
    config = ocpp_config(basic_auth={"CP-1": PASSWORD}, allow_unauthenticated=False)
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2")]
    attempts = [
        ("/CP-999", None, "CP-1"),  # unknown id
        ("/CP-999", PASSWORD, "CP-999"),
        ("/CP-1", None, "CP-1"),  # no credentials
        ("/CP-1", "wrong-password", "CP-1"),
        ("/CP-1", PASSWORD, "CP-2"),  # another user
        ("/CP-2", None, "CP-1"),  # no password and not allowed
    ]
    async with OcppCentralSystem(config, chargers, clock=clock) as central:
        answers = []
        for path, password, user in attempts:
            answers.append(await refused(central.port, path, password, user))
            clock.advance(10.0)
        async with connected_charge_point(central.port, password=PASSWORD) as cp:
            assert (await cp.boot()).status == "Accepted"
    assert {(a.status_code, bytes(a.body)) for a in answers} == {
        (401, b"authentication required\n")
    }
    assert {a.headers["WWW-Authenticate"] for a in answers} == {
        'Basic realm="ev-gateway", charset="UTF-8"'
    }
    reasons = [r.message for r in caplog.records if "refused OCPP connection" in r.message]
    assert any("unknown charge point id" in r for r in reasons)
    assert any("wrong credentials" in r for r in reasons)
    assert any("not in [ocpp] allow_unauthenticated" in r for r in reasons)
    assert len(reasons) == len(attempts)


async def test_the_id_is_matched_on_the_raw_path() -> None:
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2")]
    async with OcppCentralSystem(ocpp_config(allow_unauthenticated=True), chargers) as central:
        for path in ("/x/../CP-2", "/CP%2D2", "/./CP-2", "//CP-2", "/CP-2/", "/cp-2", "/"):
            assert (await refused(central.port, path)).status_code == 401, path
        # A URL prefix before the id is fine, and so is a query string.
        for path in ("/ocpp/CP-2", "/CP-2?x=1"):
            async with connected_charge_point(central.port, "CP-2", path=path) as cp:
                assert (await cp.heartbeat()).current_time


async def test_allow_unauthenticated_for_listed_ids_only() -> None:
    config = ocpp_config(allow_unauthenticated=["CP-2"])
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2")]
    async with OcppCentralSystem(config, chargers) as central:
        assert (await refused(central.port, "/CP-1")).status_code == 401
        async with connected_charge_point(central.port, "CP-2") as cp:
            assert (await cp.boot()).status == "Accepted"


async def test_warnings_at_start_and_for_check_config(caplog: pytest.LogCaptureFixture) -> None:
    config = ocpp_config(basic_auth={"CP-1": PASSWORD}, allow_unauthenticated=["CP-2", "CP-7"])
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2"), ocpp_charger("bay-3", "CP-3")]
    lines = security_warnings(config, chargers)
    assert len(lines) == 4
    assert "CP-1: Basic auth without TLS" in lines[0]
    assert "CP-2 may connect without authentication" in lines[1]
    assert "CP-3 has no [ocpp] basic_auth password" in lines[2]
    assert "'CP-7', which no charger uses" in lines[3]
    async with OcppCentralSystem(config, chargers):
        pass
    logged = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert all(line in logged for line in lines)
    assert security_warnings(ocpp_config(allow_unauthenticated=False), []) == []


def raw_connection(port: int, subprotocol: str) -> Any:
    """A bare websocket to the central system as CP-1, for hand-made frames."""
    return websockets.connect(
        f"ws://127.0.0.1:{port}/CP-1", subprotocols=[websockets.Subprotocol(subprotocol)]
    )


@pytest.fixture
async def raw_16() -> AsyncIterator[Any]:
    """A bare websocket to the central system as CP-1 (ocpp1.6), for hand-made frames."""
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central,
        raw_connection(central.port, "ocpp1.6") as connection,
    ):
        yield connection


async def exchange(connection: Any, frame: str | bytes) -> list[Any]:
    """Send a frame and return the answer (CALLs of the gateway's resync are skipped)."""
    await connection.send(frame)
    while True:
        message = json.loads(await asyncio.wait_for(connection.recv(), 5))
        if message[0] != 2:
            return list(message)


BAD_FRAMES_16 = [
    ("not json", "-1"),
    ("[]", "-1"),
    ("{}", "-1"),
    ('[9, "m-1"]', "m-1"),
    ('[2, "m-2", "Heartbeat"]', "m-2"),
    ('[2, 17, "Heartbeat", {}]', "-1"),
    ('[3, "m-3"]', "m-3"),
    ("[" * 5000 + "]" * 5000, "-1"),
    ('[2, "m-4", "Heartbeat", {"a": ' + "[" * 100 + "]" * 100 + "}]", "-1"),
    ("[2, 1" + "0" * 5000 + ', "Heartbeat", {}]', "-1"),
]


@pytest.mark.parametrize(("frame", "message_id"), BAD_FRAMES_16)
async def test_bad_frames_get_a_callerror(
    raw_16: Any, frame: str, message_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await exchange(raw_16, frame)
    assert reply[:3] == [4, message_id, "FormationViolation"]
    assert isinstance(reply[3], str) and reply[4] == {}
    # The connection lives on and still answers.
    heartbeat = await exchange(raw_16, '[2, "hb", "Heartbeat", {}]')
    assert heartbeat[:2] == [3, "hb"] and "currentTime" in heartbeat[2]
    no_tracebacks(caplog)


async def test_schema_errors_and_unknown_actions_are_callerrors_without_tracebacks(
    raw_16: Any, caplog: pytest.LogCaptureFixture
) -> None:
    boot = await exchange(raw_16, '[2, "b", "BootNotification", {"chargePointModel": 5}]')
    assert boot[:2] == [4, "b"] and boot[2] in ("TypeConstraintViolation", "FormatViolation")
    unknown = await exchange(raw_16, '[2, "u", "NoSuchAction", {}]')
    assert unknown[:3] == [4, "u", "NotSupported"]
    # A stray answer (no request outstanding) is dropped, not queued for the next CALL.
    await raw_16.send('[3, "nobody-asked", {}]')
    heartbeat = await exchange(raw_16, '[2, "hb", "Heartbeat", {}]')
    assert heartbeat[:2] == [3, "hb"]
    no_tracebacks(caplog)


async def test_binary_garbage_and_oversized_frames() -> None:
    config = ocpp_config(max_frame_bytes=4096)
    async with (
        OcppCentralSystem(config, [ocpp_charger()]) as central,
        raw_connection(central.port, "ocpp1.6") as connection,
    ):
        reply = await exchange(connection, b"\xff\xfe\x00garbage")
        assert reply[:3] == [4, "-1", "FormationViolation"]
        await connection.send('[2, "big", "Heartbeat", {"x": "' + "a" * 5000 + '"}]')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_two_point_zero_framing_codes() -> None:
    async with (
        OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central,
        raw_connection(central.port, "ocpp2.0.1") as connection,
    ):
        assert (await exchange(connection, "[]"))[:3] == [4, "-1", "RpcFrameworkError"]
        assert (await exchange(connection, '[9, "m"]'))[:3] == [4, "m", "MessageTypeNotSupported"]
        deep = "[" * 1000 + "]" * 1000
        assert (await exchange(connection, deep))[:3] == [4, "-1", "RpcFrameworkError"]


async def test_a_flooding_connection_is_closed_on_the_gateway_clock() -> None:
    clock = FakeClock()
    config = ocpp_config(max_message_rate=1.0, message_burst=5)
    async with (
        OcppCentralSystem(config, [ocpp_charger()], probe_interval=None, clock=clock) as central,
        raw_connection(central.port, "ocpp1.6") as connection,
    ):
        for index in range(5):  # the burst passes
            assert (await exchange(connection, f'[2, "h{index}", "Heartbeat", {{}}]'))[0] == 3
        clock.advance(2.0)  # two more tokens at 1 frame/s
        for index in range(2):
            assert (await exchange(connection, f'[2, "t{index}", "Heartbeat", {{}}]'))[0] == 3
        await connection.send('[2, "over", "Heartbeat", {}]')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # the resync's CALLs may arrive before the close
                await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1008,
        "message rate limit exceeded",
    )


def test_check_config_warns_about_unauthenticated_charge_points(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    path = tmp_path / "gw.toml"
    path.write_text(
        '[ocpp]\nallow_unauthenticated = ["CP-1"]\n\n'
        '[[chargers]]\nid = "bay-1"\nadapter = "ocpp"\ncharge_point_id = "CP-1"\n'
    )
    assert main(["check-config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "ev-gateway: warning: OCPP charge point CP-1 may connect without authentication" in err
    assert err.count("ev-gateway: warning:") == 1  # one warning (the rules follow it)


async def test_refusals_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    config = ocpp_config(allow_unauthenticated=False)
    async with OcppCentralSystem(config, [ocpp_charger()], clock=clock) as central:
        for _ in range(5):
            await refused(central.port, "/CP-1")
        clock.advance(10.0)
        await refused(central.port, "/nobody")
    lines = [r.message for r in caplog.records if "refused OCPP connection" in r.message]
    assert len(lines) == 2
    assert "'/CP-1'" in lines[0] and "more refused" not in lines[0]
    assert "'/nobody'" in lines[1] and "(and 4 more refused since the last such line)" in lines[1]


async def test_answers_to_nothing_never_reach_the_library(caplog: pytest.LogCaptureFixture) -> None:
    config = ocpp_config(response_timeout=5.0, message_burst=3000, max_message_rate=1000.0)
    async with (
        OcppCentralSystem(config, [ocpp_charger()]) as central,
        raw_connection(central.port, "ocpp1.6") as connection,
    ):
        await connection.send('[2, "hb", "Heartbeat", {}]')
        # The resync's first CALL (the fail-safe profile) is now outstanding: flood it
        # with answers to other ids, then answer it for real.
        call = []
        while not call or call[0] != 2:
            call = json.loads(await asyncio.wait_for(connection.recv(), 5))
        for index in range(1500):
            await connection.send(f'[3, "stray-{index}", {{"status": "Accepted"}}]')
        await connection.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        following = json.loads(await asyncio.wait_for(connection.recv(), 5))
        assert following[0] == 2 and following[1] != call[1]  # the next CALL went out
        heartbeat = await exchange(connection, '[2, "hb2", "Heartbeat", {}]')
        assert heartbeat[:2] == [3, "hb2"]
    no_tracebacks(caplog)
    assert any("1500 on this connection" in r.message for r in caplog.records)
