"""Throwaway local servers (nats-server with JetStream, PostgreSQL) for the local stack
(`imagegen up`, `make run`) and the test suite.

Both bind 127.0.0.1 only (as do the three members of a `NatsCluster`), on a free port unless
told otherwise, keep their data in a directory the caller chooses (so a restart on the same port
and directory is a real restart), and never outlive the caller: each runs in its own process
group with a parent-death signal and an atexit hook. They refuse the machine's shared servers'
ports (4222, 5432) and any port already served.

    nats = NatsServer.start(tmp / "nats")  # NatsCluster.start(tmp / "c"): three, routed
    pg = PostgresServer.start(Path(tempfile.mkdtemp()) / "pg")
    url = pg.create_database("imagegen")
    ...
    nats.stop(); pg.stop()
"""

from devstack._proc import LocalStackError, free_port
from devstack.cluster import NatsCluster
from devstack.nats import NatsServer, find_nats_server
from devstack.pghost import find_pg_bindir
from devstack.postgres import PostgresServer

__all__ = [
    "LocalStackError",
    "NatsCluster",
    "NatsServer",
    "PostgresServer",
    "find_nats_server",
    "find_pg_bindir",
    "free_port",
]
