"""`partnermatch match`: the contract the evaluation uses, and its errors for bad input."""

from __future__ import annotations

import json

import pytest

from launcher.cli import main
from services.matcher import batch
from services.matcher.engine import MatchEngine


@pytest.fixture(autouse=True)
def _small_lexicon(monkeypatch, mini_lexicon):
    monkeypatch.setattr("services.matcher.engine.MatchEngine", lambda: MatchEngine(mini_lexicon))


ORGS = [
    {
        "id": "pl-soft",
        "name": "Soft",
        "cluster": "pl-ict",
        "country": "PL",
        "language": "pl",
        "capabilities": "Tworzenie oprogramowania.",
        "goals": "Szukamy partnerów z rolnictwa.",
        "extra": [1, 2],
    },
    {
        "id": "rs-fruit",
        "name": "Voćar",
        "cluster": "rs-agro",
        "country": "RS",
        "capabilities": "Prerada voća, poljoprivreda.",
        "goals": "Tražimo softver.",
    },
    {
        "id": "rs-soft",
        "name": "Софтвер",
        "cluster": "rs-ict",
        "country": "RS",
        "language": "sr",
        "capabilities": "Развој софтвера.",
        "goals": "",
    },
]


def _write(tmp_path, lines):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_one_output_line_per_organisation_in_input_order_best_first(tmp_path):
    src = _write(tmp_path, [json.dumps(o, ensure_ascii=False) for o in ORGS])
    out = tmp_path / "out.jsonl"
    assert main(["match", "--input", str(src), "--top", "2", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["pl-soft", "rs-fruit", "rs-soft"]
    for row in rows:
        assert len(row["suggestions"]) <= 2
        scores = [s["score"] for s in row["suggestions"]]
        assert scores == sorted(scores, reverse=True)
        assert all(s["id"] != row["id"] for s in row["suggestions"])
    # each list starts with a need met, and its first reason says so: the fruit processor's need
    # for software (both others make it), the software house's for agriculture (the fruit processor)
    fruit_first, soft_first = rows[1]["suggestions"][0], rows[0]["suggestions"][0]
    assert fruit_first["id"] in ("pl-soft", "rs-soft")
    assert soft_first["id"] == "rs-fruit"
    for first, sector in ((fruit_first, "ict"), (soft_first, "agrifood")):
        assert first["reasons"], "every suggestion carries its reasons"
        reason = first["reasons"][0]
        assert (reason["concept"].split(".")[0], reason["direction"]) == (sector, "b_offers_a_seeks"), reason


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"id": "a", "capabilities": "x"}', "{not json"], "line 2: not valid JSON"),
        (['{"name": "no id"}'], 'line 1: missing or empty "id"'),
        (['{"id": "a"}', '{"id": "a"}'], "line 2: duplicate id 'a' (first on line 1)"),
        (['{"id": "a", "capabilities": ["x"]}'], 'line 1: "capabilities" must be a string'),
        (['["a", "b"]'], "line 1: expected a JSON object"),
        (['{"id": "a"}', '{"id": "b", "offers": "ict"}'], 'line 2: "offers" must be a list of strings, got str'),
        (['{"id": "a", "seeks": {"ict": 1}}'], 'line 1: "seeks" must be a list of strings, got dict'),
        (['{"id": "a", "seeks": ["ict", 7]}'], 'line 1: "seeks" must be a list of strings, has 7 (int)'),
        (
            ['{"id": "a", "seeks_countries": ["PL", null]}'],
            'line 1: "seeks_countries" must be a list of strings, has null (NoneType)',
        ),
    ],
)
def test_a_malformed_line_is_a_clear_error_with_exit_code_2(tmp_path, capsys, lines, expected):
    src = _write(tmp_path, lines)
    out = tmp_path / "out.jsonl"
    assert main(["match", "--input", str(src), "--top", "3", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not out.exists(), "no half-written output"
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_missing_input_file_is_a_clear_error(tmp_path, capsys):
    assert main(["match", "--input", str(tmp_path / "nope.jsonl"), "--top", "3", "--output", "-"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_input_that_is_not_utf8_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "a", "capabilities": "\xff\xfe"}\n')
    assert main(["match", "--input", str(src), "--top", "3", "--output", str(tmp_path / "o")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_reading_keeps_numeric_ids_and_ignores_extra_fields():
    import io

    profiles = batch.read_organisations(io.StringIO('{"id": 7, "capabilities": "x", "whatever": {}}\n'))
    assert profiles[0].id == "7" and profiles[0].goals == ""


def test_reading_takes_the_optional_needs_as_tuples_and_repeats_once():
    import io

    lines = [
        json.dumps(
            {
                "id": "a",
                "offers": ["ict.software", "ict", "ict.software"],
                "seeks": ["agrifood"],
                "seeks_countries": ["PL", "DE"],
            }
        ),
        json.dumps({"id": "b", "offers": None, "seeks": []}),
    ]
    a, b = batch.read_organisations(io.StringIO("\n".join(lines)))
    assert (a.offers, a.seeks, a.seeks_countries) == (("ict.software", "ict"), ("agrifood",), ("PL", "DE"))
    assert (b.offers, b.seeks, b.seeks_countries) == ((), (), ())


def test_unknown_needs_are_kept_with_one_warning_for_the_whole_file(caplog):
    import io
    import logging

    lines = [
        json.dumps(
            {
                "id": str(i),
                "offers": ["ict", "rocket-science"],
                "seeks": ["agrifod"],
                "seeks_countries": ["PL", "Poland"],
            }
        )
        for i in range(3)
    ]
    with caplog.at_level(logging.WARNING, logger=batch.__name__):
        profiles = batch.read_organisations(io.StringIO("\n".join(lines)))
    assert [p.offers for p in profiles] == [("ict", "rocket-science")] * 3
    assert profiles[0].seeks == ("agrifod",) and profiles[0].seeks_countries == ("PL", "Poland")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.ids == ["agrifod", "rocket-science", "Poland"] and warning.count == 3


def test_known_needs_give_no_warning(caplog):
    import io
    import logging

    with caplog.at_level(logging.WARNING, logger=batch.__name__):
        batch.read_organisations(
            io.StringIO(
                json.dumps(
                    {
                        "id": "a",
                        "offers": ["ict.software"],
                        "seeks": ["logistics.cold_chain"],
                        "seeks_countries": ["RS"],
                    }
                )
            )
        )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_needs_in_the_input_reach_the_output_run(tmp_path):
    orgs = [{**o, "offers": ["ict.software"], "seeks": ["agrifood"], "seeks_countries": ["RS"]} for o in ORGS]
    src = _write(tmp_path, [json.dumps(o, ensure_ascii=False) for o in orgs])
    out = tmp_path / "out.jsonl"
    assert main(["match", "--input", str(src), "--top", "2", "--output", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [o["id"] for o in ORGS]


def test_workers_below_one_is_a_clear_error(tmp_path, capsys):
    src = _write(tmp_path, [json.dumps(ORGS[0])])
    assert main(["match", "--input", str(src), "--top", "2", "--output", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_output_lines_are_exactly_what_json_dumps_writes():
    from services.matcher.engine.engine import Reason, Suggestion

    reason = Reason(None, "term", "shared", 1 / 3, ('quote " and \\ backslash',), ("ćirilica", "кириллица"))
    cases = [
        ("plain", []),
        ("id \u2028 with a line separator", [Suggestion("b", 0.12345678, (reason,)), Suggestion("c", 2.0, ())]),
        (
            "x",
            [
                Suggestion(
                    "y",
                    1e-7,
                    (Reason("ict.software", "activity", "a_offers_b_seeks", 0.5, ("software",), ("softver",)),),
                )
            ],
        ),
    ]
    line = batch.LineWriter()
    for org_id, suggestions in cases:
        expected = (
            json.dumps({"id": org_id, "suggestions": [s.to_dict() for s in suggestions]}, ensure_ascii=False) + "\n"
        )
        assert line(org_id, suggestions) == expected
        assert line(org_id, suggestions) == expected  # again, from the strings it keeps


def test_matching_in_two_processes_writes_the_same_file_as_one(tmp_path):
    # In fresh interpreters (forking is refused where other threads run, as they may in pytest),
    # with the real lexicon, on the dev set: the second half is matched and written by a child.
    # The two runs hash strings differently, as two runs do: nothing may follow a set's order.
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    src = tmp_path / "dev.jsonl"
    src.write_text(
        "".join(p.read_text(encoding="utf-8") for p in sorted((root / "tests/data/devset").glob("*.jsonl"))),
        encoding="utf-8",
    )
    outputs = []
    for workers, seed in (("1", "1"), ("2", "2")):
        out = tmp_path / f"out-{workers}.jsonl"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                ("import sys; from launcher.cli import main; sys.exit(main(sys.argv[1:]))"),
                "match",
                "--input",
                str(src),
                "--output",
                str(out),
                "--top",
                "5",
                "--workers",
                workers,
            ],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    given = [json.loads(line)["id"] for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(given) > 300, "the dev set is read"
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(given), "one line for each organisation"
    assert all(json.loads(line)["suggestions"] for line in lines)


_FAILING_CHILD = """
import sys
from launcher.cli import main
from services.matcher import batch

def broken(*args):
    raise MemoryError("simulated")

batch._child_part = broken  # the forked child inherits it
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_worker_process_is_a_clear_error_and_leaves_no_output(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    src = _write(tmp_path, [json.dumps(o, ensure_ascii=False) for o in ORGS])
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _FAILING_CHILD,
            "match",
            "--input",
            str(src),
            "--output",
            str(out),
            "--top",
            "2",
            "--workers",
            "2",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "partnermatch match: matching failed in partnermatch-match-1" in done.stderr
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_edge_inputs_give_one_line_each_and_only_suggestions_with_reasons(tmp_path, workers):
    cases = {
        "empty": [],
        "one": [{"id": "a", "cluster": "x", "capabilities": "Tworzenie oprogramowania."}],
        "one cluster": [
            {"id": "a", "cluster": "x", "capabilities": "Tworzenie oprogramowania."},
            {"id": "b", "cluster": "x", "capabilities": "Razvoj softvera."},
        ],
        "no text": [
            {"id": "a", "cluster": "x"},
            {"id": "b", "cluster": "y", "capabilities": "", "goals": ""},
            {"id": 'c"q', "cluster": "z", "capabilities": "Tworzenie oprogramowania."},
        ],
    }
    for name, orgs in cases.items():
        src = _write(tmp_path, [json.dumps(o) for o in orgs]) if orgs else tmp_path / "in.jsonl"
        if not orgs:
            src.write_text("", encoding="utf-8")
        out = tmp_path / "out.jsonl"
        assert main(["match", "--input", str(src), "--top", "10", "--output", str(out), "--workers", workers]) == 0
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["id"] for r in rows] == [o["id"] for o in orgs], name
        for row in rows:
            assert all(s["score"] > 0 and s["reasons"] for s in row["suggestions"]), (name, row)
    assert rows[0]["suggestions"] == [] and rows[1]["suggestions"] == []  # nothing in common with anyone


_FAILING_PARENT = """
import sys
from launcher.cli import main
from services.matcher import batch

real = batch._write_part

def broken(*args, **kwargs):
    if kwargs.get("progress") is not None or (len(args) > 6 and args[6] is not None):
        raise OSError(28, "No space left on device")  # this process's own part
    return real(*args, **kwargs)

batch._write_part = broken
sys.exit(main(sys.argv[1:]))
"""


def test_a_failure_in_this_process_stops_the_workers_and_leaves_nothing_behind(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    src = _write(tmp_path, [json.dumps(o, ensure_ascii=False) for o in ORGS])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _FAILING_PARENT,
            "match",
            "--input",
            str(src),
            "--output",
            str(out_dir / "out.jsonl"),
            "--top",
            "2",
            "--workers",
            "2",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "No space left on device" in done.stderr
    assert list(out_dir.iterdir()) == []  # no output, no .partial, no workers' temporary folder
