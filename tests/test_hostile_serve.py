"""Bad requests and overload against `isoadapt serve` in its own process: each is answered with a 4xx (or
503 with Retry-After) in OpenAI's error shape, naming what is wrong; after each one a good request still
succeeds and the process is still alive. Also: refusals at start, before a port is bound."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from serving import WINDOW, fake_runs, get, post, process_server

NAME = "q"  # the query-only head, served under this name
MAX_INPUTS, MAX_QUEUE, MAX_BYTES = 4, 6, 4000
GOOD = {"model": f"{NAME}:query", "input": ["topic1 what is topic1"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fake_runs(tmp_path_factory.mktemp("hostile-serve"))


@pytest.fixture(scope="module")
def server(runs):
    argv = ["--run_dir", str(runs["query"]), "--name", NAME, "--max_inputs", str(MAX_INPUTS)]
    argv += ["--max_queue", str(MAX_QUEUE), "--max_request_bytes", str(MAX_BYTES), "--max_wait_ms", "400"]
    with process_server(*argv) as (url, process):
        yield url, process
        process.terminate()
        assert process.wait(60) == 0
        assert "Traceback" not in process.log()


def still_serving(url: str, process) -> None:
    status, _, body = post(url + "/v1/embeddings", GOOD)
    assert status == 200, body
    assert len(json.loads(body)["data"]) == 1
    assert process.poll() is None


def error_of(status: int, body: bytes, expected_status: int, words: str) -> None:
    assert status == expected_status, body
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"], error["message"]


BAD_BODIES = [
    (b'{"model": "q:query", "input": [', 400, "not valid JSON"),
    (b"", 400, "body is empty"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b'["topic1"]', 400, "is a JSON list; expected an object"),
    ({"model": f"{NAME}:query"}, 400, "'input' is missing"),
    ({"model": f"{NAME}:query", "input": []}, 400, "input is an empty list"),
    ({"model": f"{NAME}:query", "input": ["ok", ""]}, 400, "input[1] is an empty string"),
    ({"model": f"{NAME}:query", "input": ""}, 400, "input is an empty string"),
    ({"model": f"{NAME}:query", "input": ["ok", 3.5]}, 400, "input[1] is float 3.5, not a string"),
    ({"model": f"{NAME}:query", "input": ["ok", {"t": 1}]}, 400, "input[1] is dict"),
    ({"model": f"{NAME}:query", "input": {"t": 1}}, 400, "expected a string or a list of strings, got dict"),
    ({"model": f"{NAME}:query", "input": [101, 2023, 102]}, 400, "input[0] is a token id or token array"),
    ({"model": f"{NAME}:query", "input": [[101, 2023, 102]]}, 400, "this server takes text only"),
    (b'{"model": "q:query", "input": ["\\ud800"]}', 400, "input[0] holds a lone surrogate"),
    ({"model": f"{NAME}:query", "input": ["a"] * (MAX_INPUTS + 1)}, 400, "at most 4 per request (--max_inputs)"),
    ({"model": "gpt-4", "input": ["x"]}, 404, "model 'gpt-4' does not exist here"),
    ({"model": f"{NAME}:passage", "input": ["x"]}, 404, "does not exist here; this server offers ['q', 'q:query'"),
    ({"input": ["x"]}, 400, "'model' is missing"),
    ({"model": NAME, "input": ["x"]}, 400, "say which side the texts are"),
    ({"model": NAME, "input": ["x"], "input_type": "passage"}, 400, "input_type 'passage': expected one of"),
    ({"model": f"{NAME}:query", "input": ["x"], "input_type": "document"}, 400, "contradicts model 'q:query'"),
    ({**GOOD, "encoding_format": "int8"}, 400, "encoding_format 'int8': expected one of ['float', 'base64']"),
    ({**GOOD, "dimensions": 8}, 400, "dimensions 8: this adapter's query vectors have 16 dimensions"),
    ({**GOOD, "dimensions": "16"}, 400, "dimensions: expected an integer"),
    ({**GOOD, "user": 7}, 400, "user: expected a string"),
    ({**GOOD, "truncate": "END"}, 400, "unrecognized request field 'truncate'"),
    ({**GOOD, "input": ["word "] * 1 + ["x" * (MAX_BYTES + 1)]}, 413, "(--max_request_bytes)"),
]


@pytest.mark.parametrize("body, status, words", BAD_BODIES, ids=[w for _, _, w in BAD_BODIES])
def test_a_bad_request_is_a_json_error_and_the_server_keeps_serving(server, body, status, words):
    url, process = server
    error_of(*post(url + "/v1/embeddings", body)[::2], status, words)
    still_serving(url, process)


def test_unknown_paths_and_methods_answer_in_the_same_shape(server):
    url, process = server
    error_of(*get(url + "/v2/embeddings")[::2], 404, "GET /v2/embeddings: Not Found")
    error_of(*get(url + "/v1/embeddings")[::2], 405, "Method Not Allowed")
    still_serving(url, process)


def test_an_input_far_longer_than_the_window_is_cut_to_it_and_counted(server):
    url, process = server
    long = "topic1 " + "word " * 500
    status, _, body = post(url + "/v1/embeddings", {**GOOD, "input": [long]})
    assert status == 200
    assert json.loads(body)["usage"]["prompt_tokens"] == WINDOW  # what the model read, as sentence-transformers cuts
    assert metric(url, "isoadapt_truncated_texts_total") >= 1
    still_serving(url, process)


def metric(url: str, name: str) -> float:
    """One unlabelled sample of /metrics, read with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = get(url + "/metrics")[2].decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def raw_http(url: str, payload: bytes, then_close: bool = True) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(payload)
        if not then_close:
            sock.recv(65536)


def test_a_client_that_disconnects_mid_request_is_dropped_quietly(server):
    url, process = server
    body = json.dumps({**GOOD, "input": ["topic1 left early"]}).encode()
    head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    raw_http(url, head.encode() + body[:10])  # gone during the upload
    raw_http(url, head.encode() + body)  # gone while its texts wait for the encoder (--max_wait_ms 400)
    time.sleep(0.6)
    assert metric(url, "isoadapt_client_disconnects_total") >= 1
    still_serving(url, process)


def test_a_full_queue_answers_503_with_retry_after_and_recovers(server):
    """--max_queue 6 texts and a 400 ms batching wait: two requests of 4 texts at once cannot both queue."""
    url, process = server
    answers = []

    def send():
        answers.append(post(url + "/v1/embeddings", {**GOOD, "input": [f"topic{i} q" for i in range(4)]}))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _, _ in answers)
    assert 200 in statuses and 503 in statuses, statuses
    status, headers, body = next(a for a in answers if a[0] == 503)
    assert {k.lower(): v for k, v in headers.items()}["retry-after"] == "1"
    error_of(status, body, 503, "the server is busy")
    still_serving(url, process)


def test_the_api_key_is_compared_and_refused_in_the_api_shape(runs):
    with process_server("--run_dir", str(runs["both"]), env={"ISOADAPT_API_KEY": "k3y"}) as (url, process):
        for header in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic k3y"}):
            error_of(*post(url + "/v1/embeddings", {"model": "both", "input": ["x"]}, header)[::2], 401, "API key")
        status, _, _ = post(url + "/v1/embeddings", {"model": "both", "input": ["x"]}, {"Authorization": "Bearer k3y"})
        assert status == 200 and process.poll() is None


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--port", "70000"], "--port 70000: expected 0 to 65535"),
        (["--max_inputs", "0"], "--max_inputs 0: must be at least 1"),
        (["--encode_workers", "0"], "--encode_workers 0: must be at least 1"),
        (["--replicas", "2"], "--replicas 2: only with --engine ray"),
        (["--max_queue", "10"], "--max_queue 10: must be at least --max_inputs 2048"),
        (["--ray_address", "127.0.0.1:1"], "--ray_address: only with --engine ray"),
    ],
)
def test_bad_flags_are_one_line_before_any_port(runs, capsys, flags, words):
    from hostile import one_line

    line = one_line(capsys, ["serve", "--run_dir", runs["both"], *flags])
    assert words in line


def test_a_port_in_use_is_one_line(runs):
    import subprocess
    import sys

    from conftest import REPO

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [sys.executable, str(REPO / "tests" / "fake_serve.py"), "serve", "--run_dir", str(runs["both"])]
        done = subprocess.run([*command, "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cross_model_run_on_precomputed_query_vectors_is_one_line_before_any_model(tmp_path, capsys):
    from cross_model import fake_cross_run
    from hostile import refused

    run = fake_cross_run(tmp_path / "cross", query_model="vectors:new")
    refused(
        capsys,
        ["serve", "--run_dir", run, "--cache_dir", tmp_path / "cache"],
        f"serve {run}: its query model is vectors:new, precomputed vectors: there is no model to embed queries "
        "with; serve a run trained on a model",
        tmp_path,
    )
