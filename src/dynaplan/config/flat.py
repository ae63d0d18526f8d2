"""The option names users write, one flat vocabulary for train flags, `--config` keys,
sweep-spec keys and presets, mapped onto the nested TrainConfig (sections.py); and the
stored form of a config (config.json, checkpoints), old flat files migrated.

Every field of the sections is an option named by its `flag` metadata or its field name,
and every option of every registered planner is one too (its help from the planner's
options dataclass). Flags of on/off switches take "off" / "on" (YAML's booleans too).
`cem_iterations` is the older name of `num_iterations` and still works. A mapping option
(`env_kwargs`) takes a mapping, or JSON or YAML text of one after a flag.

The planner sizes `num_sequences`, `num_iterations` and `num_elites` take the seed's values
(100, 5, 10) in a run unless given, for every planner that has them, so planners compare at
the same budget; a planner without one of them ignores it. Any other planner option given
for a planner that does not take it is refused.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from dynaplan.config.mapping import JsonMapping, mapping_value
from dynaplan.config.sections import (
    EnsembleConfig,
    ModelConfig,
    PlannerConfig,
    SpeedConfig,
    TrainConfig,
)
from dynaplan.errors import ConfigError, quoted
from dynaplan.planners import PLANNERS
from dynaplan.planners.registry import options_of

FORMAT = 2
"""The stored config's format: 2 is nested by section; 1 (no `format` key) was flat."""
ALIASES = {"cem_iterations": "num_iterations"}
RUN_SIZES = {"num_sequences": 100, "num_iterations": 5, "num_elites": 10}
_SECTIONS = {"model": ModelConfig, "ensemble": EnsembleConfig, "planner": PlannerConfig,
             "speed": SpeedConfig}


@dataclass(frozen=True)
class Option:
    """One option as users write it: where it lives, its help, type and choices."""

    name: str
    path: tuple[str, ...]
    """Attributes from a TrainConfig to the value; a planner option: ("planner", "options",
    name)."""
    help: str
    kind: type
    """int, float, str, bool (given as off / on) or JsonMapping (a mapping, or JSON or
    YAML text of one)."""
    optional: bool
    choices: tuple[str, ...] | None
    default: Any
    unset: str = "unset"
    """What an unset (None) value means, as --help says it."""
    planners: tuple[str, ...] = ()
    """For a planner option: the planners that take it."""
    functions: bool = False
    """A `module:function` is a value too, beside the choices (reward, termination)."""

    def coerce(self, value: Any, source: str = "") -> Any:
        """`value` as this option's type, or a one-line ConfigError naming the option."""
        where = f"{source}: " if source else ""
        if value is None and self.optional:
            return None
        if self.kind is JsonMapping:
            try:
                return mapping_value(value, self.name)
            except ConfigError as exc:
                raise ConfigError(f"{where}{exc}") from None
        if self.kind is bool:
            value = {True: True, False: False, "on": True, "off": False}.get(value, value)
            if not isinstance(value, bool):
                raise ConfigError(f"{where}{self.name} must be one of off, on, got "
                                  f"{quoted(value)}")
            return value
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{where}{self.name} must be an integer, got {quoted(value)}")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}{self.name} must be a number, got {quoted(value)}")
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{where}{self.name} must be a finite number, got "
                                  f"{quoted(value)}")
        if self.kind is str and not isinstance(value, str):
            raise ConfigError(f"{where}{self.name} must be a string, got {quoted(value)}")
        if self.choices and value not in self.choices:
            if self.functions and ":" in value:
                return value
            also = " or module:function" if self.functions else ""
            raise ConfigError(f"{where}{self.name} must be one of {', '.join(self.choices)}"
                              f"{also}, got {quoted(value)}")
        return value


def _kind(hint: Any) -> tuple[type, bool]:
    """(scalar type, None allowed) of a field's type hint."""
    args = typing.get_args(hint)
    if args:  # X | None
        return next(a for a in args if a is not type(None)), type(None) in args
    return hint, False


def _section_options(cls: type, path: tuple[str, ...]) -> list[Option]:
    out: list[Option] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _SECTIONS:
            out += _section_options(_SECTIONS[f.name], (*path, f.name))
            continue
        if f.name == "options" and cls is PlannerConfig:
            continue
        kind, optional = _kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append(Option(f.metadata.get("flag", f.name), (*path, f.name), f.metadata["help"],
                          kind, optional, f.metadata.get("choices"), default,
                          f.metadata.get("unset", "unset"),
                          functions=f.metadata.get("functions", False)))
    return out


def _planner_options() -> list[Option]:
    found: dict[str, Option] = {}
    for planner, cls in PLANNERS.items():
        hints = typing.get_type_hints(cls.Options)
        for f in dataclasses.fields(cls.Options):
            kind, optional = _kind(hints[f.name])
            known = found.get(f.name)
            if known is None:
                found[f.name] = Option(f.name, ("planner", "options", f.name),
                                       f.metadata["help"], kind, optional,
                                       f.metadata.get("choices"), f.default,
                                       planners=(planner,))
            else:
                assert known.kind is kind, f"planners disagree on the type of {f.name}"
                found[f.name] = dataclasses.replace(known, planners=(*known.planners, planner))
    return list(found.values())


OPTIONS: dict[str, Option] = {o.name: o for o in
                              [*_section_options(TrainConfig, ()), *_planner_options()]}
"""Every option users write, by name, in TrainConfig's field order."""


def option_defaults(name: str) -> str:
    """The default of option `name` as --help shows it."""
    opt = OPTIONS[name]
    if not opt.planners:
        return _shown(opt, opt.default)
    if name in RUN_SIZES:
        return str(RUN_SIZES[name])
    per_planner = {p: _shown(opt, getattr(PLANNERS[p].Options(), name)) for p in opt.planners}
    if len(set(per_planner.values())) == 1:
        return next(iter(per_planner.values()))
    return ", ".join(f"{p} {v}" for p, v in per_planner.items())


def _shown(opt: Option, value: Any) -> str:
    if opt.kind is bool:
        return "on" if value else "off"
    return opt.unset if value is None else str(value)


def _names(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Keys with dashes or underscores, older names resolved; an unknown key is refused."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        name = ALIASES.get(name, name)
        if name not in OPTIONS:
            raise ConfigError(f"{source or 'options'}: unknown key {quoted(key)}")
        clean[name] = value
    return clean


def config_from_values(values: dict[str, Any], source: str = "",
                       presets: bool = True) -> TrainConfig:
    """A TrainConfig from option values as users write them (keys with dashes or
    underscores); with `presets`, the `preset` key, if any, fills every option not given.
    Unset (None) planner and optional options take their defaults."""
    clean = _names(values, source)
    preset = clean.get("preset")
    if presets and preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"{source or 'options'}: preset must be a string, got "
                              f"{quoted(preset)}")
        from dynaplan.presets import preset_values

        env = clean.get("env") or OPTIONS["env"].default
        kwargs = OPTIONS["env_kwargs"].coerce(clean.get("env_kwargs") or {}, source)
        clean = {**_names(preset_values(preset, str(env), kwargs), "preset"), **clean}
    typed = {name: OPTIONS[name].coerce(value, source) for name, value in clean.items()
             if not (value is None and OPTIONS[name].planners)}
    try:
        return _build(typed)
    except ConfigError as exc:  # a range check of a section: name where the value came from
        if source and not str(exc).startswith(source):
            raise ConfigError(f"{source}: {exc}") from None
        raise


def _build(values: dict[str, Any]) -> TrainConfig:
    nested: dict[tuple[str, ...], dict[str, Any]] = {(): {}, ("model",): {},
                                                      ("model", "ensemble"): {},
                                                      ("planner",): {}, ("speed",): {}}
    planner_values: dict[str, Any] = {}
    for name, value in values.items():
        opt = OPTIONS[name]
        if opt.planners:
            planner_values[name] = value
        else:
            nested[opt.path[:-1]][opt.path[-1]] = value
    name = nested[("planner",)].get("name", OPTIONS["planner"].default)
    takes = {f.name for f in dataclasses.fields(PLANNERS[name].Options)}
    given = {k: v for k, v in {**RUN_SIZES, **planner_values}.items()
             if k not in RUN_SIZES or k in takes}  # a size the planner lacks is ignored
    options = options_of(name, given)
    model = ModelConfig(**nested[("model",)],
                        ensemble=EnsembleConfig(**nested[("model", "ensemble")]))
    planner = PlannerConfig(**nested[("planner",)], options=options)
    return TrainConfig(**nested[()], model=model, planner=planner,
                       speed=SpeedConfig(**nested[("speed",)]))


def to_flat(config: TrainConfig) -> dict[str, Any]:
    """The config as option values users write (switches as "off" / "on"): every option
    of the sections and the options of its planner. `config_from_values(to_flat(c),
    presets=False) == c`."""
    out: dict[str, Any] = {}
    for name, opt in OPTIONS.items():
        if opt.planners and config.planner.name not in opt.planners:
            continue
        value: Any = config
        for attr in opt.path:
            value = getattr(value, attr)
        out[name] = _shown(opt, value) if opt.kind is bool else _plain(value)
    return out


def _plain(value: Any) -> Any:
    """A value as JSON and YAML hold it (a mapping option's value as a plain dict)."""
    return value.plain() if isinstance(value, JsonMapping) else value


def replace_values(config: TrainConfig, **values: Any) -> TrainConfig:
    """`config` with option values (as users write them) replaced, checked again."""
    return config_from_values({**to_flat(config), **values}, presets=False)


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """The stored form (config.json, checkpoints): nested by section, with `format`."""
    return {"format": FORMAT, **dataclasses.asdict(config, dict_factory=_plain_dict)}


def _plain_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in items}


def from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """A config from its stored form: nested (format 2), or the flat mapping of format 1
    (dynaplan before nesting), migrated; options missing from it take their defaults
    and presets are not applied again."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} does not hold a mapping of options")
    data = dict(data)
    version = data.pop("format", 1)
    if version == 1 and not isinstance(data.get("planner"), dict):
        return config_from_values({k: v for k, v in data.items() if v is not None}, source,
                                  presets=False)
    if version != FORMAT:
        raise ConfigError(f"{source} has config format {quoted(version)}; this dynaplan reads "
                          f"formats 1 and {FORMAT}")
    flat: dict[str, Any] = {}
    _flatten(data, (), flat, source)
    return config_from_values(flat, source, presets=False)


def _flatten(data: dict[str, Any], path: tuple[str, ...], out: dict[str, Any],
             source: str) -> None:
    by_path = {o.path: o.name for o in OPTIONS.values() if not o.planners}
    for key, value in data.items():
        here = (*path, str(key))
        if here == ("planner", "options"):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: planner.options must be a mapping")
            out.update(value)
        elif isinstance(value, dict) and str(key) in _SECTIONS:
            _flatten(value, here, out, source)
        elif here in by_path:
            out[by_path[here]] = value
        else:
            raise ConfigError(f"{source}: unknown key {'.'.join(here)!r}")
