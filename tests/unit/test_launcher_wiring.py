"""The launcher assembles what the services declare: every address a process uses names a declared
process, the launcher gives it that process's address unless the environment sets it, and a process
that scales runs as many times as asked."""

from __future__ import annotations

import pytest

from launcher.stack import SERVICES, service_specs
from partnermatch.processes import Process


def _env_of(name: str, env: dict[str, str]) -> dict[str, str]:
    return next(spec.env for spec in service_specs(env) if spec.name == name)


def test_every_address_a_process_uses_names_a_process_that_listens():
    declared = [process for declare in SERVICES for process in declare({})]
    listening = {process.name for process in declared if process.bind}
    for process in declared:
        assert {address.process for address in process.uses.values()} <= listening, process.name


def test_a_moved_service_is_found_by_every_process_that_uses_it():
    env = {"PROFILES_PORT": "9181", "MAILSINK_PORT": "3525"}
    assert _env_of("matcher", env)["MATCHER_PROFILES_URL"] == "http://127.0.0.1:9181"
    assert _env_of("notifier", env)["NOTIFIER_PROFILES_URL"] == "http://127.0.0.1:9181"
    assert _env_of("notifier", env)["NOTIFIER_SMTP_PORT"] == "3525"
    assert _env_of("profiles", env)["NOTIFIER_SMTP_PORT"] == "3525"


def test_an_address_set_in_the_environment_is_left_as_it_is():
    env = {"NOTIFIER_PUBLIC_URL": "https://partnermatch.example.org/notify", "NOTIFIER_SMTP_HOST": "relay.example.org"}
    assert "NOTIFIER_PUBLIC_URL" not in _env_of("notifier", env)
    assert "NOTIFIER_SMTP_HOST" not in _env_of("profiles", env)


def test_the_matcher_consumer_runs_as_many_times_as_asked_in_one_group():
    names = [spec.name for spec in service_specs({"PARTNERMATCH_MATCHERS": "3"})]
    assert [n for n in names if n.startswith("matcher")] == ["matcher-1", "matcher-2", "matcher-3", "matcher-relay"]


def test_each_service_declares_its_own_secret():
    declared = {name for spec in service_specs({}) for name in spec.secrets}
    assert declared == {"PROFILES_SECRET_KEY", "MATCHER_SECRET_KEY", "NOTIFIER_SECRET_KEY"}


def test_a_process_runs_a_module_or_a_web_app_with_an_address():
    with pytest.raises(ValueError, match="either a module or a web app"):
        Process("both", module="a", app="b:c()", bind="127.0.0.1:1")
    with pytest.raises(ValueError, match="needs the address"):
        Process("web", app="b:c()")
