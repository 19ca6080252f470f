"""Streaming readers for raw source files: every failure names the file, the line and, for bad
encodings, the byte offset. Files are read line by line, never loaded whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from isoadapt.errors import InputError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, decoded line without its newline); invalid UTF-8 fails with its byte offset."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{path}: invalid UTF-8 at byte offset {offset + err.start} (line {number})") from None
            offset += len(raw)
            yield number, line.rstrip("\r\n")


def read_tsv(path: Path, columns: int, extra_ok: bool = False, skip_header: bool = False) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated rows with exactly `columns` fields (at least, when `extra_ok`); blank lines skipped."""
    for number, line in read_lines(path):
        if skip_header and number == 1:
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < columns or (len(fields) > columns and not extra_ok):
            raise InputError(f"{path}: line {number}: expected {columns} tab-separated columns, got {len(fields)}")
        yield number, fields


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {number}: malformed JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def require_text(path: Path, number: int, name: str, value) -> str:
    if not isinstance(value, str):
        raise InputError(f"{path}: line {number}: '{name}' must be a string")
    if not value.strip():
        raise InputError(f"{path}: line {number}: empty {name}")
    return value


class IdRegistry:
    """Remembers where each id was first seen, so a duplicate names both lines."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind, self.first_line = path, kind, {}

    def add(self, item_id: str, number: int) -> None:
        if not item_id.strip():
            raise InputError(f"{self.path}: line {number}: empty {self.kind} id")
        if any(c in item_id for c in "\t\r\n"):
            raise InputError(f"{self.path}: line {number}: {self.kind} id {item_id!r} contains a tab or newline")
        if item_id in self.first_line:
            raise InputError(f"{self.path}: line {number}: duplicate {self.kind} id {item_id!r} (first at line {self.first_line[item_id]})")
        self.first_line[item_id] = number
