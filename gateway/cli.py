"""Command line: `ev-gateway run | demo | check-config | profiles | simulate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.config import EX_CONFIG, ConfigError, load_config, redacted

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ev-gateway",
        description="EV-charger pool gateway: polls chargers, publishes on MQTT, "
        "distributes power proposals.",
    )
    parser.add_argument("--version", action="version", version=f"ev-gateway {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon", description="Run the daemon.")
    run.add_argument("--config", help="TOML config file (default: $EVGW_CONFIG)")

    demo = commands.add_parser(
        "demo",
        help="simulated chargers with live figures",
        description="Run the gateway on simulated chargers and show live pool figures until "
        "Ctrl-C. Uses the configured broker, or an embedded one when none is reachable.",
    )
    demo.add_argument("--config", help="optional TOML config (default: built-in demo site)")
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")

    check = commands.add_parser(
        "check-config",
        help="validate a config and print it resolved",
        description="Validate a config file (with EVGW_* overrides) and print it resolved.",
    )
    check.add_argument("path", help="TOML config file")

    commands.add_parser(
        "profiles",
        help="list supported charger models",
        description="List the supported charger models: name, vendor and model, protocol.",
    )

    simulate = commands.add_parser(
        "simulate",
        help="serve simulated chargers over Modbus TCP",
        description="Serve N simulated chargers of a profile on consecutive TCP ports.",
    )
    simulate.add_argument("--profile", default="generic")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=5020)
    simulate.add_argument("--count", type=int, default=1)
    return parser


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
        return _dispatch(args)
    except ConfigError as exc:
        print(f"ev-gateway: invalid configuration: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        config = load_config(args.path)
        print(json.dumps(redacted(config), indent=2))
        return 0
    if args.command == "profiles":
        from gateway.adapters.modbus.profile import available_profiles

        for profile in available_profiles():
            print(f"{profile.name}\t{profile.vendor} {profile.model}\t{profile.protocol}")
        print("ocpp\tany OCPP 1.6J charge point\tocpp-1.6j")
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
        from gateway.simulator.serve import serve_simulators

        asyncio.run(serve_simulators(args.profile, args.host, args.port, args.count))
        return 0
    raise AssertionError(args.command)  # argparse only accepts the commands above


if __name__ == "__main__":
    sys.exit(main())
