"""The measured choice of team for each training chunk (nncore/_team.py): it settles
on whichever team trains faster, notices when the machine changes, caps a kernel
call's threads only for that call, and never changes a result."""
import threading

import numpy as np
import pytest

import nncore
from nncore import _team, _training
from nncore._dispatch import kernels
from nncore._team import TeamChooser

from _helpers import assert_same_history


def _drive(chooser, seconds_per_batch, chunks, batches=10):
    """Run ``chunks`` chunks through the chooser on a machine where a batch takes
    ``seconds_per_batch[team]``; the teams it picked, in order."""
    picked = []
    for _ in range(chunks):
        threads = chooser.pick()
        team = chooser.full if threads == 0 else threads
        picked.append(team)
        chooser.record(threads, batches, batches * seconds_per_batch[team])
    return picked


def test_one_thread_has_nothing_to_choose():
    chooser = TeamChooser(1)
    assert _drive(chooser, {1: 0.01}, 20) == [1] * 20


def test_settles_on_the_full_team_when_it_is_faster():
    chooser = TeamChooser(2)
    picked = _drive(chooser, {1: 0.010, 2: 0.006}, 200)
    assert picked[0] == 2 and picked[1] == 1            # the first probe
    assert chooser.current == 2
    # Probes back off: few chunks on the slower team.
    assert picked.count(1) <= 8


def test_falls_back_to_one_thread_when_that_is_faster():
    chooser = TeamChooser(2)
    picked = _drive(chooser, {1: 0.010, 2: 0.016}, 200)
    assert chooser.current == 1
    assert picked.count(2) <= 8
    assert picked[-1] == 1


def test_follows_a_change_of_the_machine():
    chooser = TeamChooser(2)
    _drive(chooser, {1: 0.010, 2: 0.006}, 100)          # idle: two threads
    assert chooser.current == 2
    picked = _drive(chooser, {1: 0.010, 2: 0.020}, 10)  # a core gets busy
    assert chooser.current == 1 and picked[-1] == 1
    _drive(chooser, {1: 0.010, 2: 0.006}, 100)          # free again
    assert chooser.current == 2


def test_short_chunks_are_not_timed():
    chooser = TeamChooser(2)
    chooser.record(0, 1, _team.MIN_SECONDS / 2)
    assert chooser.rate == {}
    assert chooser.pick() == 0


def test_similar_teams_do_not_flip_on_noise():
    chooser = TeamChooser(2)
    rng = np.random.default_rng(0)
    flips, last = 0, chooser.current
    for _ in range(300):
        threads = chooser.pick()
        chooser.record(threads, 10, 0.1 * (1 + 0.01 * rng.standard_normal()))
        if chooser.current != last:
            flips, last = flips + 1, chooser.current
    assert flips <= 2


def _small_network():
    return nncore.Network([nncore.Dense(3, 4, "tanh"), nncore.Dense(4, 1)], seed=0)


def _train_two_batches(net, threads):
    """One direct train_batches call on ``net``, ``threads`` passed on."""
    X = np.zeros((8, 3), net.dtype)
    T = np.zeros((8, 1), net.dtype)
    opt = nncore.SGD(0.1)
    opt._bind(net)
    settings, s1, s2 = opt._kernel_args()
    kernels.train_batches(net._flat, net._grads, net._sizes, net._acts, net._loss_code,
                          net._loss_params, X, T, None, None, None, net._workspace(4), 4,
                          0, 2, settings, s1, s2, 0, threads=threads)


def test_kernel_rejects_negative_threads():
    net = _small_network()
    before = net._flat.copy()
    with pytest.raises(ValueError, match="threads"):
        _train_two_batches(net, -1)
    np.testing.assert_array_equal(net._flat, before)


def test_the_cap_lasts_one_call_and_one_thread():
    # After a capped call, this thread's regions and another thread's get the full
    # team again.
    full = kernels.team_size()
    _train_two_batches(_small_network(), 1)
    assert kernels.team_size() == full
    seen = []
    thread = threading.Thread(target=lambda: seen.append(kernels.team_size()))
    thread.start()
    thread.join()
    assert seen == [full]


def _medium_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2048, 200)).astype(np.float32)
    y = rng.integers(0, 10, 2048)
    net = nncore.Network([nncore.Dense(200, 256, "relu"), nncore.Dense(256, 128, "relu"),
                          nncore.Dense(128, 10)], loss="cross_entropy", seed=seed)
    return net, X, y


@pytest.mark.parametrize("pattern", ["alternate", "one", "full"])
def test_any_sequence_of_teams_gives_the_same_bits(monkeypatch, pattern):
    # Products large enough to run threaded at 2 threads; the chooser replaced by a
    # fixed pattern of teams, chunk by chunk, against a plain fit.
    monkeypatch.setattr(_training, "FIXED_CHUNK", 3)
    ref, X, y = _medium_problem()
    ref.fit(X, y, epochs=2, batch_size=64, optimizer=nncore.Adam(1e-3))

    class Pattern(TeamChooser):
        calls = 0

        def pick(self):
            Pattern.calls += 1
            if pattern == "one":
                return 1
            if pattern == "full":
                return 0
            return 1 if Pattern.calls % 2 else 0

    net, X, y = _medium_problem()
    net._team = Pattern(kernels.team_size())
    net.fit(X, y, epochs=2, batch_size=64, optimizer=nncore.Adam(1e-3))
    assert Pattern.calls > 4
    np.testing.assert_array_equal(net._flat, ref._flat)
    for a, b in zip(net.optimizer.state_arrays(), ref.optimizer.state_arrays()):
        np.testing.assert_array_equal(a, b)
    assert net.optimizer.step == ref.optimizer.step
    assert_same_history(net.history.loss, ref.history.loss)


def test_a_probe_is_a_short_chunk_yet_long_enough_to_time():
    chooser = TeamChooser(2)
    assert chooser.batches(100) == 100                  # not a probe
    chooser.record(0, 100, 0.05)                        # the full team: 2,000 batches/s
    assert chooser.pick() == 1 and chooser.probing
    assert chooser.batches(100) == int(100 * _team.PROBE_SHARE)
    least = int(np.ceil(2 * _team.MIN_SECONDS * 2000))
    assert chooser.batches(2 * least) == least          # a quarter would be too short
    assert chooser.batches(3) == 3                      # never more than a full chunk


def test_a_probe_too_short_to_time_waits_for_the_next_interval():
    chooser = TeamChooser(2)
    _drive(chooser, {1: 0.010, 2: 0.006}, 40)         # settles on the full team
    chooser.since_probe = chooser.interval              # the next chunk probes
    assert chooser.pick() == 1 and chooser.probing
    chooser.record(1, 1, _team.MIN_SECONDS / 2)
    assert chooser.pick() == 0 and not chooser.probing
