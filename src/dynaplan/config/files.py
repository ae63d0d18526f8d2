"""Reading a YAML or JSON file of train options (`--config FILE`, sweep specs): at most
MAX_BYTES of UTF-8 text holding one mapping; anything else is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dynaplan.errors import ConfigError

MAX_BYTES = 1 << 20
"""A config file of options is a few hundred bytes; one over a MiB is not one."""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping of train options; refuse anything else in one line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"config file {path} holds {size} bytes, more than a config "
                              f"file of options ({MAX_BYTES} at most)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config file {path} holds more than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # any parser error becomes one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} could not be parsed: {first[:200]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return data
