"""Reading the broker's epoch marker: only an empty marker topic means the broker lost its state;
a marker that is there but slow to read is an error to retry, never a reason to repair topics."""

from __future__ import annotations

import pytest

from partnermatch import broker


class SilentConsumer:
    """A consumer that never gets a record within the read's deadline."""

    end = 0

    def __init__(self, **_kwargs):
        pass

    def assign(self, _partitions):
        pass

    def seek(self, _tp, _offset):
        pass

    def poll(self, timeout_ms):
        return {}

    def end_offsets(self, partitions):
        return dict.fromkeys(partitions, self.end)

    def close(self):
        pass


@pytest.fixture
def silent(monkeypatch):
    monkeypatch.setattr(broker, "KafkaConsumer", SilentConsumer)
    monkeypatch.setattr(broker.time, "monotonic", iter(range(0, 1000, 1)).__next__)  # the deadline passes at once
    return SilentConsumer


def test_an_empty_marker_topic_reads_as_no_epoch(silent):
    silent.end = 0
    assert broker._first_record("127.0.0.1:9", timeout=1.0) is None


def test_a_marker_that_is_there_but_not_read_in_time_is_an_error_not_a_lost_broker(silent):
    silent.end = 1
    with pytest.raises(broker.BrokerError, match="not read in time"):
        broker._first_record("127.0.0.1:9", timeout=1.0)
