"""The matcher's transactions are packed by hiredis where redis-py's packer would take longer: the
bytes sent must be redis-py's, whatever the arguments (no server needed)."""

from __future__ import annotations

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matcher.adapters.redis_state import _pack

_ARGS = st.one_of(
    st.text(),
    st.binary(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # nan, inf, -0.0, the shortest repr of each
    st.booleans(),  # redis-py refuses them: the fallback must refuse them too
)
_NAMES = st.sampled_from(["SET", "ZADD", "XADD", "MULTI", "EXEC", "HSET", "CLIENT SETNAME"])


def _as_sent(packed: list[bytes] | Exception) -> bytes | str:
    return b"".join(bytes(chunk) for chunk in packed) if isinstance(packed, list) else type(packed).__name__


def _both(commands: list[tuple[object, ...]]) -> tuple[bytes | str, bytes | str]:
    conn = redis.Connection()
    try:
        ours: list[bytes] | Exception = _pack(conn, commands)
    except Exception as error:  # noqa: BLE001 - compared with redis-py's own refusal
        ours = error
    try:
        theirs: list[bytes] | Exception = conn.pack_commands(commands)
    except Exception as error:  # noqa: BLE001
        theirs = error
    return _as_sent(ours), _as_sent(theirs)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, st.lists(_ARGS, max_size=5)), min_size=1, max_size=6))
def test_a_transaction_is_sent_as_the_very_bytes_redis_py_packs(commands: list[tuple[str, list[object]]]) -> None:
    ours, theirs = _both([(name, *args) for name, args in commands])
    assert ours == theirs


def test_a_profile_events_commands_are_packed_as_redis_py_packs_them() -> None:
    record = b'{"pair_id":"a~b","score":0.412345,"reasons":[{"concept":"sector.\xc3\xa9"}]}'
    commands: list[tuple[object, ...]] = [
        ("MULTI",),
        ("HSET", "{matcher}:revisions", "org-\u00e9", 7),
        ("SET", "{matcher}:pair:a~b", record),
        ("ZADD", "{matcher}:pending:org:a", 0.412345, "a~b"),
        ("ZADD", "{matcher}:pending:org:b", 1e-07, "a~b"),
        ("XADD", "{matcher}:outbox", "*", "topic", "matches", "value", record),
        ("INCR", "{matcher}:pairs:written"),
        ("EXEC",),
    ]
    ours, theirs = _both(commands)
    assert isinstance(ours, bytes) and ours == theirs
