"""How many threads each training chunk runs on: the full team or one thread,
whichever is measured to train faster at the moment.

The threads of a parallel region meet at its end, so a region is only as fast as its
slowest thread. When another process keeps one of the cores busy, the thread that
shares that core is descheduled for whole time slices, and every product waits for it:
two threads then train slower than one. nncore cannot know in advance what else the
machine runs (a grid search, a notebook, a browser), so the training loop measures.
Every kernel call of ``fit`` already takes a timed chunk of batches (about 50 ms); the
chooser runs most chunks on the team that was faster, and now and then one chunk on
the other, to notice when the machine changes. No result depends on the thread count
(every product sums in the same order on any team), so switching is free of any
numerical effect.

The probes cost little: a probe runs a short chunk (``PROBE_SHARE`` of a full one),
and the interval between them doubles (up to ``MAX_INTERVAL`` chunks, about 3 s) each
time a probe confirms the choice, and starts again from ``MIN_INTERVAL`` when the
choice changes or the chosen team's rate moves by more than ``DRIFT``.
"""
from __future__ import annotations

import math

# Chunks on the chosen team between two probes of the other: the first interval and
# the longest.
MIN_INTERVAL = 4
MAX_INTERVAL = 64
# The other team must be this much faster to be chosen (a ratio of rates), so that
# noise between two nearly equal teams does not flip the choice back and forth.
MARGIN = 1.05
# A change of the chosen team's rate by more than this factor (either way) from its
# running estimate means the machine changed: probe the other team soon.
DRIFT = 1.3
# A probe's chunk, as a share of a full chunk: on a busy core the other team may run
# several times slower, and a short probe still tells the two apart.
PROBE_SHARE = 0.25
# Chunks shorter than this (seconds) are not timed: the timer's resolution and the
# call's fixed cost dominate them (the first chunks of a fit are short by design).
MIN_SECONDS = 0.005


class TeamChooser:
    """The thread count of each training chunk, chosen by measurement.

    Parameters
    ----------
    full : int
        The team the kernels would use (``_kernels.team_size()``), >= 1. With 1 there
        is nothing to choose: :meth:`pick` always gives 0 (the kernels' default).

    Use: ``threads = chooser.pick()``, pass ``threads`` to the kernel call (0 means
    the default team), then ``chooser.record(threads, batches, seconds)``. After
    ``pick``, ``probing`` says whether that chunk probes the other team: then run
    ``batches(count)`` batches, and do not size the next chunk from its time.
    """

    def __init__(self, full: int) -> None:
        self.full = int(full)
        self.current = self.full       # the team of the chunks between probes
        self.rate: dict[int, float] = {}    # team -> batches per second
        self.interval = MIN_INTERVAL
        self.since_probe = 0
        self.probing = False

    @property
    def other(self) -> int:
        """The team not chosen now (one thread, or the full team)."""
        return 1 if self.current == self.full else self.full

    def pick(self) -> int:
        """Threads for the next chunk: 0 (the kernels' default: the full team), or 1."""
        if self.full <= 1:
            self.probing = False
            return 0
        self.probing = self.current in self.rate and (
            self.other not in self.rate or self.since_probe >= self.interval)
        team = self.other if self.probing else self.current
        return 0 if team == self.full else team

    def batches(self, count: int) -> int:
        """Batches for the chunk just picked, ``count`` being a full chunk's: all of
        them, or for a probe ``PROBE_SHARE`` of them, but enough to be timed."""
        if not self.probing:
            return count
        rate = self.rate.get(self.current)
        least = math.ceil(2 * MIN_SECONDS * rate) if rate else 1
        return max(1, min(count, max(int(count * PROBE_SHARE), least)))

    def record(self, threads: int, batches: int, seconds: float) -> None:
        """The chunk just run: ``batches`` batches in ``seconds`` on ``threads``
        (as :meth:`pick` gave it)."""
        if self.full <= 1 or batches < 1 or seconds < MIN_SECONDS:
            if self.probing:
                self.since_probe = 0      # too short to tell: the next probe decides
            return
        team = self.full if threads == 0 else threads
        rate = batches / seconds
        if team == self.current:
            self.since_probe += 1
            known = self.rate.get(team)
            if known is not None and not known / DRIFT < rate < known * DRIFT:
                # The machine changed: probe the other team at the next chunk.
                self.since_probe = self.interval
            self.rate[team] = rate if known is None else 0.5 * (known + rate)
            return
        # A probe of the other team.
        self.rate[team] = rate
        self.since_probe = 0
        known = self.rate.get(self.current)
        if known is None or rate > known * MARGIN:
            self.current = team
            self.interval = MIN_INTERVAL
        else:
            self.interval = min(2 * self.interval, MAX_INTERVAL)
