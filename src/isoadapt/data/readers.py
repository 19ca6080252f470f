"""Streaming readers for raw source files: every failure names the file, the line and, for bad
encodings, the byte offset. Files are read line by line, never loaded whole."""

from __future__ import annotations

import json
import unicodedata
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
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark would become part of the first id
            offset += len(raw)
            yield number, line.rstrip("\r\n")


def read_tsv(path: Path, columns: int, extra_ok: bool = False) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated rows with exactly `columns` fields (at least, when `extra_ok`); blank lines skipped."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < columns or (len(fields) > columns and not extra_ok):
            raise InputError(f"{path}: line {number}: expected {columns} tab-separated columns, got {len(fields)}")
        yield number, fields


def record_id(path: Path, number: int, record: dict, key: str = "_id") -> str:
    """A JSONL record's id: a string, or an integer written without quotes; null or anything else is refused
    (str(None) would quietly become the id "None")."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(
            f"{path}: line {number}: '{key}' must be a string, got {'null' if value is None else type(value).__name__}"
        )
    return str(value)


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


class Judgments:
    """qrels read line by line: a repeated (query, document) line is counted, and one that disagrees
    with the first is counted as a conflict; the first judgment is kept (the source's own order)."""

    def __init__(self):
        self.qrels: dict[str, dict[str, int]] = {}
        self.repeated = 0
        self.conflicting = 0

    def add(self, qid: str, doc_id: str, grade: int) -> None:
        judged = self.qrels.setdefault(qid, {})
        if doc_id in judged:
            self.repeated += 1
            self.conflicting += judged[doc_id] != grade
            return
        judged[doc_id] = grade


def is_blank(text: str) -> bool:
    """Nothing to embed: only whitespace, NUL and other control characters, or zero-width format characters.
    (A lone surrogate is not blank: it is invalid, and check_text refuses it.)"""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)


def check_text(path: Path | str, where: str, name: str, value) -> str:
    """A text worth embedding: a string, not blank, and writable as UTF-8. A lone surrogate ("\\ud800" in
    JSON) is refused here, at load, not later when something tries to write it."""
    if value is None:
        raise InputError(f"{path}: {where}: missing '{name}'")
    if not isinstance(value, str):
        raise InputError(f"{path}: {where}: '{name}' must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(
            f"{path}: {where}: '{name}' has invalid Unicode (lone surrogate at character {err.start})"
        ) from None
    if is_blank(value):
        raise InputError(f"{path}: {where}: empty '{name}'")
    return value


def require_text(path: Path, number: int, name: str, value) -> str:
    return check_text(path, f"line {number}", name, value)


def check_id(where: str, label: str, item_id: str) -> None:
    """The one id rule, for datasets, source files and vector imports alike: ids are written as TSV
    fields and JSON keys, so a tab or a newline in one would break the files that name it."""
    if any(c in item_id for c in "\t\r\n"):
        raise InputError(f"{where}: {label} {item_id!r} contains a tab or newline")


class IdRegistry:
    """Remembers where each id was first seen, so a duplicate names both lines."""

    def __init__(self, path: Path, kind: str):
        self.path, self.kind, self.first_line = path, kind, {}

    def add(self, item_id: str, number: int) -> None:
        if not item_id.strip():
            raise InputError(f"{self.path}: line {number}: empty {self.kind} id")
        check_text(self.path, f"line {number}", f"{self.kind} id", item_id)
        check_id(f"{self.path}: line {number}", f"{self.kind} id", item_id)
        if item_id in self.first_line:
            raise InputError(
                f"{self.path}: line {number}: duplicate {self.kind} id {item_id!r} (first at line "
                f"{self.first_line[item_id]})"
            )
        self.first_line[item_id] = number
