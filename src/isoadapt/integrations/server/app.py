"""The HTTP app (FastAPI, served by uvicorn): POST /v1/embeddings, GET /v1/models, /health and /metrics.

FastAPI because it is what Python's model servers (and Ray Serve's ingress) speak; the embeddings body is
read and checked by protocol.py, not by pydantic, so every refusal is OpenAI's error shape with a message
that names the field. Every failure is answered as JSON: a 4xx for a bad request, 503 with Retry-After
when the queue is full, 500 only for a bug (and the server keeps serving)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from isoadapt.encoding.backend_choice import usable_cores
from isoadapt.errors import InputError
from isoadapt.integrations.server.batching import Batcher, QueueFull
from isoadapt.integrations.server.metrics import ServerMetrics
from isoadapt.integrations.server.model import ServedModel
from isoadapt.integrations.server.protocol import ApiError, embeddings_body, models_body, parse_request
from isoadapt.integrations.server.settings import ServeSettings

log = logging.getLogger(__name__)
CLIENT_CLOSED = 499  # nginx's status for a request whose client left: logged, never seen by the client


def share_cores(workers: int | None) -> int:
    """How many encode workers, each with cores/N torch threads: N passes side by side. By default one per
    core, each on one thread: on this 2-core CPU two one-thread passes encode more per second than one pass
    on both cores at 1, 16 and 64 clients (bench/README.md, section 14). The cores are the threads torch
    started with, at most the CPUs this process may run on; a Ray replica's torch has its actor's one CPU,
    so it gets one worker. Read once per process, so a second app in it gets the same."""
    import torch

    global _CORES
    if _CORES is None:
        _CORES = max(1, min(torch.get_num_threads(), usable_cores()))
    workers = workers or _CORES
    torch.set_num_threads(max(1, _CORES // workers))
    return workers


_CORES: int | None = None  # the cores torch had before share_cores changed its thread count


def build_app(model: ServedModel, settings: ServeSettings) -> FastAPI:
    """The app over a loaded model: its first batch (the warm-up) runs at startup, before /health says ready."""
    metrics = ServerMetrics()
    state = {"ready": False, "batcher": None, "created": int(time.time())}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        workers = share_cores(settings.encode_workers)
        await asyncio.to_thread(model.warm_up)
        batcher = Batcher(
            model.encode_pass,
            model.finish,
            max_texts=model.pass_texts,
            max_tokens=settings.max_batch_tokens,
            max_wait_s=settings.max_wait_ms / 1000,
            max_queue_texts=settings.max_queue,
            model_of=model.model_of,
            observe_batch=metrics.observe_batch,
            workers=workers,
        )
        batcher.start()
        state.update(batcher=batcher, ready=True)
        log.info("serve: ready, models %s, %d encode worker(s)", model.catalog.ids(), workers)
        yield
        state["ready"] = False
        await batcher.stop()  # uvicorn has drained the requests in flight; finish anything queued

    app = FastAPI(title="isoadapt serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Measured, metrics=metrics)

    def refuse(error: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise ApiError(
                401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'", None, "invalid_api_key"
            )

    def ready_model() -> ServedModel:
        if not state["ready"]:
            raise ApiError(503, "the model is loading; retry shortly", retry=settings.retry_after_s)
        return model

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):  # unknown path, wrong method
        message = f"{request.method} {request.url.path}: {error.detail}"
        return refuse(ApiError(error.status_code, message, None, "not_found" if error.status_code == 404 else None))

    @app.get("/health")
    async def health():
        if not state["ready"]:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})
        return {"status": "ready", "models": model.catalog.ids()}

    @app.get("/metrics")
    async def prometheus():
        batcher = state["batcher"]
        metrics.queued.set(batcher.queued_texts if batcher else 0)
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.get("/v1/models")
    async def models(request: Request):
        try:
            authorize(request)
            return models_body(ready_model().catalog, state["created"])
        except ApiError as error:
            return refuse(error)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        try:
            authorize(request)
            served = ready_model()
            body = await read_body(request, settings.max_request_bytes)
            asked = parse_request(body, served.catalog, settings.max_inputs)
            prompted, counts = await asyncio.get_running_loop().run_in_executor(
                served.counting, served.read, asked.texts, asked.side
            )
            read = [min(count, served.windows[asked.side]) for count in counts]
            try:
                future = state["batcher"].submit(prompted, asked.side, read)
            except QueueFull as full:
                raise ApiError(503, f"the server is busy: {full}; retry later", retry=settings.retry_after_s) from None
            vectors = await until_done_or_gone(request, future)
        except ApiError as error:
            return refuse(error)
        except ClientDisconnect:
            vectors = None
        if vectors is None:
            metrics.disconnects.inc()
            return Response(status_code=CLIENT_CLOSED)
        metrics.texts.labels(asked.side).inc(len(asked.texts))
        metrics.tokens.inc(sum(read))
        metrics.truncated.inc(sum(count > served.windows[asked.side] for count in counts))
        return Response(
            embeddings_body(vectors, asked.encoding_format, asked.model, sum(read)), media_type="application/json"
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception):  # a bug, still answered in the API's shape
        log.exception("serve: %s %s failed", request.method, request.url.path)
        return refuse(ApiError(500, f"internal error ({type(error).__name__}: {error}); the server keeps serving"))

    return app


KNOWN_PATHS = ("/v1/embeddings", "/v1/models", "/health", "/metrics")


class Measured:
    """ASGI middleware: each request counted by path and status, and timed (a plain wrapper of `send`, so
    the handler still sees its client's disconnect)."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [CLIENT_CLOSED]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes: a huge upload is never held whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body has {declared} bytes; at most {limit} (--max_request_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body passes {limit} bytes (--max_request_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def until_done_or_gone(request: Request, future: asyncio.Future):
    """The vectors, or None when the client disconnects first (its queued texts are then dropped)."""
    gone = asyncio.ensure_future(request.receive())  # after the body, the next message is the disconnect
    try:
        done, _ = await asyncio.wait({future, gone}, return_when=asyncio.FIRST_COMPLETED)
        if future in done:
            return future.result()
        future.cancel()
        return None
    finally:
        gone.cancel()
        future.cancel()  # a no-op once answered; drops the texts when this handler is cancelled (a drain ran out)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one line (exit 2), not a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_forever(app: FastAPI, sock: socket.socket, drain_s: float = 30.0) -> None:
    """Run uvicorn on the bound socket until SIGTERM or Ctrl-C, which stop new connections, let the
    requests in flight finish (at most `drain_s`), finish the queue, and return (exit 0)."""
    import signal
    import threading

    import uvicorn

    config = uvicorn.Config(app, log_level="info", access_log=False, timeout_graceful_shutdown=drain_s)
    server = uvicorn.Server(config)
    main = threading.current_thread() is threading.main_thread()
    # uvicorn re-raises the stopping signal to the handler it found; a drained stop is a normal end here.
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
