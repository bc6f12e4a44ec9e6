"""`partnermatch ledger`, the operators' tool, against a real redis-server: it finds the notifier's
Redis as the other `partnermatch` commands find the local stack (its `.state/stack.env`), needs no
secret key, shows a match and its deliveries, lists the uncertain one and releases it once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher import cli
from services.notifier import domain
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger
from services.notifier.entrypoints import ledger as ledger_cli

NOW = 1_800_000_000.0
PAIR = "org-a~org-b"


@pytest.fixture
def stack_env(redis_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A folder whose `.state/stack.env` names the test's Redis, as `partnermatch up` writes it; the
    process's own environment names none."""
    for name in ("REDIS_URL", "NOTIFIER_REDIS_URL", "PARTNERMATCH_STATE_DIR", "NOTIFIER_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "stack.env").write_text(f"REDIS_URL={redis_server.url}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def an_uncertain_delivery(ledger: RedisDeliveryLedger) -> str:
    """An approved match whose one email a worker was sending when it died: its id."""
    assert ledger.record_match(PAIR, "ev-1", {"pair_id": PAIR, "org_a": "org-a", "org_b": "org-b"}, NOW)
    assert ledger.claim(f"m:{PAIR}", "t0", NOW) == 1
    email = "jelena@example.rs"
    new = NewDelivery(
        id=domain.delivery_id(PAIR, email),
        org_id="org-a",
        partner_id="org-b",
        side="a",
        recipient=domain.recipient_key(email),
    )
    assert ledger.expand(PAIR, "t0", NOW, [new]) == 1
    [member] = ledger.due(NOW)
    assert ledger.claim(member, "t1", NOW) == 1
    assert ledger.transition(member, "t1", domain.SENDING, NOW)
    assert ledger.transition(member, "t1", domain.UNCERTAIN, NOW)
    return new.id


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["ledger", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_operator_finds_the_uncertain_email_of_a_match_and_releases_it_once(
    stack_env, redis_client, capsys: pytest.CaptureFixture[str]
):
    ledger = RedisDeliveryLedger(redis_client)
    code, out, err = run(capsys, "stats")
    assert (code, err) == (0, "")
    assert json.loads(out)["uncertain_now"] == 0

    delivery_id = an_uncertain_delivery(ledger)
    code, out, _ = run(capsys, "stats")
    assert code == 0 and json.loads(out)["uncertain_now"] == 1

    code, out, _ = run(capsys, "show", PAIR)
    shown = json.loads(out)
    assert code == 0
    assert shown["match"]["pair_id"] == PAIR and shown["finished"] is False
    assert [(d["id"], d["state"]) for d in shown["deliveries"]] == [(delivery_id, domain.UNCERTAIN)]

    code, out, _ = run(capsys, "uncertain")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [delivery_id]

    code, out, _ = run(capsys, "release", delivery_id)
    assert code == 0 and f"{delivery_id} released" in out
    assert ledger.delivery(delivery_id)["state"] == domain.PENDING
    assert ledger.due(NOW + 10**9) == [ledger.delivery_member(delivery_id)], "a worker sends it again"
    code, out, _ = run(capsys, "uncertain")
    assert (code, out) == (0, "")

    code, _, err = run(capsys, "release", delivery_id)
    assert code == 1 and "is not uncertain; nothing changed" in err
    assert ledger.delivery(delivery_id)["state"] == domain.PENDING


def test_an_unknown_pair_and_an_unreachable_ledger_say_so_in_one_line(
    stack_env, redis_client, capsys: pytest.CaptureFixture[str]
):
    code, out, err = run(capsys, "show", "org-x~org-y")
    assert (code, out) == (1, "")
    assert err.strip() == "partnermatch ledger: no match org-x~org-y in the ledger (never approved, or not yet read)"

    # the module's own entry point (where the console script is not installed); then an address
    # where no Redis listens
    assert ledger_cli.main(["stats"]) == 0
    capsys.readouterr()
    args = cli.build_parser("ledger").parse_args(["ledger", "stats"])
    code = ledger_cli.run(args, env={"REDIS_URL": "redis://127.0.0.1:1/0"})  # nothing listens on port 1
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("partnermatch ledger: failed against redis://127.0.0.1:1/0: ") and err.count("\n") == 1
