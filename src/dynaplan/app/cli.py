"""`dynaplan train | compare | eval | plot | bench | sweep | report | presets`: the command
line.

Each command is a module of this package with `add_parser` and `run`. Bad input ends with
one line on stderr and exit status 2; a stop signal with the shell's status for it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

from dynaplan import __version__
from dynaplan.accel.allocator import keep_freed_memory
from dynaplan.app import bench, compare, eval, plot, presets, report, sweep, train
from dynaplan.app.output import setup_logging
from dynaplan.errors import ConfigError, TrainingError
from dynaplan.interrupt import SIGNALS, RunInterrupted

COMMANDS = {"train": train, "compare": compare, "eval": eval, "plot": plot, "bench": bench,
            "sweep": sweep, "report": report, "presets": presets}


ABOUT = """\
Model-based reinforcement learning with model-predictive control: dynaplan learns a
dynamics model and a reward model from interaction data and plans through them with a
sampling-based optimizer (CEM, iCEM, MPPI or random shooting), replanning at every step."""

FIRST_RUN = """\
first run (Pendulum-v1, 2-6 minutes on a CPU):
  dynaplan train --preset pets --eval-episodes 10 --eval-every 2 --out runs/first
  dynaplan eval runs/first

`dynaplan COMMAND --help` lists a command's options."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dynaplan", usage="%(prog)s [-h] [-V] COMMAND [options]",
                     epilog=FIRST_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-V", "--version", action="version", version=f"dynaplan {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                prog="dynaplan", metavar="COMMAND", help=argparse.SUPPRESS)
    for module in COMMANDS.values():
        module.add_parser(sub)
    # each command's one-line help, listed here once (argparse's own listing is hidden)
    lines = [f"  {a.dest:<9} {a.help}" for a in sub._choices_actions]
    parser.description = "\n".join([ABOUT, "", "commands:", *lines])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), as a return value
        return int(exc.code or 0)
    keep_freed_memory()  # no page faults for each batch's tensors (accel/allocator.py)
    undo_logging = setup_logging(getattr(args, "quiet", False), getattr(args, "verbose", False))
    try:
        return COMMANDS[args.command].run(args)
    except (ConfigError, TrainingError) as exc:
        print(f"dynaplan: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as stop:  # SIGINT / SIGTERM during a run: 130 / 143
        print(f"dynaplan: {stop.message()}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("dynaplan: interrupted", file=sys.stderr)
        return 130
    finally:
        undo_logging()


def entry() -> None:
    """The console script: exit with main()'s status. Once main has returned, a further
    SIGINT or SIGTERM (a second Ctrl-C, or `timeout` passing on a signal the process was
    already sent) is ignored, so the exit prints no traceback after main's one-line
    message; one that lands in main's own error handling counts as a plain interrupt."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    for signum in SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    entry()
