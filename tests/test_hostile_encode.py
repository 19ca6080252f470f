"""Hostile input to `isoadapt encode`: one line, exit 2, nothing written, and nothing waited for: a Ray
address is checked before any model loads."""

from __future__ import annotations

import socket

import pytest

from conftest import tiny_dataset
from hostile import ERROR, encode_argv, one_line, refused, write


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--ray_address", "127.0.0.1:6379"], "--ray_address: only with --engine ray"),
        (["--batch_size", "0"], "--batch_size 0: must be between 1 and 65536"),
    ],
)
def test_encode_refuses_bad_settings(tmp_path, capsys, fake_model, extra, message):
    tiny_dataset(tmp_path / "data")
    refused(capsys, encode_argv(tmp_path / "data", tmp_path / "cache", *extra), message, tmp_path, skip=())


def test_encode_refuses_what_is_not_a_dataset(tmp_path, capsys, fake_model):
    write(tmp_path / "notes.txt", "hello")
    refused(
        capsys,
        encode_argv(tmp_path / "notes.txt", tmp_path / "cache"),
        f"--data {tmp_path / 'notes.txt'}: expected a processed dataset folder, a .json, .jsonl or .parquet file",
        tmp_path,
        skip=(),
    )
    (tmp_path / "empty").mkdir()
    refused(
        capsys,
        encode_argv(tmp_path / "empty", tmp_path / "cache"),
        f"--data {tmp_path / 'empty'}: no train.json, dev.json or test.json; not a processed dataset",
        tmp_path,
        skip=(),
    )


def test_a_parquet_file_that_is_not_parquet(tmp_path, capsys, fake_model):
    fake = write(tmp_path / "passages.parquet", "id,text\n1,hello\n")
    got = one_line(capsys, encode_argv(fake, tmp_path / "cache"))
    assert got.startswith(ERROR + f"--data {fake}: not a readable parquet file (") and not (tmp_path / "cache").exists()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["not an address", "127.0.0.1", "127.0.0.1:99999", "host:port"])
def test_a_ray_address_that_is_not_one(tmp_path, capsys, fake_model, address):
    tiny_dataset(tmp_path / "data")
    argv = encode_argv(tmp_path / "data", tmp_path / "cache", "--engine", "ray", "--ray_address", address)
    message = f"--ray_address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:PORT or auto"
    refused(capsys, argv, message, tmp_path, skip=())


def test_a_ray_address_where_nothing_listens_is_one_line_at_once(tmp_path, capsys, fake_model):
    tiny_dataset(tmp_path / "data")
    address = f"127.0.0.1:{free_port()}"
    argv = encode_argv(tmp_path / "data", tmp_path / "cache", "--engine", "ray", "--ray_address", address)
    message = (
        f"--ray_address {address}: nothing answers there within 5 s (Connection refused); start the cluster with "
        "`ray start --head`, or leave --ray_address out to start a local one"
    )
    refused(capsys, argv, message, tmp_path, skip=())


def test_a_host_name_the_resolver_cannot_encode_is_one_line(tmp_path, capsys, fake_model):
    tiny_dataset(tmp_path / "data")
    argv = encode_argv(tmp_path / "data", tmp_path / "cache", "--engine", "ray", "--ray_address", "x..y:6379")
    got = one_line(capsys, argv)
    assert got.startswith(ERROR + "--ray_address x..y:6379: nothing answers there within 5 s ("), got
