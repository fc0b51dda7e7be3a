"""Sweep files: reading one, and checking it against the command it runs.

A sweep file (TOML, format in ``docs/sweeps.md``) names a command, fixed
options, a grid (cartesian product) and/or a list of option sets, the seeds
and the resources each run needs. :func:`load_sweep` checks every option name
and value against the command's own argparse parser (built by
:func:`lavaplast.cli.build_parser`) before anything runs, and resolves the
file into its runs; :func:`config_key` names a run's folder by a hash of its
resolved config. Running the runs is :mod:`lavaplast.experiments.sweep`.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# The commands a sweep can run, as words of the ``lavaplast`` command line.
COMMANDS = ("continual", "onchip", "ep train", "ep sweep", "robustness", "run")
TOP_LEVEL_FIELDS = ("command", "description", "options", "grid", "runs", "seeds", "resources")
RESOURCE_FIELDS = ("num_cpus", "num_gpus", "custom")
# Options the sweep sets itself for every run (argparse destinations).
RESERVED = {"out": "every run gets its own folder under the sweep's --out",
            "overwrite": "the sweep restarts an incomplete run itself",
            "resume": "the sweep restarts an incomplete run itself",
            "progress": "runs write logs, not progress bars",
            "seed": "give the seeds as the top-level field 'seeds'",
            "help": "not an option of a run"}


class SweepFileError(ValueError):
    """A sweep file that cannot be run: the message names the file and the field."""



# --- the command's parser ---------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:  # argparse has no public way to reach its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def command_parser(command: str, parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """The argparse parser of ``lavaplast COMMAND`` (``command`` as words, e.g. ``"ep train"``)."""
    if parser is None:
        from lavaplast.cli import build_parser

        parser = build_parser()
    current = parser
    for word in command.split():
        choices = _subparsers(current)
        if word not in choices:
            raise ValueError(f"'lavaplast {command}' is not a command of this lavaplast version "
                             f"(no '{word}' subcommand in lavaplast.cli)")
        current = choices[word]
    return current


def _options(sub: argparse.ArgumentParser) -> dict:
    """Option name (dashes, no leading ``--``) -> action; positionals by their destination."""
    names = {}
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            for s in action.option_strings:
                if s.startswith("--"):
                    names[s[2:]] = action
        else:
            names[action.dest.replace("_", "-")] = action
    return names


def _is_flag(action) -> bool:
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))


def _takes_list(action) -> bool:
    return action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs != 1)


class _ParseError(Exception):
    pass


def _parse(sub: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``sub.parse_args(argv)``, raising :class:`_ParseError` with argparse's message instead of exiting."""
    def fail(message):
        raise _ParseError(message)

    sub.error = fail  # an instance attribute shadows ArgumentParser.error for this parser only
    try:
        return sub.parse_args(argv)
    finally:
        del sub.error


def _scalar_token(field_name: str, flag: str, value) -> str:
    if isinstance(value, bool):
        raise SweepFileError(f"{field_name}: {flag} takes a number or a string, got the boolean "
                             f"{str(value).lower()}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SweepFileError(f"{field_name}: {flag} must be a finite number, got {value}")
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    raise SweepFileError(f"{field_name}: {flag} takes a number or a string, got {type(value).__name__} "
                         f"{value!r}")


def _tokens(field_name: str, action, value) -> list[str]:
    """The command-line words that give ``value`` to ``action``; the TOML type is checked first."""
    flag = action.option_strings[0] if action.option_strings else action.dest
    if _is_flag(action):
        if not isinstance(value, bool):
            raise SweepFileError(f"{field_name}: {flag} is a flag: give true or false, got {value!r}")
        return [flag] if value else []
    if isinstance(value, (list, tuple)):
        if not _takes_list(action):
            raise SweepFileError(f"{field_name}: {flag} takes one value, got the list {value!r}")
        if not value and action.nargs != "*":
            raise SweepFileError(f"{field_name}: {flag} needs at least one value, got an empty list")
        words = [_scalar_token(field_name, flag, v) for v in value]
    else:
        words = [_scalar_token(field_name, flag, value)]
    if not action.option_strings:
        return words
    if len(words) == 1 and not _takes_list(action) and words[0].startswith("-"):
        return [f"{flag}={words[0]}"]  # '=' keeps a value that starts with '-' a value
    return [flag, *words]


@dataclass(frozen=True)
class Resources:
    """What one run needs: CPUs (also its number of BLAS/OpenMP threads), GPUs, custom Ray resources."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    custom: dict = field(default_factory=dict)

    @property
    def threads(self) -> int:
        """Threads a run may use: its CPUs, rounded up."""
        return max(1, math.ceil(self.num_cpus))


@dataclass
class Sweep:
    """A checked sweep file: the command, its runs (in file order) and their resources."""

    path: Path
    text: str
    data: dict
    command: str
    runs: list  # of dicts: key, config, words
    resources: Resources
    restart_flag: str
    progress_flag: Optional[str]


def config_key(config: dict) -> str:
    """The folder name of a run: 16 hex digits of the SHA-256 of its config as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_toml(path: Path) -> tuple[str, dict]:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:
        import tomli as tomllib
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"sweep file {path} cannot be read: {exc}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep file {path} is not valid TOML: {exc}") from None


def load_sweep(path: str | os.PathLike, parser: Optional[argparse.ArgumentParser] = None) -> Sweep:
    """Read and check a sweep file; every problem is a ``ValueError`` naming the file and the field.

    Options are checked against the command's argparse parser: names must be
    the command's options (``n-tasks`` or ``n_tasks``), values must parse
    (types, the number of values), and every resolved run must parse as a
    whole. ``parser`` defaults to :func:`lavaplast.cli.build_parser`.
    """
    path = Path(path)
    text, data = _read_toml(path)
    try:
        return _check_sweep(path, text, data, parser)
    except SweepFileError as err:
        raise SweepFileError(f"sweep file {path}: {err}") from None


def _check_sweep(path: Path, text: str, data: dict, parser) -> Sweep:
    unknown = [k for k in data if k not in TOP_LEVEL_FIELDS]
    if unknown:
        raise SweepFileError(f"unknown field '{unknown[0]}' (a sweep file has: {', '.join(TOP_LEVEL_FIELDS)})")
    command = data.get("command")
    if command is None:
        raise SweepFileError(f"field 'command' is missing: one of {', '.join(map(repr, COMMANDS))}")
    if not isinstance(command, str) or " ".join(command.split()) not in COMMANDS:
        raise SweepFileError(f"command: {command!r} is not a command a sweep runs; expected one of "
                             f"{', '.join(map(repr, COMMANDS))}")
    command = " ".join(command.split())
    if "description" in data and not isinstance(data["description"], str):
        raise SweepFileError(f"description: expected a string, got {data['description']!r}")
    try:
        sub = command_parser(command, parser)
    except ValueError as err:
        raise SweepFileError(f"command: {err}") from None
    actions = _options(sub)
    positionals = [a for a in sub._actions if not a.option_strings]

    def action_for(field_name: str, name) -> argparse.Action:
        key = str(name).lstrip("-").replace("_", "-")
        action = actions.get(key)
        if action is None:
            known = sorted(n for n, a in actions.items() if a.dest not in RESERVED)
            raise SweepFileError(f"{field_name}: unknown option '{name}' of 'lavaplast {command}' "
                                 f"(its options: {', '.join(known)})")
        if action.dest in RESERVED:
            raise SweepFileError(f"{field_name}: '{name}' is set by the sweep ({RESERVED[action.dest]})")
        return action

    def check_value(field_name: str, name, value):
        """The canonical value of one option (argparse's parsed value), checked alone."""
        action = action_for(field_name, name)
        words = _tokens(field_name, action, value)
        # Parsed alone, with a dummy word for each other required positional.
        argv = []
        for a in positionals:
            if a is action:
                argv += words
            elif a.nargs not in ("?", "*"):
                argv.append("x")
        if action.option_strings:
            argv += words
        try:
            ns = _parse(sub, argv)
        except _ParseError as err:
            raise SweepFileError(f"{field_name}: {err}") from None
        return action.dest, getattr(ns, action.dest)

    def check_table(field_name: str, table) -> dict:
        if not isinstance(table, dict):
            raise SweepFileError(f"{field_name}: expected a table of options, got {table!r}")
        out = {}
        for name, value in table.items():
            dest, parsed = check_value(f"{field_name}.{name}", name, value)
            if dest in out:
                raise SweepFileError(f"{field_name}.{name}: the option is given twice in {field_name}")
            out[dest] = parsed
        return out

    options = check_table("options", data.get("options", {}))

    grid = data.get("grid")
    grid_values: dict = {}
    if grid is not None:
        if not isinstance(grid, dict):
            raise SweepFileError(f"grid: expected a table of option = [values], got {grid!r}")
        if not grid:
            raise SweepFileError("grid: the table is empty; give option = [values], or leave [grid] out")
        for name, values in grid.items():
            where = f"grid.{name}"
            if not isinstance(values, list):
                raise SweepFileError(f"{where}: expected a list of values, got {values!r}")
            if not values:
                raise SweepFileError(f"{where}: the list is empty, so the grid would hold no run")
            parsed = []
            for i, v in enumerate(values):
                dest, p = check_value(f"{where}[{i}]", name, v)
                parsed.append(p)
            if dest in options:
                raise SweepFileError(f"{where}: '{name}' is also fixed in [options]; give it in one place")
            if dest in grid_values:
                raise SweepFileError(f"{where}: the option is given twice in [grid]")
            for i, p in enumerate(parsed):
                if p in parsed[:i]:
                    raise SweepFileError(f"{where}[{i}]: {values[i]!r} repeats an earlier value of the list")
            grid_values[dest] = parsed

    entries = data.get("runs")
    run_sets: list[dict] = [{}]
    if entries is not None:
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SweepFileError("runs: expected an array of tables ([[runs]] entries), got "
                                 f"{entries!r}")
        if not entries:
            raise SweepFileError("runs: the list is empty, so the sweep would hold no run")
        run_sets = []
        for i, entry in enumerate(entries):
            checked = check_table(f"runs[{i}]", entry)
            for dest in checked:
                if dest in grid_values:
                    raise SweepFileError(f"runs[{i}]: '{dest.replace('_', '-')}' is also in [grid]; give it in "
                                         "one place")
            run_sets.append(checked)

    has_seed = "seed" in {a.dest for a in sub._actions}
    seeds = data.get("seeds")
    if has_seed:
        if seeds is None:
            raise SweepFileError("field 'seeds' is missing: give the seeds of every config, e.g. seeds = [0, 1, 2]")
        if not isinstance(seeds, list) or not seeds:
            raise SweepFileError(f"seeds: expected a non-empty list of integers >= 0, got {seeds!r}")
        for i, s in enumerate(seeds):
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise SweepFileError(f"seeds[{i}]: expected an integer >= 0, got {s!r}")
            if s in seeds[:i]:
                raise SweepFileError(f"seeds[{i}]: seed {s} is listed twice")
    elif seeds is not None:
        raise SweepFileError(f"seeds: 'lavaplast {command}' has no --seed option; leave 'seeds' out")

    resources = _check_resources(data.get("resources", {}))

    runs, seen = [], {}
    grid_names = list(grid_values)
    for set_index, run_set in enumerate(run_sets):
        for combo in itertools.product(*(grid_values[n] for n in grid_names)):
            opts = {**options, **run_set, **dict(zip(grid_names, combo))}
            # A flag set to false is the same run as the flag left out.
            opts = {k: v for k, v in opts.items() if not (_is_flag(_by_dest(actions, k)) and v is False)}
            for seed in (seeds if has_seed else [None]):
                config = {"command": command, "options": opts}
                if seed is not None:
                    config["seed"] = seed
                where = (f"runs[{set_index}]" if entries is not None else "the sweep") + \
                    (f", grid {dict(zip(grid_names, combo))}" if grid_names else "") + \
                    (f", seed {seed}" if seed is not None else "")
                missing = [a.dest for a in positionals if a.dest not in opts and a.nargs not in ("?", "*")]
                if missing:
                    raise SweepFileError(f"{where}: '{missing[0]}' is required by 'lavaplast {command}'; "
                                         "give it in [options]")
                words = _words(config, actions, positionals)
                try:
                    resolved = vars(_parse(sub, words))
                except _ParseError as err:
                    raise SweepFileError(f"{where}: the options do not parse together: {err}") from None
                key = config_key(config)
                if key in seen:
                    raise SweepFileError(f"{where}: the same run as {seen[key]}; each run must differ")
                seen[key] = where
                # Every option's value, defaults included, for the record (the key holds only what the
                # file gives, so that a new option with a default keeps the runs already done).
                resolved = {k: v for k, v in resolved.items() if k not in RESERVED or k == "seed"}
                runs.append({"key": key, "config": config, "words": [*command.split(), *words],
                             "resolved": resolved})
    restart = "--resume" if "resume" in {a.dest for a in sub._actions} else "--overwrite"
    progress_flag = "--no-progress" if any("--no-progress" in a.option_strings for a in sub._actions) else None
    return Sweep(path=path, text=text, data=data, command=command, runs=runs, resources=resources,
                 restart_flag=restart, progress_flag=progress_flag)


def _by_dest(actions: dict, dest: str):
    for a in actions.values():
        if a.dest == dest:
            return a
    raise KeyError(dest)


def _words(config: dict, actions: dict, positionals: list) -> list[str]:
    """The command-line words of a run's options: positionals first, then options in the parser's order."""
    opts = config["options"]
    words = []
    for a in positionals:
        if a.dest in opts:
            words += _tokens(a.dest, a, opts[a.dest])
    seen = set()
    for a in actions.values():
        if a.option_strings and a.dest in opts and id(a) not in seen:
            seen.add(id(a))
            words += _tokens(a.dest, a, opts[a.dest])
    if "seed" in config:
        words += ["--seed", str(config["seed"])]
    return words


def _check_resources(table) -> Resources:
    if not isinstance(table, dict):
        raise SweepFileError(f"resources: expected a table (num_cpus, num_gpus, custom), got {table!r}")
    for name in table:
        if name not in RESOURCE_FIELDS:
            raise SweepFileError(f"resources.{name}: unknown field (known: {', '.join(RESOURCE_FIELDS)})")

    def number(name, default, positive):
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (value <= 0 if positive else value < 0):
            raise SweepFileError(f"resources.{name}: expected a finite number {'> 0' if positive else '>= 0'}, "
                                 f"got {value!r}")
        return float(value)

    custom = table.get("custom", {})
    if not isinstance(custom, dict):
        raise SweepFileError(f"resources.custom: expected a table of name = amount, got {custom!r}")
    for name, value in custom.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise SweepFileError(f"resources.custom.{name}: expected a finite number > 0, got {value!r}")
    num_gpus = number("num_gpus", 0.0, False)
    if num_gpus > 1 and not num_gpus.is_integer():
        raise SweepFileError(f"resources.num_gpus: a run needs a fraction of one GPU or whole GPUs, got {num_gpus:g}")
    return Resources(num_cpus=number("num_cpus", 1.0, True), num_gpus=num_gpus,
                     custom={k: float(v) for k, v in custom.items()})
