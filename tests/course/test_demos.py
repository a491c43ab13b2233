"""The labs' demonstrations: a leaky generator that copies, sample-size spread, evaluations side by side."""

import pytest

import synllm
from synllm.course import demos
from synllm.errors import InvalidArgument


@pytest.fixture(scope="module")
def stroke():
    table, card = synllm.load_dataset("stroke")
    train, holdout = synllm.split(table, card, random_state=0)
    return card, train, holdout


def test_copy_sampler_returns_copies_of_its_rows_and_resamples_beyond_them(stroke):
    card, train, _ = stroke
    rows = train.head(30)
    sampler = demos.CopySampler(rows, card)
    keys = set(map(tuple, rows[card.synth_names].astype(str).to_numpy()))
    for n in (10, 30, 75):
        sample = sampler.sample(n, random_state=1)
        assert len(sample) == n and list(sample.columns) == card.synth_names
        assert set(map(tuple, sample.astype(str).to_numpy())) <= keys
    assert len(sampler.sample(30).drop_duplicates()) == 30  # without replacement while there are enough
    with pytest.raises(InvalidArgument):
        demos.CopySampler(rows.head(0), card)
    with pytest.raises(InvalidArgument):
        sampler.sample(0)


def test_copies_of_train_are_caught_by_exact_match_and_the_membership_attack(stroke):
    card, train, holdout = stroke
    leaked = train.sample(200, random_state=0)
    copies = demos.CopySampler(leaked, card).sample(200)
    ev = synllm.evaluate(copies, train=train, holdout=holdout, card=card, metrics=["exact_match"], reference=False)
    assert ev.result("exact_match").raw == pytest.approx(1.0)


def test_real_samples_spread_more_at_20_rows_than_at_200(stroke):
    card, train, holdout = stroke
    spread = demos.sample_size_spread(
        train=train,
        holdout=holdout,
        card=card,
        generators={},
        sizes=(20, 200),
        repeats=6,
        metrics=("ks_complement",),
        random_state=0,
    )
    assert list(spread.columns) == ["source", "n", "repeat", "metric", "score"]
    assert len(spread) == 2 * 6
    width = spread.groupby("n")["score"].agg(lambda s: s.max() - s.min())
    assert width[20] > 2 * width[200]
    with pytest.raises(InvalidArgument, match="larger than the holdout"):
        demos.sample_size_spread(train=train, holdout=holdout.head(15), card=card, generators={}, sizes=(20,))


def test_side_by_side_puts_each_evaluation_in_its_own_column(stroke):
    card, train, holdout = stroke
    metrics = ["ks_complement", "tv_complement"]
    evs = {
        name: synllm.evaluate(rows, train=train, holdout=holdout, card=card, metrics=metrics, reference=False)
        for name, rows in {"a": holdout.head(60), "b": train.tail(60)}.items()
    }
    frame = demos.side_by_side(evs, value="raw")
    assert list(frame.columns) == ["a", "b"] and sorted(frame.index) == sorted(metrics)
    assert frame.at["ks_complement", "b"] == evs["b"].result("ks_complement").raw
    per_column = demos.side_by_side(evs, breakdown="ks_complement")
    assert set(per_column.index) == set(evs["a"].result("ks_complement").breakdown)
    with pytest.raises(InvalidArgument, match="were not evaluated"):
        demos.side_by_side(evs, metrics=["dcr"])
