"""The notifier's settings: working local defaults, secrets marked secret, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.settings_table import all_settings
from partnermatch.settings import SettingError
from services.notifier.config import MailSinkSettings, NotifierSettings


def test_defaults_work_for_a_local_run():
    s = NotifierSettings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert s.redis_url == "redis://127.0.0.1:1/0"
    assert s.profiles_url == "http://127.0.0.1:8081"
    assert s.public_url == "http://127.0.0.1:8083"
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls) == ("127.0.0.1", 2525, False)
    assert s.group_id == "notifier"
    assert s.sender_address.domain == "partnermatch.localhost"


def test_the_notifiers_own_redis_wins_over_the_shared_one():
    s = NotifierSettings.from_env({"REDIS_URL": "redis://a:1/0", "NOTIFIER_REDIS_URL": "redis://b:2/0"})
    assert s.redis_url == "redis://b:2/0"


def test_a_bad_sender_is_named_at_start_up():
    for bad in ["not an address", "a@example.org, b@example.org", "nobody@"]:
        with pytest.raises(SettingError, match="NOTIFIER_FROM"):
            NotifierSettings.from_env({"NOTIFIER_FROM": bad})


def test_a_bad_number_is_named():
    with pytest.raises(SettingError, match="NOTIFIER_SMTP_PORT"):
        NotifierSettings.from_env({"NOTIFIER_SMTP_PORT": "smtp"})


def test_finished_matches_are_kept_thirty_days_unless_told_and_only_a_time_redis_can_expire():
    assert NotifierSettings.from_env({}).ledger_keep_s == 30 * 86400
    assert NotifierSettings.from_env({"NOTIFIER_LEDGER_KEEP_DAYS": "0"}).ledger_keep_s == 0
    assert NotifierSettings.from_env({"NOTIFIER_LEDGER_KEEP_DAYS": "1.5"}).ledger_keep_s == 129600
    assert NotifierSettings.from_env({"NOTIFIER_LEDGER_KEEP_DAYS": "0.000001"}).ledger_keep_s == 1
    for bad in ["-1", "a month", "nan", "inf", "1e12"]:
        with pytest.raises(SettingError, match="NOTIFIER_LEDGER_KEEP_DAYS"):
            NotifierSettings.from_env({"NOTIFIER_LEDGER_KEEP_DAYS": bad})


def test_missing_secrets_are_named():
    s = NotifierSettings.from_env({})
    with pytest.raises(SettingError, match="NOTIFIER_SECRET_KEY"):
        s.require_secret_key()
    with pytest.raises(SettingError, match="PARTNERMATCH_SERVICE_TOKEN"):
        s.require_service_token()


def test_starttls_reads_the_usual_spellings_of_true():
    assert NotifierSettings.from_env({"NOTIFIER_SMTP_STARTTLS": "true"}).smtp_starttls
    assert NotifierSettings.from_env({"NOTIFIER_SMTP_STARTTLS": "1"}).smtp_starttls
    assert not NotifierSettings.from_env({"NOTIFIER_SMTP_STARTTLS": "no"}).smtp_starttls


def test_secrets_are_declared_secret_and_no_setting_is_for_tests_only():
    declared = all_settings()
    assert declared["NOTIFIER_SECRET_KEY"].secret and declared["NOTIFIER_SMTP_PASSWORD"].secret
    assert declared["NOTIFIER_SECRET_KEY"].default is None
    assert not [name for name, s in declared.items() if "_TEST_" in name or "TESTS ONLY" in s.help.upper()]
    ours = [s for n, s in declared.items() if n.startswith(("NOTIFIER_", "MAILSINK_"))]
    assert all(s.help for s in ours)


def test_the_mail_sink_writes_under_the_state_folder_by_default():
    s = MailSinkSettings.from_env({"PARTNERMATCH_STATE_DIR": "/tmp/pm-state"})
    assert s.folder == Path("/tmp/pm-state/mail") and s.port == 2525
    assert MailSinkSettings.from_env({"MAILSINK_DIR": "/x"}).folder == Path("/x")
