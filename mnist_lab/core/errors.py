"""Error types the CLI maps to exit codes (bad input is 2, a failure at run time is 1), and how a
message quotes what it names: escaped, bounded, with its type."""

import reprlib

EXIT_FAILURE, EXIT_USAGE = 1, 2  # a failure at run time (a failed sweep cell too), bad input


class UsageError(ValueError):
    """The user's input is wrong (config, option, data path); exit code 2."""


class ConfigError(UsageError):
    """One or more invalid config fields, each reported on its own line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(UsageError):
    """A dataset that cannot be read or is not MNIST-shaped; names the file."""


class IntegrityError(RuntimeError):
    """The shipped data does not match its recorded digest: a damaged install."""


def printable(text, limit: int = 400) -> str:
    """``text`` as a terminal may show it: every non-printable character escaped (no terminal
    escape sequence, carriage return or newline passes through: nothing printed from a file, a
    record or an option can forge a line, retitle the window or write the clipboard), and cut to
    about ``limit`` characters."""
    text = str(text)
    shown = "".join(character if character.isprintable() else repr(character)[1:-1] for character in text[:limit])
    return shown if len(text) <= limit else f"{shown}… ({len(text):,} characters)"


def check_count(option: str, value):
    """UsageError unless ``value`` is None or an integer >= 1: an option the Python API passes on
    unchecked (the command line's click checks it already)."""
    from mnist_lab.core.schema import is_of

    if value is not None and not (is_of(value, int) and value >= 1):
        raise UsageError(f"{option}: expected an integer >= 1, got {described(value)}")


def quoted(value, limit: int = 120) -> str:
    """``value`` quoted, as a message names the user's input: see printable()."""
    return f"'{printable(value, limit)}'"


# A value quoted in a message is shortened: a message never quotes a whole file.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = 6
_SHORT_REPR.maxlevel = 2


def described(value) -> str:
    """A value as the user wrote it (shortened: a message never quotes a whole file), with its YAML type."""
    return f"{_SHORT_REPR.repr(value)} ({kind_of(value)})"


def kind_of(value) -> str:
    """A value's YAML type in words: null, bool, int, float, str, list, mapping."""
    kinds = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str",
             list: "list", dict: "mapping"}
    return kinds.get(type(value), type(value).__name__)
