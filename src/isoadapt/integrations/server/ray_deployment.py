"""`isoadapt serve --engine ray`: the same FastAPI app (app.py) as a Ray Serve deployment, one app per
replica, each replica with its own model, batcher and metrics. Ray Serve's proxy spreads requests over the
replicas; on a cluster (`--ray_address`) they land on its nodes, each of which needs the model files."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.integrations.server.settings import ServeSettings

log = logging.getLogger(__name__)
APP_NAME = "isoadapt"


def deployment(replicas: int):
    """The Ray Serve deployment class (built here: Ray is imported only for --engine ray)."""
    from ray import serve

    @serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 1})
    @serve.ingress()
    class IsoadaptEmbeddings:
        def __init__(self, open_model: Callable[[], object], settings: ServeSettings):
            self.model, self.settings = open_model(), settings

        def __serve_build_asgi_app__(self):
            from isoadapt.integrations.server.app import build_app

            return build_app(self.model, self.settings)

    return IsoadaptEmbeddings


def start_on_ray(open_model: Callable[[], object], settings: ServeSettings, host: str, port: int, replicas: int):
    """Deploy and wait until every replica has loaded its model and run its warm-up batch."""
    from ray import serve

    if replicas < 1:
        raise InputError(f"--replicas {replicas}: must be at least 1")
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(replicas).bind(open_model, settings), name=APP_NAME, route_prefix="/")


def serve_on_ray(load_adapter, cache_dir: Path, settings, host, port, name, backend, replicas, ray_address) -> None:
    """Start (or join) Ray, deploy, and serve until SIGTERM or Ctrl-C, then shut the deployment down."""
    import functools

    import ray
    from ray import serve

    from isoadapt.encoding.ray_encode import check_ray_address

    check_ray_address(ray_address)
    if port == 0:
        raise InputError("--port 0: Ray Serve needs a fixed port; name one")
    ray.init(address=ray_address, include_dashboard=False, logging_level=logging.WARNING)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        start_on_ray(
            functools.partial(open_ready, load_adapter, cache_dir, backend, name), settings, host, port, replicas
        )
        print(f"serving on Ray Serve at http://{host}:{port}/v1, {replicas} replica(s) (SIGTERM stops)", flush=True)
        stop.wait()
        serve.shutdown()  # each replica drains its requests, then its app's shutdown finishes its queue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ray.shutdown()


def open_ready(load_adapter, cache_dir: Path, backend: str | None, name: str | None):
    """In a replica: the adapter and its base encoder (open_served, as the local server does)."""
    from isoadapt.integrations.server.model import open_served

    return open_served(load_adapter(), cache_dir, backend, name)
