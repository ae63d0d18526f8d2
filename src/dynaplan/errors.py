"""The exceptions the CLI turns into one line on stderr (exit status 2, no traceback), and
how a refusal quotes the value it refuses."""

import reprlib

_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 2
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 4
_QUOTE.maxstring = _QUOTE.maxother = 80
_QUOTE.maxlong = 40


def quoted(value: object) -> str:
    """`repr(value)`, cut short: a refusal never expands what it quotes (a YAML alias
    bomb, a huge list) beyond a couple of hundred characters."""
    return _QUOTE.repr(value)[:200]


class ConfigError(ValueError):
    """Bad user input: a flag, a config file, an environment id, a run folder."""


class CheckpointError(ConfigError):
    """A checkpoint (or a file of one) that cannot be read: missing, truncated,
    corrupted, or holding something other than plain tensors and JSON."""


class CheckpointFormatError(CheckpointError):
    """A checkpoint written in a format this version does not know (e.g. a newer one).
    Unlike a damaged checkpoint, `--resume` does not fall back past it."""


class TrainingError(RuntimeError):
    """A run that cannot go on (e.g. the model loss became NaN, or the environment
    failed in every episode); the last complete checkpoint stays as it was."""
