"""Property-based tests (hypothesis): loaders never crash on arbitrary JSON, losses keep their promises."""

import json
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from isoadapt.data.formats import load_eval, load_train
from isoadapt.errors import InputError
from isoadapt.losses.contrastive import margin_contrastive_loss
from isoadapt.losses.isotropy import covariance_isotropy_loss, istar_isotropy_loss
from isoadapt.losses.variance import variance_hinge_loss

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
train_like = st.lists(
    st.dictionaries(
        st.sampled_from(["query", "positive", "negative", "x"]), json_values | st.text(max_size=10), max_size=4
    ),
    max_size=4,
)
eval_like = st.fixed_dictionaries(
    {
        "queries": st.dictionaries(st.text(max_size=4), json_values | st.text(max_size=6), max_size=3),
        "corpus": st.dictionaries(st.text(max_size=4), json_values | st.text(max_size=6), max_size=3),
        "qrels": st.dictionaries(
            st.text(max_size=4), st.dictionaries(st.text(max_size=4), json_values, max_size=3) | json_values, max_size=3
        ),
    }
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def load_or_refuse(tmp_path, loader, value):
    """The loader's result, or None after checking the refusal is one line naming the file."""
    path = tmp_path / "data.json"
    path.write_text(json.dumps(value))
    try:
        return loader(path)
    except InputError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return None


@SETTINGS
@given(value=json_values | train_like)
def test_load_train_accepts_or_raises_input_error(tmp_path, value):
    examples = load_or_refuse(tmp_path, load_train, value)
    assert examples is None or (examples and all(e.query.strip() and e.positive.strip() for e in examples))


@SETTINGS
@given(value=json_values | eval_like)
def test_load_eval_accepts_or_raises_input_error(tmp_path, value):
    split = load_or_refuse(tmp_path, load_eval, value)
    assert split is None or all(d in split.corpus for judged in split.qrels.values() for d in judged)


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)
clouds = st.integers(min_value=3, max_value=12).flatmap(lambda n: arrays("float32", (n, 6), elements=finite))


@settings(max_examples=200, deadline=None)
@given(z=clouds, margin=st.floats(0, 2))
def test_losses_are_finite_for_finite_inputs(z, margin):
    t = torch.as_tensor(z)
    half = len(t) // 2
    relevant = torch.eye(half, dtype=torch.bool)
    for value in (
        margin_contrastive_loss(t[:half], t[half : 2 * half], relevant, margin),
        covariance_isotropy_loss(t),
        istar_isotropy_loss(t.double()),
        variance_hinge_loss(t),
    ):
        assert math.isfinite(value.item())


@settings(max_examples=200, deadline=None)
@given(z=clouds, scale=st.floats(1e-2, 1e2))
def test_isotropy_loss_is_scale_invariant(z, scale):
    t = torch.as_tensor(z, dtype=torch.float64)
    if torch.linalg.matrix_rank(t - t.mean(0)) < 1 or (t - t.mean(0)).abs().max() < 1e-3:
        return  # all rows (nearly) equal: no covariance to be invariant about
    assert covariance_isotropy_loss(t * scale).item() == __import__("pytest").approx(
        covariance_isotropy_loss(t).item(), abs=1e-6
    )


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 8), margin=st.floats(0, 0.99), scale=st.floats(0.1, 10))
def test_contrastive_is_zero_when_every_margin_is_met(n, margin, scale):
    basis = torch.eye(8)[:n] * scale  # positives match their queries (cos 1), others are orthogonal (cos 0)
    assert (
        margin_contrastive_loss(
            basis,
            basis,
            torch.eye(n, dtype=torch.bool),
            margin,
            negatives=-basis,
            has_negative=torch.ones(n, dtype=torch.bool),
        ).item()
        == 0.0
    )
