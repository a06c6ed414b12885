"""Incoming MQTT messages under load: a bounded queue, and proposals coalesced per source.

Two parts, both free of network code:

- `IngressQueue` is the queue the MQTT client puts received messages in. It is
  bounded; when full the *oldest* message is dropped (the newest proposal from a
  source is the one that counts) and counted in `dropped`, so the bridge can log a
  count instead of a line per message.
- `ProposalInbox` holds, per source, the latest valid proposal of one pool that has
  not been applied yet. Messages are read in batches (everything already received);
  when a source sent several proposals within one batch only the last is applied and
  the earlier ones are *superseded*: each still gets exactly one reply, with
  `"status": "superseded"`, sent on the low-priority lane (dropped first under load).
  Every message is counted as applied, superseded, refused or ignored (empty).
- `read_proposal` turns one message into a reply target and a request or an error,
  and returns None for an empty payload (a cleared retained proposal: no reply).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiomqtt

from gateway.proposals import (
    ProposalError,
    ProposalRequest,
    ReplyTarget,
    check_plausible,
    parse_proposal,
    reply_target,
)

MAX_BATCH = 1000
"""Messages taken from the queue in one go before the batch's proposals are applied."""


class IngressQueue(asyncio.Queue[aiomqtt.Message]):
    """Bounded queue that drops its oldest message when full and counts the drops."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.dropped = 0
        self.received = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        """Queue `item`; when full the oldest message is dropped first (never raises)."""
        self.received += 1
        if self.full():
            self.get_nowait()
            self.dropped += 1
        super().put_nowait(item)

    def batch(self, first: aiomqtt.Message, limit: int = MAX_BATCH) -> list[aiomqtt.Message]:
        """`first` and whatever else is already queued, up to `limit` messages."""
        messages = [first]
        while len(messages) < limit and not self.empty():
            messages.append(self.get_nowait())
        return messages


@dataclass(frozen=True, slots=True)
class ReadProposal:
    """One proposal message read: where to reply, and the request or why it is refused."""

    reply: ReplyTarget
    request: ProposalRequest | None
    error: ProposalError | None


@dataclass(frozen=True, slots=True)
class ProposalRules:
    """What one pool accepts: the longest `expires_in` and the rated power (W)."""

    max_expires_in: float
    rated_power: float


def read_proposal(
    message: aiomqtt.Message, base_topic: str, default_reply: str, rules: ProposalRules
) -> ReadProposal | None:
    """Read a proposal message; None for an empty payload, which gets no reply.

    Never raises: every other payload yields a request or a `ProposalError`. A
    response topic the gateway must not publish to is refused (the reply goes to
    `default_reply` naming the problem) and the proposal is not applied, since a
    client that cannot hear the answer should not steer the pool blind.
    """
    payload = message.payload if isinstance(message.payload, bytes) else b""
    if not payload:
        return None
    reply = reply_target(message, default_reply, base_topic)
    try:
        request = parse_proposal(
            payload, retained=message.retain, max_expires_in=rules.max_expires_in
        )
        check_plausible(request, rules.rated_power)
    except ProposalError as exc:
        return ReadProposal(reply, None, exc)
    if reply.problem is not None:
        error = ProposalError(reply.problem, request.source, request.transaction)
        return ReadProposal(reply, None, error)
    return ReadProposal(reply, request, None)


@dataclass(slots=True)
class InboxCounts:
    """Every proposal message of a pool, by what became of it."""

    applied: int = 0
    superseded: int = 0
    refused: int = 0
    ignored: int = 0

    @property
    def total(self) -> int:
        return self.applied + self.superseded + self.refused + self.ignored


@dataclass(slots=True)
class ProposalInbox:
    """Latest valid proposal per source, waiting to be applied (see module docstring)."""

    pending: dict[str, ReadProposal] = field(default_factory=dict)
    counts: InboxCounts = field(default_factory=InboxCounts)

    def offer(self, item: ReadProposal) -> ReadProposal | None:
        """Keep `item` as its source's latest; return the one it supersedes, if any."""
        assert item.request is not None
        previous = self.pending.pop(item.request.source, None)
        self.pending[item.request.source] = item
        if previous is not None:
            self.counts.superseded += 1
        return previous

    def take(self) -> list[ReadProposal]:
        """Everything pending, in arrival order of each source's latest; empties the inbox."""
        items = list(self.pending.values())
        self.pending.clear()
        self.counts.applied += len(items)
        return items


def superseded_reply(request: ProposalRequest) -> dict[str, object]:
    """Reply body for a proposal replaced by a newer one from its source before use."""
    body: dict[str, object] = {
        "status": "superseded",
        "source": request.source,
        "error": "a newer proposal from the same source arrived before this one was "
        "applied; only the newest is used",
    }
    if request.transaction is not None:
        body["transaction"] = request.transaction
    return body
