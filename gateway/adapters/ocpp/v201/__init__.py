"""OCPP 2.0.1: the session class for connections with the `ocpp2.0.1` subprotocol."""

from gateway.adapters.ocpp.v201.session import V201Session

__all__ = ["V201Session"]
