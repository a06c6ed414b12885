"""Modbus chargers: register-map profiles (data), pure decoding, and the TCP adapter."""
