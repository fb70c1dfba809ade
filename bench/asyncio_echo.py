#!/usr/bin/env python3
"""asyncio_echo.py - the same echo server on Python's asyncio, for comparison.

asyncio is the same idea as select_server, in a library: one thread, one
event loop waiting on every socket at once (epoll on Linux), and a
coroutine per client that reads up to 64 KiB, writes it back and waits in
drain() while the kernel's send buffer is full (backpressure: a client that
does not read stops being read).  The benchmark runs it beside the C
servers to show what the interpreter costs on top of the same design.

Run:    bench/asyncio_echo.py [-p PORT]     127.0.0.1; PORT defaults to 9877,
                                            0 lets the kernel choose

The first and only line on stdout is "listening on 127.0.0.1:PORT (tcp)",
flushed at once; nothing is printed per connection.  SIGTERM or SIGINT
stops the loop and exits 0, dropping any connected clients.  SIGPIPE needs
no handling: Python ignores it at start-up, so a write to a vanished client
raises BrokenPipeError instead.
Exit status: 1 for a bad argument, 2 if the listener cannot be set up.

Start reading at main(), then serve(); echo() is the per-client handler.
Python 3.11, standard library only.
"""
import argparse
import asyncio
import os
import re
import signal
import sys

DEFAULT_PORT = 9877
LISTENQ = 1024              # listen() backlog, as in UNP and the C servers
READ_SIZE = 64 * 1024       # bytes asked of each read


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a command-line error is one line on stderr and exit 1."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: {message}\n")
        sys.exit(1)


def parse_args(argv):
    """The port from -p, checked as strictly as common.h's parse_port."""
    parser = OneLineParser(
        description="TCP echo server on asyncio, listening on 127.0.0.1.")
    parser.add_argument(
        "-p", dest="port", metavar="PORT", default=str(DEFAULT_PORT),
        help=f"TCP port (default {DEFAULT_PORT}, 0 = kernel chooses)")
    args = parser.parse_args(argv)
    # int() would take " 12", "+12" and "1_2": only plain digits will do.
    if not re.fullmatch(r"[0-9]+", args.port) or int(args.port) > 65535:
        parser.error(f"invalid port '{args.port}' (expected 0-65535)")
    return int(args.port)


async def echo(reader, writer):
    """Echo one client until its EOF, then close; a reset means it left."""
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()        # wait here while the client lags
        writer.close()                  # sends what is still buffered first
        await writer.wait_closed()
    except ConnectionError:             # ECONNRESET, EPIPE
        writer.close()
    except asyncio.CancelledError:
        # Shutdown: drop the client at once, and end normally rather than
        # cancelled (3.11's streams log a traceback for a cancelled handler).
        writer.transport.abort()


async def serve(port):
    """Listen, print the port line, serve until SIGTERM or SIGINT.

    Returns the exit status: 0, or 2 if the listener cannot be set up.
    """
    try:
        server = await asyncio.start_server(
            echo, "127.0.0.1", port, backlog=LISTENQ, reuse_address=True)
    except OSError as e:
        # asyncio rewords bind errors: give the system's own words.
        reason = os.strerror(e.errno) if e.errno else str(e)
        print(f"asyncio_echo.py: listening on 127.0.0.1:{port}: {reason}",
              file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signo in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signo, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{bound} (tcp)", flush=True)
    await stop.wait()
    # Stop accepting; asyncio.run() then cancels the clients' handlers.
    server.close()
    return 0


def main():
    port = parse_args(sys.argv[1:])
    return asyncio.run(serve(port))


if __name__ == "__main__":
    sys.exit(main())
