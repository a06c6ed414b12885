"""The OCPP central system over real websockets with a real `ocpp` client.

Handshake checks (ids, subprotocol, basic auth, TLS), samples assembled from what a
charge point sends, transactions, and connection replacement.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from gateway.adapters.base import Charger, ChargerUnreachable
from gateway.adapters.ocpp import OcppCentralSystem
from gateway.core.model import CableState, ComponentState, Phases
from tests.ocpp_helpers import connected_charge_point, ocpp_charger, ocpp_config, wait_until


@pytest.fixture
async def central() -> AsyncIterator[OcppCentralSystem]:
    """A central system with one charger, bay-1 = charge point CP-1."""
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as system:
        yield system


async def test_boot_status_and_meter_values_make_a_sample() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central:
        charger = central.charger("bay-1")
        assert isinstance(charger, Charger)
        async with connected_charge_point(central.port) as cp:
            boot = await cp.boot()
            assert (boot.status, boot.interval) == ("Accepted", 60)
            await cp.status("Charging")
            before = time.monotonic()
            await cp.meter_values(
                power=11000.0,
                current=(16.0, 15.9, 16.1),
                voltage=(230.0, 231.0, 229.0),
                energy=12345.0,
            )
            sample = await charger.read()
    assert sample.active_power == 11000.0
    assert sample.current == Phases(16.0, 15.9, 16.1)
    assert sample.voltage == Phases(230.0, 231.0, 229.0)
    assert sample.energy == 12345.0
    assert (sample.cable_state, sample.component_state) == (
        CableState.EV_LOCKED,
        ComponentState.CHARGING,
    )
    assert before <= sample.timestamp <= time.monotonic()
    assert sample.current_limit is None
    assert sample.inclusion_bounds.lower == 0.0
    assert sample.inclusion_bounds.upper == pytest.approx(16.0 * 230.0 * 3)


async def test_kilowatt_units_are_converted(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        await cp.status("Charging")
        await cp.meter_values(power=7.4, power_unit="kW", energy=12.5, energy_unit="kWh")
        sample = await central.charger("bay-1").read()
    assert sample.active_power == pytest.approx(7400.0)
    assert sample.energy == pytest.approx(12500.0)


async def test_malformed_meter_values_are_ignored_not_fatal(central: OcppCentralSystem) -> None:
    async with connected_charge_point(central.port) as cp:
        await cp.status("Charging")
        answer = await cp.raw_meter_values(
            [
                {"value": "abc", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "5", "measurand": "Current.Import", "unit": "mA", "phase": "L1"},
                {"value": 8, "measurand": "Current.Import", "unit": "A", "phase": "L2"},
            ]
        )
        assert answer is not None  # a CALLRESULT, not a CALLERROR
        sample = await central.charger("bay-1").read()
        # The connection still works afterwards.
        await cp.meter_values(power=1000.0)
        assert (await central.charger("bay-1").read()).active_power == 1000.0
    assert sample.active_power == 0.0
    assert sample.current == Phases(0.0, 8.0, 0.0)


async def test_read_before_any_data_raises_unreachable() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central:
        charger = central.charger("bay-1")
        with pytest.raises(ChargerUnreachable, match="not connected"):
            await charger.read()
        async with connected_charge_point(central.port) as cp:
            await wait_until(lambda: charger.connected)
            with pytest.raises(ChargerUnreachable, match="has sent no"):
                await charger.read()
            await cp.boot()
            with pytest.raises(ChargerUnreachable, match="has sent no"):
                await charger.read()
            await cp.status("Available")
            sample = await charger.read()
            assert (sample.cable_state, sample.component_state) == (
                CableState.UNPLUGGED,
                ComponentState.READY,
            )
        await wait_until(lambda: not charger.connected)
        with pytest.raises(ChargerUnreachable, match="not connected"):
            await charger.read()


async def test_unknown_charge_point_is_refused_with_404() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connected_charge_point(central.port, "CP-999"):
                pass
    assert refused.value.response.status_code == 404


async def test_client_without_ocpp16_is_closed() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central:
        async with websockets.connect(
            f"ws://127.0.0.1:{central.port}/CP-1", subprotocols=[websockets.Subprotocol("ocpp2.0")]
        ) as connection:
            assert connection.subprotocol is None
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(connection.recv(), 2)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1002
        assert not central.charger("bay-1").connected


async def test_basic_auth_per_charge_point() -> None:
    config = ocpp_config(basic_auth={"CP-1": "correct-horse-battery"})
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2")]
    async with OcppCentralSystem(config, chargers) as central:
        for password, user in (
            ("wrong-password", None),
            (None, None),
            ("correct-horse-battery", "x"),
        ):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connected_charge_point(central.port, password=password, user=user):
                    pass
            assert refused.value.response.status_code == 401
        async with connected_charge_point(central.port, password="correct-horse-battery") as cp:
            assert (await cp.boot()).status == "Accepted"
        async with connected_charge_point(central.port, "CP-2") as cp:  # no password configured
            assert (await cp.boot()).status == "Accepted"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls(tmp_path: Path) -> None:
    try:
        cert, key = _self_signed(tmp_path)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    config = ocpp_config(cert_file=cert, key_file=key, basic_auth={"CP-1": "s3cret-s3cret"})
    client_tls = ssl.create_default_context(cafile=str(cert))
    async with (
        OcppCentralSystem(config, [ocpp_charger()]) as central,
        connected_charge_point(
            central.port, password="s3cret-s3cret", scheme="wss", ssl=client_tls
        ) as cp,
    ):
        assert (await cp.boot()).status == "Accepted"


async def test_half_configured_tls_is_refused(tmp_path: Path) -> None:
    # The config refuses it first; the central system would refuse it too.
    cert = tmp_path / "c.pem"
    cert.write_text("not checked here")
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        ocpp_config(cert_file=cert)
    with pytest.raises(ValueError, match="does not exist"):
        ocpp_config(cert_file=tmp_path / "missing.pem", key_file=cert)


async def test_reconnect_replaces_the_old_connection() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()]) as central:
        charger = central.charger("bay-1")
        async with connected_charge_point(central.port) as first:
            await first.boot()
            async with connected_charge_point(central.port) as second:
                await second.heartbeat()
                await asyncio.wait_for(first.connection.wait_closed(), 2)
                assert charger.connected
                assert await charger.set_current_limit(10.0) == 10.0
                assert (
                    second.profiles()[-1]["charging_schedule"]["charging_schedule_period"][0][
                        "limit"
                    ]
                    == 10
                )
            assert all(
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] != 10
                for p in first.profiles()
            )


async def test_transactions_authorize_and_data_transfer() -> None:
    config = ocpp_config(authorize_id_tags=["GOOD-TAG"])
    chargers = [ocpp_charger(), ocpp_charger("bay-2", "CP-2")]
    async with OcppCentralSystem(config, chargers) as central:
        charger = central.charger("bay-1")
        async with (
            connected_charge_point(central.port) as cp,
            connected_charge_point(central.port, "CP-2") as other,
        ):
            from ocpp.v16 import call

            assert (await cp.call(call.Authorize(id_tag="GOOD-TAG"))).id_tag_info[
                "status"
            ] == "Accepted"
            assert (await cp.call(call.Authorize(id_tag="BAD"))).id_tag_info["status"] == "Invalid"
            answer = await cp.call(call.DataTransfer(vendor_id="com.example", data="x"))
            assert answer.status == "UnknownVendorId"

            started = await cp.start_transaction(id_tag="GOOD-TAG", meter_start=1000)
            elsewhere = await other.start_transaction(id_tag="GOOD-TAG")
            assert started.id_tag_info["status"] == "Accepted"
            assert started.transaction_id != elsewhere.transaction_id
            await cp.status("Charging")
            await cp.meter_values(power=7000.0, current=(10.0, 10.0, 10.0), energy=1500.0)
            assert (await charger.read()).active_power == 7000.0

            await cp.stop_transaction(started.transaction_id, meter_stop=2500)
            sample = await charger.read()
            assert (sample.active_power, sample.current, sample.energy) == (0.0, Phases(), 2500.0)
            refused = await cp.start_transaction(id_tag="BAD")
            assert refused.id_tag_info["status"] == "Invalid"


async def test_silent_charge_point_is_probed_and_stays_fresh() -> None:
    async with OcppCentralSystem(ocpp_config(), [ocpp_charger()], probe_interval=0.2) as central:
        charger = central.charger("bay-1")
        async with connected_charge_point(central.port) as cp:
            await cp.boot()
            await cp.status("Available")
            await wait_until(lambda: "Heartbeat" in cp.triggers(), timeout=2.0)
            sample = await charger.read()
            assert time.monotonic() - sample.timestamp < 0.5


async def test_sloppy_status_notification_is_understood(central: OcppCentralSystem) -> None:
    from ocpp.v16 import call

    async with connected_charge_point(central.port) as cp:
        # Lower-case status, connector id as a string, no errorCode: fails the schema.
        await cp.call(
            call.StatusNotification(connector_id="1", error_code=None, status="charging"),
            skip_schema_validation=True,
        )
        sample = await central.charger("bay-1").read()
    assert sample.component_state is ComponentState.CHARGING


async def test_stop_closes_connections_and_unknown_charger_id() -> None:
    central = OcppCentralSystem(ocpp_config(), [ocpp_charger()])
    with pytest.raises(KeyError, match="bay-1"):
        central.charger("bay-9")
    with pytest.raises(RuntimeError, match="not started"):
        _ = central.port
    await central.start()
    async with connected_charge_point(central.port) as cp:
        await cp.boot()
        await central.stop()
        await asyncio.wait_for(cp.connection.wait_closed(), 2)
    assert not central.charger("bay-1").connected
