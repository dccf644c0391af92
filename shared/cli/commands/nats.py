"""`imagegen nats setup` and `imagegen nats config`: the NATS side of a deployment.

`setup` declares every stream, bucket and durable consumer as the identity in the environment,
which under the permissions layout must be the admin one (compose and Kubernetes run it once
before the services; the local stack runs it itself). `config` prints the layout's
`authorization {}` block with each password read from nats-server's environment, for an
operator who runs their own nats-server.
"""

from __future__ import annotations

import argparse

import nats.errors

from shared.cli.output import emit
from shared.contract.errors import ImagegenError
from shared.runtime.bus.connect import connect
from shared.runtime.bus.permissions import ADMIN, from_environment, render_authorization
from shared.runtime.settings import Settings
from shared.workflow.topology import declare_all


async def setup(args: argparse.Namespace) -> int:
    # The environment's identity (IMAGEGEN_NATS_USER...), never the local stack's client one.
    settings = Settings(nats_url=args.nats_url) if args.nats_url else Settings()
    nc = await connect(settings, "imagegen-nats-setup", retry_for=args.wait)
    try:
        declared = await declare_all(nc.jetstream(), settings)
    except nats.errors.TimeoutError as exc:
        # The server answers nothing to a request the identity may not send: it only logs it.
        raise ImagegenError(
            f"NATS did not answer the JetStream API ({exc or type(exc).__name__}); "
            f"does {settings.nats_user or 'this connection'} have the {ADMIN} identity's rights?"
        ) from exc
    finally:
        await nc.close()
    emit(
        args,
        {"consumers": declared},
        "declared the streams, buckets and consumers:\n  " + "\n  ".join(declared),
    )
    return 0


def config(args: argparse.Namespace) -> int:
    print(render_authorization(from_environment), end="")
    return 0
