"""The README is the front door: its settings table and commands match the code."""

from __future__ import annotations

from pathlib import Path

from launcher.cli import SUBCOMMANDS
from launcher.settings_table import all_settings, markdown_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_settings_table_is_the_one_generated_from_the_code():
    assert markdown_table() in README, "run `partnermatch settings` and paste the table into README.md"


def test_every_setting_is_in_the_readme():
    missing = [name for name in all_settings() if f"`{name}`" not in README]
    assert not missing


def test_every_command_is_documented_in_the_readme():
    missing = [name for name in SUBCOMMANDS if f"partnermatch {name}" not in README]
    assert not missing


def test_readme_names_the_two_front_door_commands():
    assert "make run" in README and "make test" in README
