"""Simulated chargers: a pure EV model and Modbus TCP servers serving vendor register maps."""
