"""The one exception type the CLI turns into a one-line message and exit status 2."""


class ConfigError(ValueError):
    """Bad user input: a flag, a config file, an environment id, a run folder."""
