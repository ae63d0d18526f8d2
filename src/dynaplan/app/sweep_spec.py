"""A sweep's spec and its trials: the spec's keys are train options (a list is a grid
axis), every combination a trial with its own run folder name and config, and each
trial's state in the sweep folder (new, unfinished, finished). A mapping option
(`env_kwargs`) takes a mapping as its fixed value, and a list of mappings as an axis."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynaplan.config import OPTIONS, TrainConfig, config_from_values, load_config_file, to_flat
from dynaplan.config.flat import ALIASES
from dynaplan.config.mapping import JsonMapping
from dynaplan.errors import ConfigError
from dynaplan.runs import CHECKPOINTS, SUMMARY, load_run_config, name_part

# name parts that always appear, in this order; the other axes go between method and seed
_FIRST = ("env", "preset", "planner")
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its folder name, its axis values, its whole config."""

    name: str
    axes: dict[str, Any]  # this trial's value of each grid axis
    config: TrainConfig


def read_spec(path: Path) -> tuple[dict[str, Any], str | None]:
    """The spec's train values (keys with underscores) and its `out`, or a ConfigError
    naming the first key that is not a train flag or whose value is not a scalar or a
    list of distinct scalars (for a mapping option: a mapping or a list of distinct
    mappings)."""
    data = load_config_file(path)
    known = set(OPTIONS) | set(ALIASES)
    values: dict[str, Any] = {}
    out: str | None = None
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name == "out":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"sweep spec {path}: out must be a folder name, got {value!r}")
            out = value
            continue
        if name not in known:
            raise ConfigError(f"sweep spec {path}: unknown key {key!r} (not a dynaplan train "
                              "flag)")
        if name in values:
            raise ConfigError(f"sweep spec {path}: key {key!r} is given twice")
        mapping = OPTIONS[ALIASES.get(name, name)].kind is JsonMapping
        if isinstance(value, list):
            if not value:
                raise ConfigError(f"sweep spec {path}: {key} is an empty list (no trials)")
            if mapping and not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"sweep spec {path}: {key} must be a mapping or a list "
                                  "of mappings")
            if not mapping and any(isinstance(v, (list, dict)) for v in value):
                raise ConfigError(f"sweep spec {path}: {key} must list plain values")
            if len({json.dumps(v, sort_keys=True, default=str) for v in value}) != len(value):
                raise ConfigError(f"sweep spec {path}: {key} lists a value twice")
        elif isinstance(value, dict) and not mapping:
            raise ConfigError(f"sweep spec {path}: {key} must be a value or a list of values")
        values[name] = value
    return values, out


def _part(value: Any) -> str:
    if isinstance(value, dict):  # a mapping axis: goal-0.5+scale-2, or none for {}
        return "+".join(f"{_part(k)}-{_part(v)}" for k, v in sorted(value.items())) or "none"
    text = repr(value) if isinstance(value, float) else str(value)
    return name_part(text)


def expand(values: dict[str, Any], source: str = "sweep spec") -> list[Trial]:
    """Every combination of the list-valued keys, env outermost and seed innermost; each
    trial's config is built (and so validated) here, so a bad value in any trial is
    refused before the first one runs."""
    axes = [k for k, v in values.items() if isinstance(v, list)]
    order = ([k for k in _FIRST if k in axes] + [k for k in axes if k not in _FIRST
                                                  and k != "seed"]
             + (["seed"] if "seed" in axes else []))
    fixed = {k: v for k, v in values.items() if k not in axes}
    method = "preset" if "preset" in values else "planner"  # named by the preset if any
    trials: list[Trial] = []
    seen: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(values[k] for k in order)):
        point = dict(zip(order, combo))
        config = config_from_values({**fixed, **point}, f"{source}, trial {_describe(point)}")
        parts = [config.env, point.get("preset", fixed.get("preset", config.planner.name))]
        parts += [f"{k.replace('_', '-')}-{_part(point[k])}" for k in order
                  if k not in ("env", "seed", method)]
        parts.append(f"s{config.seed}")
        name = "__".join(_part(p) for p in parts)
        if name in seen:
            raise ConfigError(f"{source}: trials {_describe(seen[name])} and "
                              f"{_describe(point)} would share the folder {name}")
        seen[name] = point
        trials.append(Trial(name=name, axes=point, config=config))
    return trials


def _describe(point: dict[str, Any]) -> str:
    return " ".join(f"{k.replace('_', '-')}={_shown(v)}" for k, v in point.items()) \
        or "(one trial)"


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else \
        str(value)


def check_environments(trials: list[Trial]) -> None:
    """Create each environment once (with its env kwargs), so a bad env id, missing
    package or bad kwarg is refused before any trial starts (each trial's reward and
    termination were resolved when its config was built)."""
    from dynaplan.envs import env_source

    for env, kwargs in dict.fromkeys((t.config.env, t.config.env_kwargs) for t in trials):
        env_source(env, kwargs).describe()


# -- which trials are left -----------------------------------------------------------------

def trial_state(trial: Trial, run_dir: Path) -> str:
    """'new', 'finished' or 'unfinished'; a folder holding a run with other options
    than the trial's (iterations aside) is refused."""
    from dynaplan.checkpoint import list_checkpoints

    if not (run_dir / "config.json").is_file():
        return "new"
    saved = load_run_config(run_dir)
    ours = dataclasses.replace(trial.config, iterations=saved.iterations)
    if ours != saved:
        mine, theirs = to_flat(ours), to_flat(saved)
        differ = [k for k in {**mine, **theirs} if mine.get(k) != theirs.get(k)]
        raise ConfigError(f"{run_dir} holds a run with other options ({differ[0]}: "
                          f"{theirs.get(differ[0])!r}, the spec gives "
                          f"{mine.get(differ[0])!r}); use another --out")
    checkpoints = list_checkpoints(run_dir / CHECKPOINTS)
    done = int(checkpoints[-1].name.split("_")[1]) + 1 if checkpoints else 0
    if done > trial.config.iterations:
        raise ConfigError(f"{run_dir} has already run {done} iterations; the spec's "
                          f"iterations must be at least {done}")
    summary = read_json(run_dir / SUMMARY)
    if summary and summary.get("iterations", 0) >= trial.config.iterations:
        return "finished"
    return "unfinished"


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- the sweep -----------------------------------------------------------------------------
