"""Reading a YAML or JSON file of train options (`--config FILE`, sweep specs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dynaplan.errors import ConfigError


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping of train options; refuse anything else in one line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # any parser error becomes one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} could not be parsed: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return data
