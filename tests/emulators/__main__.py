"""``python -m tests.emulators NAME [--port N] [--host H] [--option KEY=VALUE]...``: run an
emulator as a real HTTP server until Ctrl-C. Prints the base URL on the first line."""
from __future__ import annotations

import argparse
import json
import sys
import threading

from . import EMULATORS, create


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.emulators", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(EMULATORS))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="constructor option of the emulator (value parsed as JSON when it is JSON)")
    args = ap.parse_args(argv)
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    server = create(args.name, **options).serve(args.host, args.port)
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
