"""What every dropscore command line shares: env-var defaults and turning errors into exit codes.

The CLI is the only place that turns an exception into an exit code and a line on stderr. A
command line that is itself wrong (argparse's complaints, ``BadArgument``) exits 2 like a refused
file — nothing ran and a retry would fail the same way — never 1, which means "retry me".
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from scorer.codes import Code
from scorer.errors import BadArgument, DropscoreError

ENV_PREFIX = "DROPSCORE_"


class EnvDefaultsParser(argparse.ArgumentParser):
    """Every ``--some-option`` also reads ``DROPSCORE_SOME_OPTION`` (the flag wins)."""

    def __init__(self, *args: Any, environ: Mapping[str, str] | None = None, **kw: Any) -> None:
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kw)
        self._environ = os.environ if environ is None else environ

    def add_argument(self, *names: Any, **kw: Any) -> argparse.Action:
        long = next((n for n in names if isinstance(n, str) and n.startswith("--")), None)
        if long and long not in ("--help", "--debug"):
            env = ENV_PREFIX + long[2:].replace("-", "_").upper()
            if env in self._environ and kw.get("action") not in ("store_true", "store_false"):
                kw["default"] = self._environ[env]
                kw["required"] = False
            elif env in self._environ:
                kw["default"] = self._environ[env].strip().lower() in ("1", "true", "yes", "on")
            kw["help"] = (kw.get("help") or "") + f" [env {env}]"
        return super().add_argument(*names, **kw)

    def error(self, message: str) -> NoReturn:
        """A usage mistake: one line with a code, like every other error, and exit 2."""
        print(f"error [{Code.USAGE}]: {message}; see '{self.prog} --help'", file=sys.stderr)
        raise SystemExit(BadArgument.exit_code)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's, but an unknown argument is reported by the command it was given to
        (whose ``--help`` lists what it takes), not by the top-level parser."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def add_subparsers(self, **kw: Any) -> Any:
        kw.setdefault("parser_class", _SubParser(self._environ))
        return super().add_subparsers(**kw)


def chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser ``args`` were parsed by: ``python -m scorer jobs add``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                return chosen(action.choices[name], args)
    return parser


def _usage_of(parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str]) -> str:
    """Where the usage of the command in ``argv`` is, for a BadArgument's line."""
    top = parser()
    try:
        args, _ = top.parse_known_args(argv)
    except (SystemExit, DropscoreError):  # raised while parsing (a converter): the top usage
        return f"; see '{top.prog} --help'"
    return f"; see '{chosen(top, args).prog} --help'"


def _SubParser(environ: Mapping[str, str]) -> Callable[..., EnvDefaultsParser]:
    def make(*args: Any, **kw: Any) -> EnvDefaultsParser:
        return EnvDefaultsParser(*args, environ=environ, **kw)

    return make


def os_user() -> str:
    """Who runs this process, for records such as the promotion history ("unknown" if unset)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "unknown"


def run(
    main: Callable[[Sequence[str]], int],
    argv: Sequence[str] | None = None,
    *,
    parser: Callable[[], argparse.ArgumentParser] | None = None,
) -> int:
    """Run a command; a DropscoreError becomes one stderr line and its exit code. ``parser``
    (the command's ``build_parser``) lets a BadArgument line point to the command's usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(ENV_PREFIX + "DEBUG", "") in ("1", "true")
    try:
        return main(args)
    except DropscoreError as exc:
        if debug:
            traceback.print_exc()
        usage = _usage_of(parser, args) if parser and isinstance(exc, BadArgument) else ""
        print(f"error [{exc.code}]: {exc.message}{usage}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last line of defence: never a traceback to a user
        if debug:
            traceback.print_exc()
        print(
            f"error [{Code.INTERNAL}]: unexpected {type(exc).__name__}: {exc}. "
            "This is a bug in dropscore; rerun with --debug and report the output.",
            file=sys.stderr,
        )
        return 1
