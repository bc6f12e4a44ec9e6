"""The log lines operators read keep their exact shape: the formatters of partnermatch.logs against
literal lines, and against the formatters as they were before they were made cheaper (kept below
as the reference), for any fields hypothesis can think of."""

from __future__ import annotations

import enum
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnermatch import logs

# ---- the reference: the formatters as they were (partnermatch/logs.py at 4be6bce) --------------

_REF_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _ref_extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _REF_RESERVED and not k.startswith("_")}


class ReferenceText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = _ref_extra_fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class ReferenceJson(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_ref_extra_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


# ---- helpers -------------------------------------------------------------------------------------

# 2026-12-06T07:11:47.250Z
CREATED = 1796541107.25


def record(
    msg: str = "organisation registered",
    args: tuple[Any, ...] = (),
    extra: dict[str, Any] | None = None,
    level: int = logging.INFO,
    name: str = "services.profiles.services",
    created: float = CREATED,
    exc_info: Any = None,
) -> logging.LogRecord:
    rec = logging.getLogger(name).makeRecord(name, level, "services.py", 190, msg, args, exc_info, extra=extra)
    rec.created = created
    return rec


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


class Tone(enum.StrEnum):
    WARM = "warm"


class Odd:
    def __str__(self) -> str:
        return 'odd "thing"\n'


@pytest.fixture
def utc_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---- literal lines -------------------------------------------------------------------------------

TYPICAL = {"org_id": "o-1f3a", "cluster_id": "c-9", "language": "de", "event_id": "e-77", "revision": 3}


def test_a_json_line_has_this_exact_shape() -> None:
    line = logs.JsonFormatter().format(record(extra=TYPICAL))
    assert line == (
        '{"ts": "2026-12-06T07:11:47Z", "level": "INFO", "logger": "services.profiles.services", '
        '"msg": "organisation registered", "org_id": "o-1f3a", "cluster_id": "c-9", "language": "de", '
        '"event_id": "e-77", "revision": 3}'
    )


def test_a_text_line_has_this_exact_shape(utc_local_time: None) -> None:
    line = logs.TextFormatter().format(record(extra=TYPICAL))
    assert line == (
        "07:11:47 INFO    services.profiles.services: organisation registered "
        "org_id=o-1f3a cluster_id=c-9 language=de event_id=e-77 revision=3"
    )


def test_a_json_line_renders_odd_values_as_the_json_module_does() -> None:
    extra = {
        "quote": 'say "hi"\\ now\n\t\x00\x1f\x7f é ü 中 \u2028 😀 \ud800',
        "big": 10**30,
        "negative": -(2**64),
        "ratio": 1e16,
        "tiny": 1e-07,
        "nan": math.nan,
        "inf": -math.inf,
        "flag": True,
        "none": None,
        "ids": ["a", 1, 2.5, None],
        "nested": {1: "x", None: [True], 2.5: {"k": Odd()}},
        "when": datetime(2026, 12, 6, 7, 11, 47, tzinfo=UTC),
        "colour": Colour.RED,
        "size": Size.BIG,
        "tone": Tone.WARM,
        "amount": Decimal("1.10"),
        "odd": Odd(),
        "raw": b"\x00ab",
        "pair": ("a", 1),
    }
    line = logs.JsonFormatter().format(record(extra=extra))
    assert line == (
        '{"ts": "2026-12-06T07:11:47Z", "level": "INFO", "logger": "services.profiles.services", '
        '"msg": "organisation registered", '
        '"quote": "say \\"hi\\"\\\\ now\\n\\t\\u0000\\u001f\x7f é ü 中 \u2028 😀 \ud800", '
        '"big": 1000000000000000000000000000000, "negative": -18446744073709551616, '
        '"ratio": 1e+16, "tiny": 1e-07, "nan": NaN, "inf": -Infinity, "flag": true, "none": null, '
        '"ids": ["a", 1, 2.5, null], '
        '"nested": {"1": "x", "null": [true], "2.5": {"k": "odd \\"thing\\"\\n"}}, '
        '"when": "2026-12-06 07:11:47+00:00", "colour": "Colour.RED", "size": 3, "tone": "warm", '
        '"amount": "1.10", "odd": "odd \\"thing\\"\\n", "raw": "b\'\\\\x00ab\'", "pair": ["a", 1]}'
    )
    assert line == ReferenceJson().format(record(extra=extra))


def test_an_extra_named_like_a_fixed_field_replaces_it_in_place_as_before() -> None:
    for extra in ({"level": 5, "org_id": "o"}, {"ts": "then"}, {"logger": None}, {"exc": "mine"}):
        rec = record(extra=extra)
        assert logs.JsonFormatter().format(rec) == ReferenceJson().format(rec)
    assert logs.JsonFormatter().format(record(extra={"level": 5})) == (
        '{"ts": "2026-12-06T07:11:47Z", "level": 5, "logger": "services.profiles.services", '
        '"msg": "organisation registered"}'
    )


def test_a_message_with_arguments_and_an_exception_reads_as_before(utc_local_time: None) -> None:
    try:
        raise ValueError('bad "value"\nsecond line')
    except ValueError:
        exc_info = sys.exc_info()
    for rec in (
        record("took %s ms for %d", args=("12.5", 3), extra={"org_id": "o"}, exc_info=exc_info),
        record("%(a)s and %(b)s", args=({"a": 1, "b": "two"},), level=logging.WARNING),
        record("no extras", level=logging.ERROR, exc_info=exc_info),
    ):
        assert logs.JsonFormatter().format(rec) == ReferenceJson().format(rec)
        assert logs.TextFormatter().format(rec) == ReferenceText().format(rec)
    line = logs.JsonFormatter().format(record("boom", exc_info=exc_info))
    doc = json.loads(line)
    assert list(doc) == ["ts", "level", "logger", "msg", "exc"]
    assert doc["exc"].startswith("Traceback (most recent call last):")


def test_the_stamp_follows_the_clock_across_seconds_and_days(utc_local_time: None) -> None:
    json_formatter, text_formatter = logs.JsonFormatter(), logs.TextFormatter()
    # Back and forth over second, minute and day edges, and just below a whole second.
    for created in (
        CREATED,
        CREATED + 0.749,
        CREATED + 0.75,
        CREATED - 0.251,
        1796601599.999999,
        1796601600.0,
        1796601599.5,
        0.0,
        CREATED,
        1796601600.000001,
    ):
        rec = record(created=created)
        assert json_formatter.format(rec) == ReferenceJson().format(rec)
        assert text_formatter.format(rec) == ReferenceText().format(rec)


def test_the_text_stamp_is_local_time() -> None:
    rec = record()
    assert logs.TextFormatter().format(rec) == ReferenceText().format(rec)
    assert logs.TextFormatter().format(rec).startswith(time.strftime("%H:%M:%S ", time.localtime(CREATED)))


# ---- any fields ----------------------------------------------------------------------------------

_keys = st.text(min_size=1, max_size=12).filter(lambda k: k not in _REF_RESERVED and not k.startswith("_"))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.text(st.characters(blacklist_categories=()), max_size=8)
    | st.sampled_from([Colour.RED, Size.BIG, Tone.WARM, Decimal("2.50"), Odd(), b"x\xff"])
)
_any_keys = st.text(max_size=5) | st.integers() | st.none() | st.booleans()


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return inner | st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(_any_keys, inner, max_size=3)


# Values nested two deep (written out: st.recursive's check of its extend function misfires here).
_values = _nested(_nested(_scalars))


@settings(max_examples=400, deadline=None)
@given(
    msg=st.text() | st.text(st.characters(blacklist_categories=())),
    name=st.text(min_size=1, max_size=20),
    extra=st.dictionaries(_keys | st.sampled_from(["ts", "level", "logger", "exc"]), _values, max_size=6),
    created=st.floats(min_value=0, max_value=4e9),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 15]),
)
def test_any_fields_give_the_line_they_gave_before(
    msg: str, name: str, extra: dict[str, Any], created: float, level: int
) -> None:
    rec = record(msg, extra=extra, name=name, created=created, level=level)
    assert logs.JsonFormatter().format(rec) == ReferenceJson().format(rec)
    assert logs.TextFormatter().format(rec) == ReferenceText().format(rec)


# ---- through the real set-up ---------------------------------------------------------------------


@pytest.fixture
def configured(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """configure_logging as a service runs it (to stderr, captured here); the logging module's state put
    back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("kafka").level)
    saved_flags = {
        name: getattr(logging, name) for name in ("_srcfile", "logThreads", "logMultiprocessing", "logProcesses")
    }
    yield lambda: capsys.readouterr().err
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("kafka").setLevel(saved[2])
    for name, value in saved_flags.items():
        setattr(logging, name, value)


def test_configured_json_logging_writes_one_exact_line_per_call(configured: Callable[[], str]) -> None:
    logs.configure_logging({"LOG_FORMAT": "json"})
    log = logging.getLogger("services.profiles.services")
    log.info("organisation updated", extra={"org_id": "o-1", "revision": 4})
    log.debug("not at INFO")
    log.warning("slow %s", "redis", extra={"ms": 12.5})
    lines = configured().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {"ts": first["ts"], "level": "INFO", "logger": "services.profiles.services",
                     "msg": "organisation updated", "org_id": "o-1", "revision": 4}  # fmt: skip
    assert second["msg"] == "slow redis" and second["level"] == "WARNING" and second["ms"] == 12.5
    assert lines[0].endswith('"msg": "organisation updated", "org_id": "o-1", "revision": 4}')
    stamp = datetime.strptime(first["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - time.time()) < 5


def test_configured_text_logging_writes_one_exact_line_per_call(configured: Callable[[], str]) -> None:
    logs.configure_logging({})
    logging.getLogger("matcher.live").info("profile event applied", extra={"org_id": "o-2", "pairs": 7})
    (line,) = configured().splitlines()
    assert line[8:] == " INFO    matcher.live: profile event applied org_id=o-2 pairs=7"
    time.strptime(line[:8], "%H:%M:%S")


def test_records_still_carry_the_process_id_for_gunicorn_s_error_log(configured: Callable[[], str]) -> None:
    import os

    logs.configure_logging({"LOG_FORMAT": "json"})
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    gunicorn_error = logging.getLogger("gunicorn.error.test")
    gunicorn_error.addHandler(Keep())
    gunicorn_error.propagate = False
    try:
        gunicorn_error.info("Booting worker")
    finally:
        gunicorn_error.handlers.clear()
    assert seen[0].process == os.getpid()
    line = logging.Formatter(r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s").format(seen[0])
    assert f"[{os.getpid()}] [INFO] Booting worker" in line


def test_a_line_that_cannot_be_made_is_reported_as_logging_reports_it(configured: Callable[[], str]) -> None:
    logs.configure_logging({"LOG_FORMAT": "json"})
    log = logging.getLogger("services.profiles.services")
    log.info("count %d", "not a number")
    log.info("after", extra={"org_id": "o-3"})
    out = configured()
    assert "--- Logging error ---" in out and "TypeError" in out
    assert out.splitlines()[-1].endswith('"msg": "after", "org_id": "o-3"}')


def test_kafka_s_short_slow_steps_are_not_warned_about_but_long_ones_are(configured: Callable[[], str]) -> None:
    logs.configure_logging({})
    selector = logging.getLogger("kafka.net.selector")
    message = "Task %r ran for %.3fs (>%.3fs threshold). It is blocking the event loop -- likely a tight sync loop."
    selector.warning(message % ("<Task poll>", 0.142, 0.1))
    selector.warning(message % ("<Task poll>", 2.5, 0.1))
    selector.warning("Node 1 connection failed")
    lines = configured().splitlines()
    assert len(lines) == 2, lines
    assert "ran for 2.500s" in lines[0] and "Node 1 connection failed" in lines[1]


def test_a_metadata_refresh_cancelled_with_its_connection_is_a_warning_not_an_error(
    configured: Callable[[], str],
) -> None:
    from kafka import errors

    logs.configure_logging({})
    cluster = logging.getLogger("kafka.cluster")
    cluster.error("Metadata refresh: failed %s", errors.Cancelled())
    cluster.error("Metadata refresh: failed %s", errors.KafkaConnectionError("refused"))
    cancelled, refused = configured().splitlines()
    assert "WARNING" in cancelled and "Cancelled" in cancelled, "still seen, should it recur"
    assert "ERROR" in refused and "refused" in refused
