"""OCPP 1.6J: the session class for connections with the `ocpp1.6` subprotocol."""

from gateway.adapters.ocpp.v16.session import V16Session

__all__ = ["V16Session"]
