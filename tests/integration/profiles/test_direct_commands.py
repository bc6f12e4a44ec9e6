"""DirectCommands (partnermatch.redis_client): the API's writes sent on a connection of their own
give what redis-py gives, and every way they cannot be sent so goes through redis-py instead."""

from __future__ import annotations

import os

import pytest
import redis

from partnermatch.redis_client import DirectCommands

COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def test_replies_are_redis_pys_undecoded_replies(redis_client):
    redis_client.set("k", "värde", ex=100)
    direct = DirectCommands(redis_client)
    assert direct.round_trip((("GET", "k"), ("TTL", "k"), ("GET", "missing"))) == [
        "värde".encode(),
        redis_client.ttl("k"),
        None,
    ]
    script = redis_client.register_script(COUNT)
    assert direct.script(script, ["n"], [5]) == 5
    assert direct.script(script, ["n"], [b"2"]) == 7 == int(redis_client.get("n"))


def test_a_script_the_server_lacks_is_loaded_by_redis_py(redis_client):
    script = redis_client.register_script(COUNT)
    redis_client.script_flush()
    assert DirectCommands(redis_client).script(script, ["n"], [3]) == 3
    assert redis_client.script_exists(script.sha) == [True]


def test_an_error_reply_is_raised_after_every_reply_was_read(redis_client):
    redis_client.hset("h", "f", "v")
    direct = DirectCommands(redis_client)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        direct.round_trip((("GET", "h"), ("SET", "after", "1")))
    assert redis_client.get("after") == b"1"
    assert direct.round_trip((("GET", "after"),)) == [b"1"]  # the connection is in step


def test_arguments_it_does_not_send_are_left_to_redis_py(redis_client):
    direct = DirectCommands(redis_client)
    assert direct.round_trip((("SET", "k", 1.5),)) is None
    assert direct.round_trip((("SET", "k", True),)) is None
    assert redis_client.get("k") is None


def test_a_failed_connection_is_dropped_and_the_command_left_to_redis_py(redis_client):
    direct = DirectCommands(redis_client)
    assert direct.round_trip((("SET", "k", "1"),)) == [b"OK"]  # as Redis answers: no response callbacks
    killed = held_id(redis_client, direct._connection())
    redis_client.client_kill_filter(_id=killed)
    assert direct.round_trip((("GET", "k"),)) is None  # the server closed it: not sent this way
    assert direct.round_trip((("GET", "k"),)) == [b"1"]  # on a connection made anew
    assert held_id(redis_client, direct._connection()) != killed


def test_a_forked_child_takes_a_connection_of_its_own(redis_client):
    direct = DirectCommands(redis_client)
    direct.round_trip((("SET", "k", "1"),))
    parents = direct._connection()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        ok = direct.round_trip((("INCR", "k"),)) == [2] and direct._connection() is not parents
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert direct.round_trip((("GET", "k"),)) == [b"2"]
    assert direct._connection() is parents


def test_a_cluster_client_goes_by_redis_py(redis_cluster_client):
    script = redis_cluster_client.register_script(COUNT)
    direct = DirectCommands(redis_cluster_client)
    assert direct.round_trip((("GET", "k"),)) is None
    assert direct.script(script, ["{t}n"], [4]) == 4


def held_id(client: redis.Redis, connection: object) -> int:
    port = connection._sock.getsockname()[1]  # type: ignore[attr-defined]
    return next(c["id"] for c in client.client_list() if c["addr"].endswith(f":{port}"))


def test_arguments_are_written_as_redis_pys_encoder_writes_them(redis_client):
    direct = DirectCommands(redis_client)
    assert direct.round_trip((("SET", "k", -12345678901234567890),)) == [b"OK"]
    assert redis_client.get("k") == b"-12345678901234567890"
    assert direct.round_trip((("SET", "k", "Ђурђевак ✓"),)) == [b"OK"]
    assert redis_client.get("k") == "Ђурђевак ✓".encode()
    with pytest.raises(UnicodeEncodeError):  # as redis-py's encoder refuses it
        direct.round_trip((("SET", "k", "\ud800"),))
    assert direct.round_trip((("GET", "k"),)) == ["Ђурђевак ✓".encode()]
