"""Install helpers for the real third-party clients the tests run (cached under ~/.cache)."""
