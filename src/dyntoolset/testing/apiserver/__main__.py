"""Run the emulator from the command line, seeded from manifests.

    python -m dyntoolset.testing.apiserver --manifests examples/cluster/ \\
        --port 8001 --kubeconfig /tmp/emulator.kubeconfig

It serves until interrupted (Ctrl-C or SIGTERM) and writes a kubeconfig whose
current context points at itself, so ``KUBECONFIG=/tmp/emulator.kubeconfig``
makes the official client (and dyntoolset) talk to it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from dyntoolset.testing.apiserver.resources import RESOURCES
from dyntoolset.testing.apiserver.server import ApiServer


def _bounded(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` in ``low..high`` (NaN never is)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{text} is not in {low}..{high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m dyntoolset.testing.apiserver",
        description="Serve an emulated Kubernetes API on a loopback port, seeded from "
        "manifests (multi-document YAML, JSON, List objects, directories or '-').",
    )
    parser.add_argument(
        "--manifests",
        action="append",
        default=[],
        metavar="PATH",
        help="a manifest file, directory or '-' (repeatable)",
    )
    parser.add_argument(
        "--port",
        type=_bounded(int, 0, 65535),
        default=0,
        help="port to listen on, 0..65535 (default 0: any free port)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); only loopback addresses "
        "(127.0.0.1, ::1, localhost) unless --allow-non-loopback is given",
    )
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow --host to be another interface or a wildcard (0.0.0.0, ::): the "
        "emulator speaks plain HTTP and, without --token, authenticates nobody",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="write a kubeconfig pointing at the emulator here "
        "(default: a temporary file, printed at start)",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="require this bearer token (repeatable; the first goes into the kubeconfig)",
    )
    parser.add_argument(
        "--review-token",
        action="append",
        default=[],
        metavar="TOKEN=USER",
        help="make TokenReview authenticate TOKEN as USER (repeatable)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="USER=VERB:PATH",
        help="let SubjectAccessReviews allow USER to VERB the non-resource URL PATH "
        "(a trailing * is a prefix; USER * is anyone; repeatable)",
    )
    parser.add_argument(
        "--history-limit",
        type=_bounded(int, 1, 10**9),
        default=1000,
        help="watch history window in events (older is 410 Expired)",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=_bounded(float, 0.001, 86400.0),
        default=60.0,
        help="seconds between watch bookmarks (default 60, as the API server)",
    )
    parser.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="NS/SVC:PORT=URL",
        help="forward the service proxy of NS/SVC:PORT to URL (repeatable)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 when a manifest has a problem"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    proxies = []
    for spec in args.proxy:
        try:
            where, url = spec.split("=", 1)
            ns_svc, port = where.rsplit(":", 1)
            namespace, service = ns_svc.split("/", 1)
        except ValueError:
            print(f"error: --proxy {spec!r} is not NS/SVC:PORT=URL", file=sys.stderr)
            return 2
        proxies.append((namespace, service, port, url))
    reviews = []
    for spec in args.review_token:
        token, _, user = spec.partition("=")
        if not token or not user:
            print(f"error: --review-token {spec!r} is not TOKEN=USER", file=sys.stderr)
            return 2
        reviews.append((token, user))
    rules = []
    for spec in args.allow:
        user, _, action = spec.partition("=")
        verb, _, path = action.partition(":")
        if not user or not verb or not path.startswith("/"):
            print(f"error: --allow {spec!r} is not USER=VERB:/PATH", file=sys.stderr)
            return 2
        rules.append((None if user == "*" else user, verb, path))
    try:
        server = ApiServer(
            host=args.host,
            port=args.port,
            kubeconfig=args.kubeconfig,
            tokens={token: f"user-{index}" for index, token in enumerate(args.token)},
            history_limit=args.history_limit,
            bookmark_interval=args.bookmark_interval,
            allow_non_loopback=args.allow_non_loopback,
        )
    except ValueError as exc:
        print(f"error: --host: {exc}", file=sys.stderr)
        return 2
    problems = server.seed_manifests(*args.manifests) if args.manifests else []
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if problems and args.strict:
        return 2
    for namespace, service, port, url in proxies:
        server.register_proxy(namespace, service, port, url)
    for token, user in reviews:
        server.add_token(token, user)
    for rule_user, verb, path in rules:
        server.allow(rule_user, verb, path=path)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host} port {args.port}: {exc}", file=sys.stderr)
        return 1
    with server:
        count = sum(len(server.list_objects(res.plural)) for res in RESOURCES if res.stored)
        print(f"Kubernetes API emulator serving {count} objects on {server.url}", flush=True)
        print(f"kubeconfig: {server.kubeconfig_path}", flush=True)
        print(
            f"export KUBECONFIG={server.kubeconfig_path}  # then run your client; Ctrl-C stops",
            flush=True,
        )
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
