"""``pyvirtd``: the command line of the daemon."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="pyvirtd",
        description="pyvirt's per-host daemon: REST API on RUN/pyvirtd.sock, events, jobs.",
    )
    ap.add_argument(
        "--listen-tcp",
        metavar="HOST:PORT",
        help="also listen on TCP with TLS (tokens or client certificates)",
    )
    ap.add_argument("--tls-cert", metavar="FILE", help="server certificate (PEM)")
    ap.add_argument("--tls-key", metavar="FILE", help="server key (PEM)")
    ap.add_argument(
        "--tls-client-ca", metavar="FILE", help="accept client certificates signed by this CA"
    )
    ap.add_argument(
        "--no-autostart",
        action="store_true",
        help="do not start autostart networks, pools and domains",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log more")
    return ap.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = _args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s pyvirtd[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    from pyvirt.daemon.memory import lean_process

    lean_process()
    import pyvirt.api
    from pyvirt.daemon.conffile import read_config_file
    from pyvirt.daemon.context import Daemon, DaemonConfig
    from pyvirt.daemon.server import serve
    from pyvirt.errors import PyvirtError
    from pyvirt.state.paths import StatePaths

    try:
        paths = StatePaths.default()
        file = read_config_file(paths.daemon_config_dir / "pyvirtd.toml")
        config = DaemonConfig(
            paths,
            listen_tcp=args.listen_tcp or file.get("listen_tcp"),
            tls_cert=args.tls_cert or file.get("tls_cert"),
            tls_key=args.tls_key or file.get("tls_key"),
            tls_client_ca=args.tls_client_ca or file.get("tls_client_ca"),
            tls_names=tuple(file.get("tls_names", ())),
            autostart=not args.no_autostart and file.get("autostart", True),
        )
        conn = pyvirt.api.open("pyvirt:///embed")
        serve(Daemon(config, conn))
    except PyvirtError as err:
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
