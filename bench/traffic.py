"""What the stack's services say to nats-server, read from its monitoring port: client messages
each way per service (`/connz`) and JetStream API requests (`/jsz`).

Unlike CPU time, these counts do not drift with the machine's load: a change that saves a
message per batch shows as exactly that. A service's replicas (`renderer-1`, `renderer-2`) count
as one.
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass, field

_REPLICA = re.compile(r"-\d+$")


@dataclass
class Traffic:
    sent: dict[str, int] = field(default_factory=dict)  # client -> server, by service
    received: dict[str, int] = field(default_factory=dict)  # server -> client
    api: int = 0  # JetStream API requests

    def add(self, before: Traffic, after: Traffic) -> None:
        """Add what happened between two snapshots."""
        pairs = ((self.sent, before.sent, after.sent), (self.received, before.received, after.received))
        for mine, then, now in pairs:
            for name, count in now.items():
                mine[name] = mine.get(name, 0) + count - then.get(name, 0)
        self.api += after.api - before.api

    def per_thousand_rows(self, rows: int) -> str:
        """Messages each way per 1,000 rows, by service, and API requests."""
        scale = 1000 / rows
        names = sorted(set(self.sent) | set(self.received))
        parts = [
            f"{name} {self.sent.get(name, 0) * scale:.1f} out/{self.received.get(name, 0) * scale:.1f} in"
            for name in names
        ]
        total = (sum(self.sent.values()) + sum(self.received.values())) * scale
        return f"{total:.1f} in all: " + "  ".join(parts) + f"; JetStream API requests {self.api * scale:.1f}"


def snapshot(monitor_port: int) -> Traffic:
    """The counts so far of every named connection to the server (closed ones drop out, which is
    why only connections alive across a job are compared: the services' own)."""
    base = f"http://127.0.0.1:{monitor_port}"
    with urllib.request.urlopen(f"{base}/connz?limit=10000", timeout=5) as reply:
        connz = json.load(reply)
    with urllib.request.urlopen(f"{base}/jsz", timeout=5) as reply:
        jsz = json.load(reply)
    traffic = Traffic(api=int(jsz.get("api", {}).get("total", 0)))
    for conn in connz.get("connections", []):
        name = _REPLICA.sub("", conn.get("name") or "")
        if not name:
            continue
        # The server's in_msgs are what the client sent; its out_msgs what the client received.
        traffic.sent[name] = traffic.sent.get(name, 0) + int(conn["in_msgs"])
        traffic.received[name] = traffic.received.get(name, 0) + int(conn["out_msgs"])
    return traffic
