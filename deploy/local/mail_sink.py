"""A local SMTP server that delivers nowhere: `make run` points notification at it, keeps each
message as a .eml file and prints one line per message.

mail_sink.py --port 2525 --dir .local/mail
"""

import argparse
import asyncio
import itertools
import signal
import sys
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class Sink:
    """aiosmtpd handler: every accepted message becomes <dir>/<time>-<n>.eml."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        now = datetime.now()
        path = self.directory / f"{now:%Y%m%dT%H%M%S}-{next(self.count):04d}.eml"
        path.write_bytes(content)
        subject = message_from_bytes(content, policy=policy.default).get("Subject", "")
        to = ", ".join(envelope.rcpt_tos)
        print(f"{now:%H:%M:%S} mail to {to}: {subject}  ({path})", flush=True)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path) -> None:
    sink = Sink(directory)
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(sink, hostname="mail-sink", enable_SMTPUTF8=True)

    server = await loop.create_server(protocol, host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"), help="where mail lands")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(serve(args.host, args.port, args.dir))
    except OSError as error:
        print(f"mail sink: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
