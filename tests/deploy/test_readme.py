"""The README is the operator's manual: a setting missing from its configuration table, or
a `messplus` command it names that the CLI does not have, sends a newcomer astray."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tests.deploy import SETTING_VARIABLES
from workers.cli import build_parser
from workers.settings import PREFIX

README = Path(__file__).resolve().parents[2] / "README.md"
# Commands are read from code only (spans and blocks): the prose says "messplus spends ...".
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
COMMAND = re.compile(r"(?<![\w./-])messplus((?: +[a-z][a-z|-]*)+)")


def configuration_table_variables() -> set[str]:
    """First-column variables of the table under '## Configuration'."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(rf"^\| `({PREFIX}[A-Z0-9_]+)` \|", section, re.MULTILINE))


def readme_commands() -> list[tuple[str, ...]]:
    """Each `messplus word word ...` of the README's code, cut at the first placeholder
    (NAME, FILE.csv, --option); `a|b` stands for either word."""
    found = set()
    for code in CODE.findall(README.read_text().replace("\\|", "|")):  # table cells escape |
        for words in COMMAND.findall(code):
            found.add(tuple(words.split()))
    return sorted(found)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(
        (
            action.choices
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        ),
        {},
    )


def unknown_words(words: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    """Words naming a (sub)command that `parser` lacks; words past a command without
    subcommands are its arguments, not commands."""
    choices = _subcommands(parser)
    if not words or not choices:
        return []
    missing = []
    for word in words[0].split("|"):
        if word in choices:
            missing += unknown_words(words[1:], choices[word])
        else:
            missing.append(word)
    return missing


@pytest.mark.parametrize("name", sorted(SETTING_VARIABLES))
def test_every_setting_is_in_the_configuration_table(name: str) -> None:
    assert name in configuration_table_variables(), f"README's configuration table lacks {name}"


def test_the_configuration_table_names_only_real_settings() -> None:
    """A row for a variable that no longer exists would make workers refuse to start."""
    assert configuration_table_variables() - SETTING_VARIABLES == set()


def test_the_readme_names_commands() -> None:
    assert len(readme_commands()) > 10, "the README's commands were not found: check the regex"


@pytest.mark.parametrize("words", readme_commands(), ids=" ".join)
def test_every_command_the_readme_names_exists(words: tuple[str, ...]) -> None:
    missing = unknown_words(words, build_parser())
    assert missing == [], f"`messplus {' '.join(words)}`: no command {missing}"
