"""`isoadapt serve`: load the adapter and its base encoder (every failure one line, before a port is
bound), then serve here with uvicorn or on Ray Serve."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.integrations.server.settings import LOOPBACK, ServeSettings

log = logging.getLogger(__name__)


def serve(
    load_adapter: Callable[[], object],
    cache_dir: Path,
    settings: ServeSettings,
    host: str = "127.0.0.1",
    port: int = 8080,
    name: str | None = None,
    backend: str | None = None,
    engine: str = "local",
    replicas: int = 1,
    ray_address: str | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C. `load_adapter` returns an `isoadapt.Adapter` (a Ray replica calls
    it again, so it must pickle: e.g. functools.partial(Adapter.load, folder))."""
    settings.checked()
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected 0 to 65535 (0: any free port)")
    if host not in LOOPBACK and settings.api_key is None:
        log.warning("serve: listening on %s without --api_key: anyone who reaches this port can embed", host)
    if engine == "ray":
        from isoadapt.integrations.server.ray_deployment import serve_on_ray

        return serve_on_ray(load_adapter, cache_dir, settings, host, port, name, backend, replicas, ray_address)
    if replicas != 1:
        raise InputError(f"--replicas {replicas}: only with --engine ray (here one process serves)")
    from isoadapt.integrations.server.app import bind, build_app, serve_forever
    from isoadapt.integrations.server.model import open_served

    model = open_served(load_adapter(), cache_dir, backend, name)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = build_app(model, settings)
    print(f"serving {model.name} on http://{bound_host}:{bound_port}/v1 (SIGTERM or Ctrl-C stops)", flush=True)
    serve_forever(app, sock)
