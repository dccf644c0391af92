"""`imagegen --help` and every subcommand's help are complete: each command, argument and flag
says what it is for."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from shared.cli.parser import build_parser


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("imagegen",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def test_every_command_and_argument_has_help() -> None:
    missing: list[str] = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                # An alias shares its command's parser and help line.
                helped = {id(action.choices[c.dest]) for c in action._choices_actions if c.help}
                missing += [
                    f"{' '.join(path)} {name}"
                    for name, child in action.choices.items()
                    if id(child) not in helped
                ]
            elif action.help is None and not isinstance(action, argparse._HelpAction):
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_the_commands_a_user_needs_are_there() -> None:
    commands = {" ".join(path[1:]) for path, _ in parsers(build_parser())}
    expected = {"up", "down", "status", "run", "submit csv", "submit db", "jobs list", "jobs show"}
    expected |= {"jobs cancel", "jobs retry", "jobs resume", "jobs fetch", "fonts", "render"}
    assert expected <= commands
    version = build_parser()
    assert any("--version" in action.option_strings for action in version._actions)
