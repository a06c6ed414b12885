"""Modbus failures in words: exception codes, and pymodbus errors as `ChargerError`s.

Every message starts with the `where` it is given (charger, connection, unit) and
says what was being done and why it failed, so one log line is enough.
"""

from __future__ import annotations

from typing import Any

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.adapters.base import ChargerError, ChargerProtocolError, ChargerUnreachable
from gateway.adapters.modbus.decoding import DecodeError

EXCEPTION_CODES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
"""Modbus exception codes (Modbus application protocol v1.1b3, section 7)."""


def exception_name(code: int) -> str:
    """The name of a Modbus exception code ("unknown exception" for others)."""
    return EXCEPTION_CODES.get(code, "unknown exception")


def refused(response: Any, where: str) -> ChargerProtocolError:
    """The error for an exception response to a request described by `where`."""
    code = int(getattr(response, "exception_code", 0))
    return ChargerProtocolError(
        f"{where}: the charger answered exception code {code} ({exception_name(code)})"
    )


def translate(exc: Exception, where: str, timeout: float) -> ChargerError | None:
    """The `ChargerError` for a failure while doing `where`; None for errors already
    translated and for unexpected ones (bugs, to be seen as such)."""
    if isinstance(exc, ChargerError):
        return None
    if isinstance(exc, DecodeError):
        return ChargerProtocolError(f"{where}: {exc}")
    if isinstance(exc, ConnectionException | OSError):
        return ChargerUnreachable(f"{where}: connection lost ({first_line(exc)})")
    if isinstance(exc, ModbusIOException | TimeoutError):
        return ChargerUnreachable(f"{where}: no answer within {timeout:g} s")
    if isinstance(exc, ModbusException):
        return ChargerProtocolError(f"{where}: {first_line(exc)}")
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, at most 200 characters."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
