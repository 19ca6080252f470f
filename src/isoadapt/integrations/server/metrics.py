"""The server's counters in Prometheus' text format (prometheus_client), one registry per app so that two
apps in one process (tests, Ray replicas) never share counts."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("isoadapt_requests", "HTTP requests by path and status", ["path", "status"], registry=r)
        self.latency = Histogram(
            "isoadapt_request_seconds", "request latency by path", ["path"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.texts = Counter("isoadapt_texts", "texts embedded, by side", ["side"], registry=r)
        self.tokens = Counter("isoadapt_tokens", "tokens the model read (usage.prompt_tokens summed)", registry=r)
        self.truncated = Counter("isoadapt_truncated_texts", "texts longer than the window, cut to it", registry=r)
        self.batch_texts = Histogram(
            "isoadapt_batch_texts", "texts per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "isoadapt_batch_requests", "requests with texts in a forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.queued = Gauge("isoadapt_queued_texts", "texts waiting for the encoder", registry=r)
        self.disconnects = Counter("isoadapt_client_disconnects", "requests whose client left first", registry=r)

    def observe_batch(self, texts: int, requests: int) -> None:
        self.batch_texts.observe(texts)
        self.batch_requests.observe(requests)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
