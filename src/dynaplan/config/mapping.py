"""The value of a mapping option (`env_kwargs`): str keys to JSON values, immutable and
hashable, so the frozen configs that hold one compare (a resumed run checks its config
against the saved one) and hash as any other option value.

Users write one as a mapping in a `--config` file or a sweep spec, or as JSON or YAML text
after a flag (`--env-kwargs '{"ctrl_cost_weight": 0.05}'`, `--env-kwargs '{goal: 1}'`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from dynaplan.errors import ConfigError, quoted


class JsonMapping(Mapping[str, Any]):
    """An immutable mapping of str keys to JSON values (numbers, strings, bools, null,
    lists and mappings of them). Reading a value gives a copy, so nothing a caller does
    with it changes the config."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        values = dict(values or {})
        bad = [k for k in values if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"keys must be strings, got {quoted(bad[0])}")
        try:
            text = json.dumps(values, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"values must be JSON values (numbers, strings, booleans, "
                              f"null, lists, mappings): {exc}") from None
        self._text = text
        self._values: dict[str, Any] = json.loads(text)

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._values[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(self._text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonMapping):
            return self._text == other._text
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __reduce__(self) -> tuple[Any, ...]:
        return (JsonMapping, (self._values,))

    def __repr__(self) -> str:
        return f"JsonMapping({self._text})"

    def __str__(self) -> str:
        return self._text

    def plain(self) -> dict[str, Any]:
        """A plain dict copy (what JSON files and `to_flat` hold)."""
        return json.loads(self._text)


def mapping_value(value: Any, name: str) -> JsonMapping:
    """`value` (a mapping, or JSON or YAML text of one) as a JsonMapping, or a one-line
    ConfigError naming option `name`."""
    if isinstance(value, JsonMapping):
        return value
    if isinstance(value, str):
        value = _parse(value, name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of name: value (JSON or YAML, e.g. "
                          f"'{{\"goal\": 0.5}}'), got {quoted(value)}")
    try:
        return JsonMapping(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _parse(text: str, name: str) -> Any:
    """JSON first (YAML 1.1 would read 1e-3 as a string), then YAML; text that opens as
    a JSON object does (`{"`) is JSON only, so a JSON typo is an error, not YAML's null."""
    try:
        return json.loads(text)
    except ValueError as exc:
        json_error = str(exc)
        if text.lstrip().startswith('{"'):
            raise ConfigError(f"{name} is not valid JSON ({json_error}): "
                              f"{quoted(text)}") from None
    import yaml

    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{name} is not a JSON or YAML mapping ({json_error}): "
                          f"{quoted(text)}") from None
    if isinstance(parsed, str) or parsed is None:  # plain text, not a mapping
        raise ConfigError(f"{name} is not a JSON or YAML mapping ({json_error}): "
                          f"{quoted(text)}")
    return parsed
