"""What every dropscore command line shares: env-var defaults and turning errors into exit codes.

The CLI is the only place that turns an exception into an exit code and a line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from scorer.errors import DropscoreError

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
        """A usage mistake: one line with a code, like every other error (exit 1: retryable)."""
        print(f"error [USAGE]: {message}; see '{self.prog} --help'", file=sys.stderr)
        raise SystemExit(1)

    def add_subparsers(self, **kw: Any) -> Any:
        kw.setdefault("parser_class", _SubParser(self._environ))
        return super().add_subparsers(**kw)


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


def run(main: Callable[[Sequence[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run a command; a DropscoreError becomes one stderr line and its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(ENV_PREFIX + "DEBUG", "") in ("1", "true")
    try:
        return main(args)
    except DropscoreError as exc:
        if debug:
            traceback.print_exc()
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last line of defence: never a traceback to a user
        if debug:
            traceback.print_exc()
        print(
            f"error [INTERNAL]: unexpected {type(exc).__name__}: {exc}. "
            "This is a bug in dropscore; rerun with --debug and report the output.",
            file=sys.stderr,
        )
        return 1
