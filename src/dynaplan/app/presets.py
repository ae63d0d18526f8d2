"""`dynaplan presets [--env ID] [--preset NAME]`: what each `--preset` sets.

Without --env: each preset's shared values, the rules that size the rest for any
environment, and the environments with tuned values. With --env: the exact values each
preset (or the one named) sets for that environment, each with its source: the preset's
own (shared), a sizing rule (sized, with the rule's reason) or the environment's tuned
entry (tuned). A bad environment id is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from dynaplan.presets import (
    PRESETS,
    RULES,
    SUMMARY,
    describe_env,
    preset_settings,
    shared_values,
    tuned_envs,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the --preset option bundles and the values they set",
                       description="List the --preset bundles: their shared values and "
                                   "sizing rules, or with --env the exact values for one "
                                   "environment.")
    p.add_argument("--env", metavar="ID",
                   help="show the values each preset sets for this environment")
    p.add_argument("--preset", choices=PRESETS, help="only this preset")


def run(args: argparse.Namespace) -> int:
    names = [args.preset] if args.preset else list(PRESETS)
    if args.env:
        print(for_env(args.env, names))
    else:
        print(overview(names))
    return 0


def _shown(value: Any) -> str:
    return "unset" if value is None else str(value)


def overview(names: list[str]) -> str:
    """The presets' shared values, the sizing rules and the tuned environments."""
    lines: list[str] = []
    for name in names:
        shared = shared_values(name)
        lines.append(f"{name}: {SUMMARY[name]}")
        lines += textwrap.wrap(", ".join(f"{k} {_shown(v)}" for k, v in shared.items()),
                               90, initial_indent="  shared: ", subsequent_indent="    ")
    width = max(len(k) for k, _ in RULES)
    lines += ["", "sized for each environment from O (observation size), A (action size) "
              "and T (its episode limit);", "pets-paper keeps its own model and horizon "
              "(docs/presets.md gives each rule's reason):"]
    lines += [f"  {k:<{width}}  {rule}" for k, rule in RULES]
    lines += ["", "tuned values (in place of the rules): " + ", ".join(tuned_envs()),
              "the values for one environment: dynaplan presets --env ID [--preset NAME]"]
    return "\n".join(lines)


def for_env(env: str, names: list[str]) -> str:
    """The values each of `names` sets for `env`, with their sources."""
    shape = describe_env(env)  # a bad id: one-line ConfigError
    limit = f"{shape.max_episode_steps} steps" if shape.max_episode_steps else "no limit"
    tuned = env in tuned_envs()
    lines = [f"{env}: observation {shape.obs_dim}, action {shape.action_dim}, episode "
             f"limit {limit}; " + ("tuned values (in place of the sizing rules)" if tuned
                                   else "no tuned values: sized by the rules")]
    for name in names:
        settings = preset_settings(name, env)
        width = max(len(k) for k in settings)
        vwidth = max(len(_shown(s.value)) for s in settings.values())
        lines += ["", f"{name}:"]
        for key, s in settings.items():
            source = f"{s.source}: {s.why}" if s.why else s.source
            lines.append(f"  {key:<{width}}  {_shown(s.value):<{vwidth}}  {source}")
    return "\n".join(lines)
