"""systemd's readiness protocol, without libsystemd (spec §9, sd_notify(3)).

With `Type=notify`, systemd waits for `READY=1` on the datagram socket named by NOTIFY_SOCKET
before it counts the service as started. A leading `@` names a socket in the abstract namespace.
"""

from __future__ import annotations


def send(socket_path: str, message: str) -> bool:
    """Send one notification; False (never an exception) when it cannot be delivered."""
    if not socket_path:
        return False
    import socket  # only under systemd: it costs start-up time

    address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError:  # systemd gone or the socket not ours: nothing to tell
        return False
    return True


class Notifier:
    """pyinit's own word to systemd (Type=notify): READY=1 once the group is started,
    STATUS= on restarts, STOPPING=1 at shutdown. The socket is pyinit's, not the tasks': it is
    taken out of their environment, so that no task can claim readiness for the group."""

    __slots__ = ("socket",)

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = env.pop("NOTIFY_SOCKET", "")
        # systemd's watchdog, if any, is pyinit's to feed (or not): no task may think it is its.
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)

    def send(self, message: str) -> None:
        if self.socket:
            send(self.socket, message)
