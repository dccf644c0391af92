"""The gateway: HTTP outside, NATS inside.

A FastAPI app that exposes the imagegen subjects to HTTP clients (a web shop back end, a browser)
and serves the one-page web console from `static/`. It holds no state: every call goes through
the typed NATS client (`shared.client.Client`) to the same endpoints and streams every other
client uses, and rendered images are read from the shared output folder (or the images bucket).
See docs/gateway.md.
"""
