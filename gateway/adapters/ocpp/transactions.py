"""OCPP 1.6 transaction ids, which the central system hands out (pure code)."""

from __future__ import annotations

import time


class TransactionRegistry:
    """1.6 transaction ids for the whole central system: unique, and id -> connector.

    StopTransaction carries no connector id, so the registry remembers where each
    transaction runs. Ids start from the clock so that a restarted gateway does not
    hand out ids that a charge point may still hold in its offline queue; they stay in
    the positive int32 range that charge points store.
    """

    MAX_ID = 2**31 - 1

    def __init__(self, first_id: int | None = None) -> None:
        self._next = first_id if first_id is not None else int(time.time()) % 10**9 + 1
        self._open: dict[int, tuple[str, int]] = {}

    def start(self, charge_point_id: str, connector_id: int) -> int:
        """A new id; an older open transaction on the same connector is forgotten."""
        key = (charge_point_id, connector_id)
        for stale in [tx for tx, where in self._open.items() if where == key]:
            del self._open[stale]
        transaction_id = self._next
        self._next = self._next + 1 if self._next < self.MAX_ID else 1
        self._open[transaction_id] = key
        return transaction_id

    def stop(self, transaction_id: int) -> tuple[str, int] | None:
        """Where the transaction ran, or None when the id is unknown."""
        return self._open.pop(transaction_id, None)
