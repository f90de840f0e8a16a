"""The ports a process listens on, bound before it does anything else.

``mailflow serve`` binds its HTTP port (and the embedded inbox's) first, so that a start that
cannot listen stops with a one-line error naming the setting to change, before the database is
touched or the demo is seeded. Each listening command binds the same way (``bind``) and takes
``--host``/``--port`` over its settings (``cli._common.add_listen_options``).
"""

from __future__ import annotations

import socket


class CannotListen(Exception):
    """The address cannot be bound; the message names the setting to change."""


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: one the system picks), ready to be served.

    ``setting`` names the configuration key (e.g. ``server.port``) quoted in the error.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise CannotListen(
            f"cannot listen on {host}:{port}: unknown host; change the host"
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CannotListen(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): set {setting} to a free "
            "port, or stop what is using it"
        ) from exc
    # Listening from now on: a connection made before the server runs waits in the backlog.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port
