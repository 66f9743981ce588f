"""Error types the CLI maps to exit codes: bad input is 2, a failure at run time is 1."""


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
