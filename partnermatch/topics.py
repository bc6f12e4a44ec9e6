"""Kafka topic names and their partition counts: constants, defined once. No I/O."""

from __future__ import annotations

PROFILES = "profiles"
MATCHES = "matches"
MATCH_DECISIONS = "match-decisions"
# One partition whose first record is the broker's epoch (see partnermatch.broker).
EPOCH = "partnermatch.epoch"


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`: messages that can never be processed."""
    return f"{topic}.dlq"


# Partition counts are final: some brokers (Tansu) cannot add partitions later.
ALL_TOPICS: dict[str, int] = {
    PROFILES: 3,
    MATCHES: 3,
    MATCH_DECISIONS: 3,
    dlq(PROFILES): 1,
    dlq(MATCHES): 1,
    dlq(MATCH_DECISIONS): 1,
}

# Kept for ever: losing the marker to retention would look like a broker that lost its state.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {EPOCH: {"retention.ms": "-1"}}
