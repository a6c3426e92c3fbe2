"""nncore.schedules: each schedule's documented sequence of rates, through fit too."""
import math

import pytest

import nncore
from nncore.callbacks import LearningRateScheduler
from nncore.datasets import make_spiral
from nncore.schedules import cosine_annealing, exponential_decay, step_decay


def rates(schedule, lr0, epochs):
    return [schedule(e, lr0) for e in range(epochs)]


def test_step_decay():
    assert rates(step_decay(3, 0.5), 0.8, 8) == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]
    assert rates(step_decay(1, 0.1), 1.0, 3) == [1.0, 0.1, 1.0 * 0.1 ** 2]


def test_exponential_decay():
    assert rates(exponential_decay(0.5), 0.8, 4) == [0.8, 0.4, 0.2, 0.1]
    assert rates(exponential_decay(0.9), 0.3, 5) == [0.3 * 0.9 ** e for e in range(5)]


def test_cosine_annealing():
    got = rates(cosine_annealing(T_max=4, eta_min=0.1), 1.1, 7)
    # 0.1 + 1.0 * (1 + cos(pi t / 4)) / 2 for t = 0..4, then held at eta_min
    assert got == pytest.approx([1.1, 0.1 + (1 + math.sqrt(0.5)) / 2, 0.6,
                                 0.1 + (1 - math.sqrt(0.5)) / 2, 0.1, 0.1, 0.1],
                                abs=1e-15)
    assert got[0] == 1.1 and got[4:] == [0.1, 0.1, 0.1]


def test_cosine_annealing_with_warmup():
    got = rates(cosine_annealing(T_max=2, warmup_epochs=3), 0.8, 7)
    # 0.8 (e + 1) / 4 for e < 3; then the cosine from 0.8 over 2 epochs, then 0
    assert got == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.4, 0.0, 0.0], rel=1e-15, abs=1e-16)
    assert got[3] == 0.8


def test_the_base_rate_is_the_one_given_at_epoch_zero():
    schedule = step_decay(1, 0.5)
    assert [schedule(e, lr) for e, lr in enumerate([1.0, 123.0, 9.0])] == [1.0, 0.5, 0.25]
    assert schedule(0, 4.0) == 4.0 and schedule(1, 0.0) == 2.0      # a new call: new base
    fresh = exponential_decay(0.5)
    assert fresh(2, 8.0) == 2.0                  # no epoch 0 seen: the rate given


@pytest.mark.parametrize("schedule, expected", [
    (step_decay(2, 0.1), [0.5, 0.5, 0.05, 0.05, 0.005]),
    (exponential_decay(0.5), [0.5, 0.25, 0.125, 0.0625, 0.03125]),
    (cosine_annealing(4), [0.5, 0.25 * (1 + math.sqrt(0.5)), 0.25,
                           0.25 * (1 - math.sqrt(0.5)), 0.0]),
])
def test_schedules_through_fit(schedule, expected):
    X, y = make_spiral(n_per_class=20, seed=0)
    net = nncore.Network([nncore.Dense(2, 8, "tanh"), nncore.Dense(8, 3)],
                         loss="cross_entropy", seed=0)
    first = net.fit(X, y, epochs=5, optimizer=nncore.SGD(0.5),
                    callbacks=[LearningRateScheduler(schedule)])
    assert first.history["lr"] == pytest.approx(expected, rel=1e-15, abs=1e-16)
    # a second call runs the schedule from the rate it starts with
    second = net.fit(X, y, epochs=2, callbacks=[LearningRateScheduler(schedule)])
    assert second.history["lr"] == rates(schedule, first.history["lr"][-1], 2)


@pytest.mark.parametrize("make, error", [
    (lambda: step_decay(0, 0.5), ValueError),
    (lambda: step_decay(2.0, 0.5), TypeError),
    (lambda: step_decay(2, -1), ValueError),
    (lambda: exponential_decay(math.inf), ValueError),
    (lambda: cosine_annealing(0), ValueError),
    (lambda: cosine_annealing(5, -1.0), ValueError),
    (lambda: cosine_annealing(5, warmup_epochs=-1), ValueError)])
def test_schedule_arguments(make, error):
    with pytest.raises(error):
        make()


def test_schedules_have_a_readable_repr():
    assert repr(cosine_annealing(10, 0.01, 2)) == \
        "cosine_annealing(T_max=10, eta_min=0.01, warmup_epochs=2)"
