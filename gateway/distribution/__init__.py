"""Phase-aware, fair EV power distribution: target power and fuse in, current limits out.

Pure code (no I/O, clock passed in). Start with `Distributor.distribute`:

    distributor = Distributor(DistributionConfig())
    allocation = distributor.distribute(11000.0, chargers, phase_limit=32.0, now=t)
    allocation["bay-1"]            # A per phase: 0 or in [min, max], on the step
    allocation.reason("bay-1")     # e.g. "reclaimed: draws 7.9 A, capped at 8.9 A"
    allocation.phase_currents      # A per grid phase, incl. reserves of stale chargers
    allocation.blocked             # EVs that want power but get 0, with a DecisionCode
    allocation.resume["bay-1"]     # ResumeState: "ok", "waking" or "stalled"

Modules, in reading order: `model` (inputs, outputs), `config` (tuning),
`distributor` (the steps of one call), `tracking` (what is learnt per charger),
`admission` (who gets the 6 A floor), `sharing` and `waterfill` (max-min filling).
"""

from gateway.distribution.config import DistributionConfig
from gateway.distribution.distributor import Distributor
from gateway.distribution.model import (
    Allocation,
    ChargerDecision,
    ChargerState,
    DecisionCode,
    PhaseLimit,
    ResumeState,
)

__all__ = [
    "Allocation",
    "ChargerDecision",
    "ChargerState",
    "DecisionCode",
    "DistributionConfig",
    "Distributor",
    "PhaseLimit",
    "ResumeState",
]
