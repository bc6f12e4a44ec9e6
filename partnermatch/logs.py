"""Logging set-up shared by every process: structured fields, text or JSON lines, to stderr.

A line costs little (a line is logged per write and per profile event): the stamp is formatted once
a second, the JSON line is joined from its parts, and records skip what no line prints."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Mapping

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


class _StampOnceASecond:
    """time.strftime(fmt, convert(created)), formatted once for each second (both floor `created`)."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self._fmt, self._convert = fmt, convert
        # One tuple, swapped whole: a thread never pairs one second with another's stamp.
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        second = math.floor(created)
        last = self._last
        if last[0] != second:
            last = (second, time.strftime(self._fmt, self._convert(second)))
            self._last = last
        return last[1]


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._stamp = _StampOnceASecond("%H:%M:%S", time.localtime)

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self._stamp(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = _extra_fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# The line is json.dumps(doc, ensure_ascii=False, default=str) of {"ts", "level", "logger", "msg",
# the extra fields..., "exc"}, byte for byte. Strings, ints, floats, bools and None are written here as
# json writes them; any other value, nested ones included, by json's own encoder.
_json_str = json.encoder.encode_basestring  # json's str writer where ensure_ascii=False (C)
_json_other = json.JSONEncoder(ensure_ascii=False, default=str).encode
_FIXED_KEYS = frozenset({"ts", "level", "logger", "msg", "exc"})


def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return float.__repr__(value)


def _json_value(value: object) -> str:
    kind = type(value)
    if kind is str:
        return _json_str(value)  # type: ignore[arg-type]
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is float:
        return _json_float(value)  # type: ignore[arg-type]
    return _json_other(value)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._stamp = _StampOnceASecond("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        stamp = self._stamp(record.created)
        level, name, msg = record.levelname, record.name, record.getMessage()
        fields = _extra_fields(record)
        if not _FIXED_KEYS.isdisjoint(fields):
            return self._format_as_a_document(record, stamp + "Z", msg, fields)
        line = (
            f'{{"ts": "{stamp}Z", "level": {_json_value(level)}, "logger": {_json_value(name)}, '
            f'"msg": {_json_value(msg)}'
        )
        if fields:
            line += "".join([f", {_json_str(key)}: {_json_value(value)}" for key, value in fields.items()])
        if record.exc_info:
            line += f', "exc": {_json_str(self.formatException(record.exc_info))}'
        return line + "}"

    def _format_as_a_document(self, record: logging.LogRecord, ts: str, msg: str, fields: dict[str, object]) -> str:
        # An extra field named like a fixed one takes the fixed one's place: json.dumps decides.
        doc: dict[str, object] = {"ts": ts, "level": record.levelname, "logger": record.name, "msg": msg}
        doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _LineHandler(logging.StreamHandler):
    """A StreamHandler that flushes under the lock handle() already holds around emit()."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - reported as StreamHandler reports it
            self.handleError(record)


# kafka-python 3 warns when one step of its network loop took over 0.1 s ("Task <...> ran for 0.142s
# (>0.100s threshold). It is blocking the event loop ..."). In our processes that loop shares the
# interpreter with the matcher's and the apps' work in other threads, on two busy cores: a step is
# held up that long with nothing wrong in the loop, many times a minute under load. A step of a
# second or more may well be a fault (the clients' timeouts are some seconds): those stay warnings.
SLOW_KAFKA_STEP_WARNS_S = 1.0
_KAFKA_STEP = re.compile(r"^Task .* ran for (\d+(?:\.\d+)?)s \(>")


def _not_a_short_kafka_step(record: logging.LogRecord) -> bool:
    if record.levelno != logging.WARNING:
        return True
    found = _KAFKA_STEP.search(record.getMessage())
    return found is None or float(found[1]) >= SLOW_KAFKA_STEP_WARNS_S


def _a_cancelled_refresh_is_a_warning(record: logging.LogRecord) -> bool:
    """kafka-python 3 logs an ERROR when a metadata request is cancelled because its connection was
    closed (an idle one, or the broker's clean close); its refresh loop tries again, and its own
    fetcher logs the same cancellation at INFO. Those are warnings here, still seen if they recur;
    every other failure stays an error."""
    args = record.args if isinstance(record.args, tuple) else ()
    if record.msg == "Metadata refresh: failed %s" and len(args) == 1 and type(args[0]).__name__ == "Cancelled":
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
    return True


def configure_logging(env: Mapping[str, str]) -> None:
    from partnermatch.settings import LOG_FORMAT, LOG_LEVEL

    handler = _LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if LOG_FORMAT.read(env) == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((LOG_LEVEL.read(env) or "INFO").upper())
    # kafka-python is chatty at INFO about every connection.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    for name, quieter in (
        ("kafka.net.selector", _not_a_short_kafka_step),
        ("kafka.cluster", _a_cancelled_refresh_is_a_warning),
    ):
        if quieter not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(quieter)
    # No line printed here, nor gunicorn's (asctime, process, levelname, message), shows the caller's
    # file, line or function, the thread or the process name: records skip looking them up (the
    # logging module's documented switches). The process id stays: gunicorn's error log prints it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
