"""`--help` speaks to a user who installed dynaplan with pip: every command listed at the
top with what to run first, no source files or internal modules named, every default
shown once, "the seed" explained where it is used; and `--version`."""

import argparse
import re

import pytest

import dynaplan
from dynaplan.app.cli import COMMANDS, build_parser, main


def _pages() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"dynaplan": parser, **{f"dynaplan {name}": p for name, p in sub.choices.items()}}


PAGES = _pages()
INTERNAL = [re.compile(p) for p in (
    r"\w\.py\b",                    # a source file: presets.py, planners/graphed.py
    r"\bdynaplan\.[a-z_]+\.",       # a module path: dynaplan.runs.load_agent
    r"\b(accel|app|config|envs|models|planners)/",  # a package folder of the source
)]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("page", PAGES)
def test_help_names_no_source_file_and_shows_each_default_once(page):
    text = _flat(PAGES[page].format_help())
    for pattern in INTERNAL:
        assert not pattern.search(text), f"{page} --help names {pattern.search(text)[0]!r}"
    assert "(default: None)" not in text and "(default: )" not in text
    for action in PAGES[page]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                               argparse._SubParsersAction)):
            continue
        shown = _flat(action.help % {"default": action.default} if action.help else "")
        flag = action.option_strings[0] if action.option_strings else action.dest
        assert shown.count("default") <= 1, f"{page} {flag}: {shown}"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert "default" in shown, f"{page} {flag} hides its default {action.default!r}"


@pytest.mark.parametrize("page", PAGES)
def test_the_seed_is_explained_where_help_speaks_of_it(page):
    text = _flat(PAGES[page].format_help())
    if re.search(r"\bthe seed\b(?! of)|\bthe seed's\b", text):
        assert "Nagabandi" in text and "course exercise" in text, page


def test_top_level_help_lists_every_command_and_a_first_run(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^  {name} +\S", out, re.M), name
    assert "dynaplan train --preset pets" in out and "dynaplan eval" in out


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag, capsys):
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"dynaplan {dynaplan.__version__}\n"
