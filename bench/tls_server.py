#!/usr/bin/python3
"""STARTTLS SMTP server for bench/run: aiosmtpd, messages thrown away.

Serves on a listening socket inherited from bench/run (--fd N), so the port is
known before this process starts and there is no race for it. STARTTLS is
required before MAIL. After each message it writes "mesg=N\\r" to stdout (a
file), in the same format as smtp-sink -c, so bench/run can check that every
message arrived. Exits when its stdin (a pipe from bench/run) reaches EOF, on
SIGTERM, or after --lifetime seconds, whichever comes first.
"""
import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        sys.stdout.write("mesg=%d\r" % self.count)
        sys.stdout.flush()
        return "250 2.0.0 Ok"


async def serve(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(False)
    handler = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bench-tls", tls_context=ctx,
                     require_starttls=True, timeout=30),
        sock=sock)
    done = loop.create_future()

    def stop(*_):
        if not done.done():
            done.set_result(None)

    def stdin_ready():
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            stop()

    loop.add_reader(0, stdin_ready)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.call_later(args.lifetime, stop)
    await done
    server.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--lifetime", type=float, default=900.0)
    args = p.parse_args()
    logging.disable(logging.CRITICAL)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
