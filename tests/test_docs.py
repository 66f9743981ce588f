"""The documentation cannot drift from the code: the site builds in strict mode (a broken link or
anchor fails it), and every `mnist-lab …` example line of the docs and the README is parsed by the
real command line (its options, choices, types and arguments), without running it."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mnist_lab import cli

from conftest import ROOT

SHELL_OPERATORS = {"|", "||", ">", ">>", "<", "&&", ";", "&"}


def build(root, site):
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})


def test_the_site_builds_strictly(tmp_path):
    built = build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "commands" / "index.html").is_file()


def test_a_broken_anchor_fails_the_build(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    with open(tmp_path / "docs" / "index.md", "a") as page:
        page.write("\nSee [nowhere](commands.md#no-such-section).\n")
    built = build(tmp_path, tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-section" in built.stdout + built.stderr


def example_lines():
    """(where, arguments after `mnist-lab`) of every example line in a code block of the README and the
    docs, and in every command's help text."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        fence = None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):  # a fence, also indented (inside a list)
                fence = None if fence is not None else line.lstrip()[3:].strip()
                continue
            if fence not in ("", "bash", "sh", "console") or "mnist-lab" not in line:
                continue
            arguments = command_arguments(line)
            if arguments is not None:
                found.append((f"{path.relative_to(ROOT)}:{number}", arguments))
    for name, command in sorted(cli.main.commands.items()):  # and the examples of every --help
        for line in (command.help or "").splitlines():
            arguments = command_arguments(line) if line.strip().startswith("mnist-lab ") else None
            if arguments is not None:
                found.append((f"mnist-lab {name} --help", arguments))
    return found


def command_arguments(line):
    """The arguments after `mnist-lab` in a shell line that runs it (None for any other line):
    variables set before it, and what follows a pipe or a redirection, left out."""
    words = shlex.split(line, comments=True)  # an unbalanced quote fails the collection: a bad example
    if words and (words[0] == "$" or words[0].endswith(":")):  # a shell prompt, or a label ("client:")
        words.pop(0)
    while words and "=" in words[0] and not words[0].startswith("-"):  # VARIABLE=value before it
        words.pop(0)
    if not words or not words[0].endswith("mnist-lab"):
        return None
    end = next((index for index, word in enumerate(words) if word in SHELL_OPERATORS or word.startswith("2>")),
               len(words))
    return words[1:end]


def parse(arguments):
    """Parse ``arguments`` as `mnist-lab` would, down to the command's own options; run nothing."""
    context = cli.main.make_context("mnist-lab", list(arguments))
    protected = getattr(context, "_protected_args", None)  # Click 8.2 and later
    rest = [*(context.protected_args if protected is None else protected), *context.args]
    if not rest:
        return
    name, command, rest = cli.main.resolve_command(context, rest)
    for parameter in command.params:  # a run folder an example names is taken to exist
        if isinstance(parameter.type, click.Path) and parameter.type.exists:
            for index, word in enumerate(rest[:-1]):
                if word in parameter.opts:
                    Path(rest[index + 1]).mkdir(parents=True, exist_ok=True)
    command.make_context(name, rest, parent=context)


EXAMPLES = example_lines()


def test_the_docs_hold_examples_of_every_command():
    commands = {arguments[0] for _, arguments in EXAMPLES if arguments and not arguments[0].startswith("-")}
    assert commands >= set(cli.main.commands)


@pytest.mark.parametrize("where, arguments", EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_every_example_line_parses(where, arguments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        parse(arguments)
    except click.exceptions.Exit as leaving:  # --help, --version
        assert leaving.exit_code == 0
    except click.ClickException as error:
        pytest.fail(f"{where}: mnist-lab {shlex.join(arguments)}: {error.format_message()}")


def test_the_module_list_names_every_module_and_no_other():
    listed = set(re.findall(r"^\| `([a-z_/]+\.py)` \|", (ROOT / "docs" / "development.md").read_text(), re.M))
    modules = {path.relative_to(ROOT / "mnist_lab").as_posix() for path in (ROOT / "mnist_lab").rglob("*.py")
               if path.name not in ("__init__.py", "__main__.py")}
    assert listed == modules
