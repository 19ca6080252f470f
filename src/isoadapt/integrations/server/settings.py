"""What `isoadapt serve` is told: where to listen, the limits a request meets (each refusal names the flag
that sets it), and the engine. Plain data, light to import: the command line's --help reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass

from isoadapt.encoding.encoder import TOKEN_BUDGET
from isoadapt.errors import InputError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeSettings:
    api_key: str | None = None  # Bearer token; None: no authentication (the server binds to loopback by default)
    max_inputs: int = 2048  # texts per request (OpenAI's limit)
    max_request_bytes: int = 8 << 20  # request body
    max_batch_tokens: int = TOKEN_BUDGET  # padded tokens per forward pass (texts of any requests), as `encode`
    max_wait_ms: float = 2.0  # how long an idle encoder waits for concurrent requests to fill a pass
    encode_workers: int | None = None  # forward passes at once, each on cores/N torch threads; None: one per core
    max_queue: int = 16384  # texts waiting for the encoder; a request that would pass it gets 503
    retry_after_s: int = 1  # the Retry-After of a 503

    def checked(self) -> ServeSettings:
        for name in ("max_inputs", "max_request_bytes", "max_batch_tokens", "encode_workers", "max_queue"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"--{name} {getattr(self, name)}: must be at least 1")
        if self.max_queue < self.max_inputs:
            raise InputError(
                f"--max_queue {self.max_queue}: must be at least --max_inputs {self.max_inputs}, or a full request "
                "could never be queued"
            )
        if not 0 <= self.max_wait_ms <= 1000:
            raise InputError(f"--max_wait_ms {self.max_wait_ms}: must be between 0 and 1000")
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("--api_key: is empty")
        return self
