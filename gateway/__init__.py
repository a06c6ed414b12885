"""ev-gateway: an EV-charger pool (Frequenz SDK's EVChargerPool) as a standalone MQTT daemon."""

__version__ = "0.1.0"
