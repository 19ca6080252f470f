"""The out-of-domain documents-as-queries probe: the Lee news corpus (Lee, Pincombe & Welsh 2005), each of its
50 Australian news articles (45-126 words) asked as a query against the other 49, graded by how similar
human raters judged the two articles.

Why a second documents probe: `probe_documents` asks with arXiv abstracts against Semanlink bookmarks, the
domain the head was trained on, and every trained head gains there. A user whose queries are whole documents
of another domain, with graded document-to-document relevance, is not probed by it; a query-only head (it
moves queries, not documents) or a head fitted to one domain's shape can lose exactly there. This probe is
that case, small (50 queries) but judged by people, validation only like every probe.

The files ship in gensim's wheel (its test data: `lee.cor`, one article per line, Latin-1; and
`similarities0-1.txt`, the 50 x 50 matrix of each pair's mean human rating on the 1-5 scale divided by 5,
so 0.2 to 1.0, each pair once in the upper triangle, as gensim's own test reads it; the lower triangle is
zeros); we read them from the wheel as a zip and never import gensim. A pair's grade is its mean rating
r = 5 s minus 2, rounded half up, where positive: grade 1 from r = 2.5 (s = 0.5), 2 from 3.5, 3 from 4.5;
a pair rated below 2.5 is not relevant. An article is never its own answer (query and document share an
id, and search skips a query's own id)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from isoadapt.data.formats import EvalSet
from isoadapt.errors import InputError

NEWS_WHEEL = "gensim-4.3.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
DEFAULT_NEWS_SOURCE = Path("data/raw") / NEWS_WHEEL
ARTICLES = "gensim/test/test_data/lee.cor"
RATINGS = "gensim/test/test_data/similarities0-1.txt"


def news_source(given: str | None) -> Path | None:
    """The wheel to read: the one given (a missing file is then an error), else data/raw/'s copy when
    `make setup` put it there, else none (the probe is not written, and prepare's summary says so)."""
    if given:
        return Path(given)
    return DEFAULT_NEWS_SOURCE if DEFAULT_NEWS_SOURCE.is_file() else None


def news_grade(similarity: float) -> int:
    """The graded relevance of a pair whose mean rating / 5 is `similarity`: the module docstring's rule
    (the epsilon keeps 0.7 and 0.9, which are not exact in binary, on the grade they stand for)."""
    return max(0, int(np.floor(5 * similarity - 1.5 + 1e-9)))


def read_news_files(source: Path) -> tuple[list[str], np.ndarray]:
    """The articles and their rating matrix from gensim's wheel (or a folder holding the two files)."""
    try:
        if source.is_dir():
            articles, ratings = (source / Path(name).name for name in (ARTICLES, RATINGS))
            raw_articles, raw_ratings = articles.read_bytes(), ratings.read_bytes()
        else:
            with zipfile.ZipFile(source) as wheel:
                raw_articles, raw_ratings = wheel.read(ARTICLES), wheel.read(RATINGS)
    except FileNotFoundError as error:
        raise InputError(f"{source}: no such file ({error.filename}); `make setup` downloads {NEWS_WHEEL}") from None
    except (zipfile.BadZipFile, KeyError) as error:
        raise InputError(f"{source}: not gensim 4.3.3's wheel with {ARTICLES} and {RATINGS} ({error})") from None
    # one article per line, split on the bytes as gensim does: Latin-1 decoding first would also split on
    # bytes such as 0x85, which Unicode counts as line breaks
    lines = [" ".join(line.decode("latin-1").split()) for line in raw_articles.split(b"\n")]
    lines = lines[:-1] if lines and not lines[-1] else lines  # a final newline ends the last line
    try:
        matrix = np.loadtxt(io.BytesIO(raw_ratings), ndmin=2)
    except ValueError as error:
        raise InputError(f"{source}: {RATINGS} is not a matrix of numbers ({error})") from None
    return lines, matrix


def news_probe(source: Path) -> EvalSet:
    """The probe (module docstring): every article a query and a document; an article with no pair graded
    above 0 is left out as a query (it still stands in the corpus)."""
    articles, matrix = read_news_files(source)
    if matrix.shape != (len(articles), len(articles)):
        raise InputError(
            f"{source}: {RATINGS} is {matrix.shape[0]} x {matrix.shape[1]} but {ARTICLES} holds "
            f"{len(articles)} articles: the ratings must be one row and one column per article"
        )
    for row, text in enumerate(articles):
        if not text:
            raise InputError(f"{source}: {ARTICLES} line {row + 1} is empty")
    check_ratings(source, matrix)
    matrix = np.triu(matrix) + np.triu(matrix, 1).T  # each pair is rated once, above the diagonal
    ids = [f"lee{row:02d}" for row in range(len(articles))]
    corpus = dict(zip(ids, articles))
    qrels = {}
    for row, qid in enumerate(ids):
        graded = {ids[col]: news_grade(float(matrix[row, col])) for col in range(len(ids)) if col != row}
        graded = {doc: grade for doc, grade in graded.items() if grade > 0}
        if graded:
            qrels[qid] = graded
    if not qrels:
        raise InputError(f"{source}: {RATINGS} rates no pair 0.5 or more (a mean rating of 2.5): no relevant pair")
    return EvalSet({qid: corpus[qid] for qid in qrels}, corpus, qrels, dropped_queries=len(ids) - len(qrels))


def check_ratings(source: Path, matrix: np.ndarray) -> None:
    """Ratings are numbers from 0 to 1, and the lower triangle is zeros or a mirror of the upper one (else
    which half to read is a guess)."""
    bad = np.argwhere(~np.isfinite(matrix) | (matrix < 0) | (matrix > 1))
    if len(bad):
        row, col = bad[0]
        raise InputError(f"{source}: {RATINGS} row {row + 1} column {col + 1} is {matrix[row, col]}: not in 0-1")
    lower, mirrored = np.tril(matrix, -1), np.tril(matrix.T, -1)
    if lower.any() and not np.allclose(lower, mirrored):
        row, col = np.argwhere(~np.isclose(lower, mirrored))[0]
        raise InputError(
            f"{source}: {RATINGS} row {row + 1} column {col + 1} is {matrix[row, col]} but its mirror is "
            f"{matrix[col, row]}: the lower triangle must be zeros or equal the upper"
        )
