"""Who owns a charger at run time: one `ChargerRuntime` per configured charger.

The runtime owns the adapter, the charger's capabilities, its poll and keepalive
tasks, its latest sample, its status and the limit last written to it. Pools,
controllers, telemetry and the distributor ask it; nothing else rebuilds charger
facts from the config.
"""

from gateway.chargers.capabilities import Capabilities
from gateway.chargers.runtime import ChargerRuntime, WriteOutcome

__all__ = ["Capabilities", "ChargerRuntime", "WriteOutcome"]
