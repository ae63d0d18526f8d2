"""The train options as command-line flags: one flag per option of config.OPTIONS, its
help from the option's own help, its default shown once. Precedence: built-in defaults
(the seed exercise) < preset < `--config FILE` < flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dynaplan.config import (
    OPTIONS,
    TrainConfig,
    config_from_values,
    load_config_file,
    option_defaults,
    to_flat,
)
from dynaplan.config.flat import ALIASES
from dynaplan.config.mapping import JsonMapping
from dynaplan.errors import ConfigError
from dynaplan.presets import PRESETS
from dynaplan.runs import load_run_config

SEED_EXERCISE = ("The seed exercise is the course exercise dynaplan started from: Algorithm 1 "
                 "of Nagabandi et al. 2017 (fit a dynamics model, act with MPC through it, "
                 "repeat) with a learned reward model, on Pendulum-v1; \"the seed's\" below "
                 "means its choice.")
"""Said once in each --help that speaks of the seed."""

_TYPES = {int: int, float: float, str: str, bool: str, JsonMapping: str}
_OLDER = {new: old for old, new in ALIASES.items()}
_GROUPS = {(): "environment, data and evaluation",
           ("model",): "models and their fit",
           ("model", "ensemble"): "ensemble (--dynamics ensemble or deterministic-ensemble)",
           ("planner",): "planner",
           ("planner", "options"): "planner options (each names the planners that take it)",
           ("speed",): "speed (the same computation, faster)"}
"""--help's sections: the config's, by where an option lives."""


def add_train_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """A flag for every train option (but those in `skip`), in one --help section per
    config section, then --config, --quiet and -v."""
    groups = {path: parser.add_argument_group(title) for path, title in _GROUPS.items()}
    for name, opt in OPTIONS.items():
        if name in skip:
            continue
        flags = ["--" + name.replace("_", "-")]
        if name in _OLDER:
            flags.append("--" + _OLDER[name].replace("_", "-"))
        takes = f"{'/'.join(opt.planners)}: " if opt.planners and len(opt.planners) < 4 else ""
        kwargs: dict[str, Any] = {
            "default": None, "dest": name, "type": _TYPES[opt.kind],
            "help": f"{takes}{opt.help} (default: {option_defaults(name)})"}
        if opt.kind is bool:
            kwargs["choices"] = ("off", "on")
        elif opt.kind is JsonMapping:
            kwargs["metavar"] = "JSON"
        elif name == "preset":
            kwargs["choices"] = PRESETS
        elif opt.choices and opt.functions:  # any module:function too: checked by config
            kwargs["metavar"] = "{" + ",".join((*opt.choices, "module:function")) + "}"
        elif opt.choices:
            kwargs["choices"] = opt.choices
        elif opt.kind in (int, float):  # short: the help says what the number is
            kwargs["metavar"] = "N" if opt.kind is int else "X"
        groups[opt.path[:-1]].add_argument(*flags, **kwargs)
    given = parser.add_argument_group("config file and output")
    given.add_argument("--config", metavar="FILE",
                       help="YAML or JSON file of train options; flags override it")
    shown = given.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true",
                       help="warnings only: no progress bars, no per-iteration lines")
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="debug lines too (what was written where, how long figures took)")


def given_values(args: argparse.Namespace, **override: Any) -> dict[str, Any]:
    """The option values the command line gives: the --config file's, then the flags'
    (both as users write them), then `override`."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        data = load_config_file(args.config)
        config_from_values(data, source=f"config file {args.config}")  # its errors name it
        values.update({str(k).replace("-", "_"): v for k, v in data.items()})
    for name in OPTIONS:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    values.update(override)
    return {ALIASES.get(k, k): v for k, v in values.items()}


def config_from_args(args: argparse.Namespace, **override: Any) -> TrainConfig:
    return config_from_values(given_values(args, **override))


def resumed_config(args: argparse.Namespace, run_dir: Path) -> TrainConfig:
    """The run's own config with --iterations applied; any other option given (a flag,
    or a key of --config) that differs from it is refused."""
    import dataclasses

    saved = load_run_config(run_dir)
    own = to_flat(saved)
    given = given_values(args)
    for name, value in given.items():
        opt = OPTIONS[name]
        value = opt.coerce(value)
        if opt.kind is bool:
            value = "on" if value else "off"
        if name != "iterations" and value != own.get(name):
            raise ConfigError(f"--{name.replace('_', '-')} {value} contradicts the run's "
                              f"config ({own.get(name, 'not an option of its planner')}); "
                              "a resumed run keeps its own options, only --iterations may "
                              "change")
    iterations = given.get("iterations", saved.iterations)
    return dataclasses.replace(saved, iterations=OPTIONS["iterations"].coerce(iterations))
