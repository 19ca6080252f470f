"""The OpenAI embeddings request and response, read and written by hand so every refusal names the field,
the index and what is wrong (a 4xx in OpenAI's error shape), and no input reaches the model unchecked.

The side of a request: `input_type` ("query" / "document", Cohere's and Voyage's convention; Cohere's
"search_query" / "search_document" too) or a model id per side ("NAME:query", "NAME:document") for clients
that cannot send an extra field. A request that names neither gets `default_side`: "document" for a head
on both sides (what `SentenceTransformer(export).encode(texts)` gives with no task; the stock Router's
default route), and a 400 for a query-only head, whose two sides live in different spaces, or for a run
whose two sides have different prompts (model.ServedModel.warm_up decides)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np
import orjson

from isoadapt.head_options import SIDES

INPUT_TYPES = {"query": "query", "document": "document", "search_query": "query", "search_document": "document"}
ENCODING_FORMATS = ("float", "base64")
FIELDS = ("input", "model", "encoding_format", "dimensions", "user", "input_type")
ERROR_TYPES = {401: "authentication_error", 404: "invalid_request_error", 413: "invalid_request_error"}


class ApiError(Exception):
    """A refusal: HTTP status, one-line message, the request field at fault (OpenAI's `param`)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None, retry=None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.retry_after = status, message, param, code, retry

    def body(self) -> dict:
        kind = ERROR_TYPES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Catalog:
    """What the server offers: one model name, each side's width, and which side a request gets by default
    (None: a request must name its side)."""

    name: str
    widths: dict  # side -> vector width
    default_side: str | None

    def ids(self) -> list[str]:
        return [self.name, *(f"{self.name}:{side}" for side in SIDES)]


@dataclass(frozen=True)
class EmbeddingRequest:
    texts: list[str]
    side: str
    encoding_format: str
    model: str  # as the client named it: echoed in the response, as OpenAI does


def parse_request(body: bytes, catalog: Catalog, max_inputs: int) -> EmbeddingRequest:
    """A checked request, or ApiError naming the first thing wrong."""
    fields = _json_object(body)
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ApiError(
            400, f"unrecognized request field {unknown[0]!r}; this endpoint takes {list(FIELDS)}", unknown[0]
        )
    model_side = _model_side(fields.get("model"), catalog)
    side = _side(model_side, fields.get("input_type"), catalog)
    texts = _texts(fields.get("input"), max_inputs)
    encoding_format = fields.get("encoding_format") or "float"
    if encoding_format not in ENCODING_FORMATS:
        raise ApiError(
            400, f"encoding_format {encoding_format!r}: expected one of {list(ENCODING_FORMATS)}", "encoding_format"
        )
    _check_dimensions(fields.get("dimensions"), catalog.widths[side], side)
    if fields.get("user") is not None and not isinstance(fields["user"], str):
        raise ApiError(400, f"user: expected a string, got {type(fields['user']).__name__}", "user")
    return EmbeddingRequest(texts, side, encoding_format, fields["model"])


def _json_object(body: bytes) -> dict:
    if not body.strip():
        raise ApiError(400, "the request body is empty; send a JSON object with 'model' and 'input'")
    try:
        fields = json.loads(body.decode("utf-8"))  # JSON on the wire is UTF-8 (RFC 8259); no guessing
    except UnicodeDecodeError as err:
        raise ApiError(400, f"the request body is not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ApiError(
            400, f"the request body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    if not isinstance(fields, dict):
        raise ApiError(
            400, f"the request body is a JSON {type(fields).__name__}; expected an object with 'model' and 'input'"
        )
    return fields


def _model_side(model: object, catalog: Catalog) -> str | None:
    if model is None:
        raise ApiError(400, f"'model' is missing; this server offers {catalog.ids()}", "model")
    if not isinstance(model, str) or model not in catalog.ids():
        raise ApiError(
            404, f"model {model!r} does not exist here; this server offers {catalog.ids()}", "model", "model_not_found"
        )
    return model.partition(":")[2] or None


def _side(model_side: str | None, input_type: object, catalog: Catalog) -> str:
    if input_type is not None and input_type not in INPUT_TYPES:
        raise ApiError(400, f"input_type {input_type!r}: expected one of {list(INPUT_TYPES)}", "input_type")
    asked = INPUT_TYPES.get(input_type) if input_type is not None else None
    if asked and model_side and asked != model_side:
        raise ApiError(400, f"input_type {input_type!r} contradicts model '{catalog.name}:{model_side}'", "input_type")
    side = asked or model_side or catalog.default_side
    if side is None:
        raise ApiError(
            400,
            f"say which side the texts are: input_type 'query' or 'document', or model '{catalog.name}:query' / "
            f"'{catalog.name}:document'; this adapter changes queries only, so the sides differ",
            "input_type",
        )
    return side


def _texts(value: object, max_inputs: int) -> list[str]:
    if value is None:
        raise ApiError(400, "'input' is missing: send a string or a list of strings", "input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise ApiError(400, f"input: expected a string or a list of strings, got {type(value).__name__}", "input")
    if not texts:
        raise ApiError(400, "input is an empty list; send at least one string", "input")
    if len(texts) > max_inputs:
        raise ApiError(400, f"input holds {len(texts)} texts; at most {max_inputs} per request (--max_inputs)", "input")
    for index, text in enumerate(texts):
        problem = _text_problem(text)
        if problem:
            where = "input" if isinstance(value, str) else f"input[{index}]"
            raise ApiError(400, f"{where} {problem}", "input")
    return texts


def _text_problem(text: object) -> str | None:
    if isinstance(text, int | list) and not isinstance(text, bool):
        return (
            "is a token id or token array; this server takes text only (it tokenizes with the base model's tokenizer)"
        )
    if not isinstance(text, str):
        return f"is {type(text).__name__} {json.dumps(text)[:40]}, not a string"
    if not text:
        return "is an empty string; there is nothing to embed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"holds a lone surrogate at character {err.start} (not valid Unicode text)"
    return None


def _check_dimensions(dimensions: object, width: int, side: str) -> None:
    if dimensions is None:
        return
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise ApiError(400, f"dimensions: expected an integer, got {json.dumps(dimensions)[:40]}", "dimensions")
    if dimensions != width:
        raise ApiError(
            400,
            f"dimensions {dimensions}: this adapter's {side} vectors have {width} dimensions and are not cut "
            f"(the head was not trained for shorter vectors); omit dimensions or send {width}",
            "dimensions",
        )


def embeddings_body(vectors: np.ndarray, encoding_format: str, model: str, tokens: int) -> bytes:  # vectors (n, d)
    """The OpenAI response as JSON bytes; base64 is the little-endian float32 bytes of each vector, as the
    openai client decodes it. orjson writes each float32 in its shortest form that reads back to the same
    float32: 19x faster than json.dumps of Python floats, and 44% fewer bytes for the client to parse (17
    vectors of 384: 0.3 ms and 81 KB against 5.7 ms and 144 KB; the event loop writes it while the encoder
    runs on the same cores)."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    if encoding_format == "base64":
        embeddings = [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors]
    else:
        embeddings = list(vectors)  # rows, written by orjson as float32
    data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embeddings)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    body = {"object": "list", "data": data, "model": model, "usage": usage}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def models_body(catalog: Catalog, created: int) -> dict:
    """GET /v1/models: the name and its two per-side ids, each with its width and side."""
    sides = {catalog.name: catalog.default_side, **{f"{catalog.name}:{s}": s for s in SIDES}}
    data = [
        {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "isoadapt",
            "side": side,
            "dimensions": catalog.widths[side] if side else None,
        }
        for model_id, side in sides.items()
    ]
    return {"object": "list", "data": data}
