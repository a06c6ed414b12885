"""TLS settings of an MQTT connection, from `[mqtt] tls`, for every client we open."""

from __future__ import annotations

import ssl

import aiomqtt

from gateway.config import MqttConfig


def tls_parameters(config: MqttConfig) -> aiomqtt.TLSParameters | None:
    """aiomqtt's TLS parameters (server certificate always verified), or None for plain TCP."""
    if config.tls is None:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
        certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
        keyfile=str(config.tls.key_file) if config.tls.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
