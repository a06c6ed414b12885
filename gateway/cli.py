"""Command line: `ev-gateway run | demo | check-config | profiles | simulate`.

Every error a user can cause ends in one line on stderr and an exit status from
`gateway.errors` (README "Exit statuses"), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from gateway import __version__
from gateway.config import ConfigError, load_config, redacted
from gateway.errors import (
    EX_BROKEN_PIPE,
    EX_OSERR,
    EX_SOFTWARE,
    EX_UNAVAILABLE,
    EX_USAGE,
    UserError,
)

log = logging.getLogger("gateway")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _config_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--config", metavar="FILE", help=help_text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ev-gateway",
        description="EV-charger pool gateway: polls chargers, publishes on MQTT, "
        "distributes power proposals.",
    )
    parser.add_argument("--version", action="version", version=f"ev-gateway {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    run = commands.add_parser("run", help="run the daemon", description="Run the daemon.")
    _config_option(run, "TOML config file (default: $EVGW_CONFIG)")

    demo = commands.add_parser(
        "demo",
        help="simulated chargers with live figures",
        description="Run the gateway on simulated chargers and show live pool figures until "
        "Ctrl-C. Uses the configured broker, or an embedded one when none is reachable. "
        "With --config, every Modbus TCP charger of the file is simulated on 127.0.0.1 at "
        "its port, with an EV that matches its wiring.",
    )
    _config_option(demo, "TOML config to run (default: the built-in demo site)")
    demo.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )

    check = commands.add_parser(
        "check-config",
        help="validate a config and print it resolved",
        description="Validate a config file (with EVGW_* overrides) and print it resolved, "
        "secrets shown as ***.",
    )
    check.add_argument("path", nargs="?", help="TOML config file (or --config)")
    _config_option(check, "TOML config file (default: $EVGW_CONFIG)")

    commands.add_parser(
        "profiles",
        help="list supported charger models",
        description="List the supported charger models: adapter, what it reads, watchdog / "
        "fail-safe, phase switching and the document it came from.",
    )
    _simulate_parser(commands)
    return parser


def _simulate_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    from gateway.simulator.serve import simulator_profiles

    simulate = commands.add_parser(
        "simulate",
        help="serve simulated chargers over Modbus TCP",
        description="Serve simulated chargers over Modbus TCP until Ctrl-C: COUNT chargers "
        "of one profile on consecutive ports, or with --config every Modbus TCP charger of "
        "a config file on 127.0.0.1 at its port, each with an EV matching its wiring "
        "(ev_phases, else the number of wired phases).",
    )
    _config_option(simulate, "serve the Modbus TCP chargers of this config instead")
    simulate.add_argument(
        "--profile",
        default="generic",
        choices=simulator_profiles(),
        metavar="NAME",
        help="register map to serve (see `ev-gateway profiles`; default generic)",
    )
    simulate.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    simulate.add_argument(
        "--port", type=int, default=5020, help="first TCP port; the next charger gets the next"
    )
    simulate.add_argument("--count", type=int, default=1, help="how many chargers (default 1)")
    simulate.add_argument(
        "--ev-phases",
        type=int,
        choices=[1, 2, 3],
        default=None,
        help="phases the EV charges on (default 3; with --config: from the wiring)",
    )
    simulate.add_argument(
        "--ev-current",
        type=float,
        default=16.0,
        metavar="A",
        help="the most current per phase the EV draws (default 16 A); it draws less when "
        "the charger's limit is lower, nothing below 6 A",
    )
    simulate.add_argument(
        "--unplugged", action="store_true", help="no EV plugged in (cable state: unplugged)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ev-gateway` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The OCPP library logs every frame at INFO: too much for a daemon's journal.
    logging.getLogger("gateway.adapters.ocpp.wire").setLevel(logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except ConfigError as exc:
        return _fail(f"invalid configuration: {exc}", exc.status)
    except UserError as exc:
        return _fail(str(exc), exc.status)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`check-config x | head`): stop quietly, like `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EX_BROKEN_PIPE
    except OSError as exc:
        binding = exc.errno == errno.EACCES and "bind" in str(exc)  # a port below 1024
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) or binding:
            return _fail(f"cannot listen: {_os_message(exc)}", EX_UNAVAILABLE)
        return _fail(_os_message(exc), EX_OSERR)
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        return _fail(f"internal error: {exc!r} (a bug; --log-level DEBUG shows where)", EX_SOFTWARE)


def _fail(message: str, status: int) -> int:
    print(f"ev-gateway: {message}", file=sys.stderr)
    return status


def _os_message(exc: OSError) -> str:
    """`[Errno 98] error while ...: address already in use` without the `[Errno 98]`."""
    text = str(exc)
    return text.split("] ", 1)[1] if text.startswith("[Errno") and "] " in text else text


def _config_path(args: argparse.Namespace) -> str | None:
    """check-config's positional path or --config (the same file when both are given)."""
    path = getattr(args, "path", None)
    if path is not None and args.config is not None and path != args.config:
        raise UserError(
            f"two config files given ({path} and --config {args.config}); give one",
            EX_USAGE,
        )
    return path if path is not None else args.config  # type: ignore[no-any-return]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        config = load_config(_config_path(args))
        print(json.dumps(redacted(config), indent=2))
        from gateway.adapters.ocpp.handshake import security_warnings
        from gateway.mqtt.ingress import proposal_rules

        for warning in security_warnings(config.ocpp, config.chargers):
            print(f"ev-gateway: warning: {warning}", file=sys.stderr)
        for line in proposal_rules(config):
            print(f"ev-gateway: {line}", file=sys.stderr)
        return 0
    if args.command == "profiles":
        from gateway.adapters.catalog import catalog, text_listing

        print(text_listing(catalog()), end="")
        return 0
    if args.command == "run":
        from gateway.daemon import run_daemon

        run_daemon(load_config(args.config))
        return 0
    if args.command == "demo":
        from gateway.demo import run_demo

        asyncio.run(run_demo(args.config, args.duration))
        return 0
    if args.command == "simulate":
        return _simulate(args)
    raise AssertionError(args.command)  # argparse only accepts the commands above


def _simulate(args: argparse.Namespace) -> int:
    from gateway.simulator.serve import EvSpec, SimulatorSpec, serve_specs, specs_for_config

    if args.config is not None:
        specs = specs_for_config(load_config(args.config))
    else:
        if not 1 <= args.count <= 10000:
            raise UserError(f"--count must be 1-10000, got {args.count}", EX_USAGE)
        if not 0 <= args.port <= 65535 - args.count + 1:
            raise UserError(f"--port {args.port} leaves no room for {args.count}", EX_USAGE)
        if not 0 <= args.ev_current <= 80:
            raise UserError(f"--ev-current must be 0-80 A, got {args.ev_current:g}", EX_USAGE)
        ev = None if args.unplugged else EvSpec(args.ev_phases or 3, args.ev_current)
        specs = [
            SimulatorSpec(args.profile, args.host, args.port + i if args.port else 0, None, ev)
            for i in range(args.count)
        ]
    asyncio.run(serve_specs(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
