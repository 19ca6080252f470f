"""docs/cli.md is what scripts/gen_cli_docs.py writes from the parser today, and it holds every option that
argparse's own --help lists (an independent reading of the same parser: a flag the generator skipped shows)."""

from __future__ import annotations

import argparse
import importlib.util

from isoadapt.cli import build_parser

from conftest import REPO

COMMITTED = REPO / "docs" / "cli.md"


def generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", REPO / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def every_parser(parser: argparse.ArgumentParser, name: str = "isoadapt"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from every_parser(sub, f"{name} {sub_name}")


def option_strings_in_help(help_text: str) -> set[str]:
    """The option strings that --help lists at the start of its lines (`  -v, --verbose  debug logging`)."""
    found = set()
    for line in help_text.split("\noptions:\n", 1)[1].splitlines():
        if line.startswith("  -"):
            found.update(part.split()[0] for part in line.strip().split("  ")[0].split(", "))
    return found


def test_docs_cli_md_is_current():
    expected = generator().render()
    assert COMMITTED.read_text(encoding="utf-8") == expected, "docs/cli.md is out of date: run scripts/gen_cli_docs.py"


def test_every_option_of_every_help_is_documented_under_its_command():
    text = COMMITTED.read_text(encoding="utf-8")
    for name, parser in every_parser(build_parser()):
        section = text.split(f"# `{name}`\n", 1)[1].split("\n#", 1)[0]  # from its heading to the next one
        listed = option_strings_in_help(parser.format_help()) - {"-h", "--help"}  # every command has them
        assert listed or name == "isoadapt prepare", name  # the reading found options where there are some
        missing = sorted(flag for flag in listed if f"`{flag}" not in section and f", {flag}" not in section)
        assert not missing, f"{name}: {missing} not in docs/cli.md: run scripts/gen_cli_docs.py"


def test_a_flag_added_to_the_parser_changes_the_generated_page():
    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    train.add_argument("--brand_new_flag", default=7, help="a flag docs/cli.md has never seen")
    rendered = generator().render(parser)
    assert "| `--brand_new_flag` | `7` | a flag docs/cli.md has never seen |" in rendered
    assert rendered != COMMITTED.read_text(encoding="utf-8")
