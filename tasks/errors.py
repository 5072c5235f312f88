"""Errors a user can fix: they print one line, never a traceback."""


class PkiError(Exception):
    """Base for every problem the user can fix (bad config, missing engine, lost CA)."""


class ConfigError(PkiError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class CaError(PkiError):
    """The CA is missing, unreadable or does not match what was issued before."""


class EngineError(PkiError):
    """The Docker engine, an image or a container is not as required."""


class PasswordError(PkiError):
    """No usable store password."""
