"""Data-parallel training over MPI: real ``mpirun -n 2`` jobs (tests/mpi_job.py)
compared with single-process training, and the failure modes that must never hang.

The jobs need Open MPI's ``mpirun`` and mpi4py (the ``mpi`` extra); where either
cannot be had the job tests are skipped, with the reason.
"""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nncore
from nncore import distributed

from _helpers import child_env

JOB = str(Path(__file__).with_name("mpi_job.py"))
# Generous: a job takes about 2 s; a hang would take forever.
TIME_LIMIT = 120


def _why_no_mpi():
    if shutil.which("mpirun") is None:
        return "mpirun not found (Open MPI: apt-get install openmpi-bin libopenmpi-dev)"
    if importlib.util.find_spec("mpi4py") is None:
        return 'mpi4py not installed (pip install "nncore[mpi]")'
    return None


def run_job(scenario, tmp_path, ranks=2):
    """Run ``mpi_job.py scenario`` on ``ranks`` processes; (returncode, what each
    rank reported by rank, stderr)."""
    why = _why_no_mpi()
    if why:
        pytest.skip(why)
    env = child_env()
    # CI runs as root, which Open MPI refuses unless told.
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", sys.executable, JOB, scenario,
           str(tmp_path)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env,
                          timeout=TIME_LIMIT, cwd=str(Path(JOB).parent))
    reports = {}
    for rank in range(ranks):
        path = tmp_path / f"rank{rank}.json"
        if path.exists():
            reports[rank] = json.loads(path.read_text())
    return proc.returncode, reports, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [f"equivalence-{opt}-{order}"
                                      for opt in ("sgd", "adam")
                                      for order in ("ordered", "shuffle")])
def test_two_ranks_equal_one_process_with_twice_the_batch(scenario, tmp_path):
    code, out, err = run_job(scenario, tmp_path)
    assert code == 0, err
    assert sorted(out) == [0, 1], err
    for rank in (0, 1):
        r = out[rank]
        assert r["max_rel"] < 1e-10, r
        np.testing.assert_allclose(r["loss"], r["ref_loss"], rtol=1e-10)
        np.testing.assert_allclose(r["val_loss"], r["ref_val_loss"], rtol=1e-10)
        assert r["step"] == r["ref_step"] == 4 * 13      # ceil(203 / 16) steps an epoch
        assert r["same_replicas"], "the replicas differ after training"
        assert r["rng_same"], "the shuffling generator is not where one process's is"
        assert r["allreduce_epochs"] == 4


@pytest.mark.slow
def test_callbacks_see_the_same_logs_on_every_rank_and_stop_them_together(tmp_path):
    code, out, err = run_job("early_stopping", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        r = out[rank]
        assert r["epochs"] == r["ref_epochs"] < 60, r
        assert r["max_rel"] < 1e-10 and r["same_replicas"], r
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert len(lines) == 1 + out[0]["epochs"]


@pytest.mark.slow
def test_balanced_class_weights_and_lbfgs_are_refused_on_every_rank(tmp_path):
    code, out, err = run_job("balanced", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        assert out[rank]["error"] == "ValueError"
        assert "whole data set" in out[rank]["message"]
        assert "LBFGS" in out[rank]["message"] and out[rank]["count"] == 2


@pytest.mark.slow
def test_shards_of_different_widths_are_a_value_error_on_every_rank(tmp_path):
    code, out, err = run_job("bad_widths", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        assert out[rank]["error"] == "ValueError"
        assert "differ in width" in out[rank]["message"]
        assert "{0: 4, 1: 5}" in out[rank]["message"]


@pytest.mark.slow
def test_bad_data_in_one_shard_is_an_error_on_every_rank_naming_it(tmp_path):
    code, out, err = run_job("bad_shard", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        assert out[rank]["error"] == "ValueError"
        assert "rank 1: ValueError: X must be finite" in out[rank]["message"]
        assert out[rank]["unchanged"]


@pytest.mark.slow
def test_a_rank_that_fails_ends_the_job_with_its_rank_named(tmp_path):
    # (the time limit of run_job is the proof that the other rank does not hang)
    code, out, err = run_job("raise", tmp_path)
    assert code != 0
    assert "nncore.distributed: rank 1 of 2 failed" in err
    assert "an error planted in rank 1's fourth step" in err
    assert not out     # neither rank finished its 1000 epochs


@pytest.mark.slow
def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    code, out, err = run_job("sigint", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        r = out[rank]
        assert r["error"] == "KeyboardInterrupt"
        assert r["step"] == 4        # the step in which rank 1 saw the signal
        assert r["same_replicas"] and r["interrupted"] and r["epochs"] == 0


@pytest.mark.slow
def test_divergence_stops_every_rank_where_one_process_stops(tmp_path):
    code, out, err = run_job("diverge", tmp_path)
    assert code == 0, err
    for rank in (0, 1):
        r = out[rank]
        assert r["where"] == r["ref_where"] is not None
        assert r["same_replicas"] and r["max_rel"] == 0 and r["step"] == r["ref_step"]


@pytest.mark.parametrize("comm", [None, "COMM_WORLD", 0, object()])
def test_a_comm_that_is_not_an_mpi4py_communicator_is_a_type_error(comm):
    net = nncore.Network([nncore.Dense(2, 1)], seed=0)
    before = net.params[0].copy()
    with pytest.raises(TypeError, match="mpi4py intracommunicator"):
        distributed.fit_distributed(net, np.zeros((4, 2)), np.zeros((4, 1)), comm)
    if comm is not None:
        with pytest.raises(TypeError, match="mpi4py intracommunicator"):
            net.fit(np.zeros((4, 2)), np.zeros((4, 1)), comm=comm)
    assert np.array_equal(before, net.params[0]) and net.optimizer is None


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, size, B", [(203, 2, 8), (10, 3, 4), (5, 4, 2), (64, 2, 32)])
def test_shard_rows_splits_every_row_once_in_global_batch_order(n, size, B, shuffle):
    shards = [distributed.shard_rows(n, r, size, B, shuffle) for r in range(size)]
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n))
    if shuffle:
        # the concatenation in rank order is the data set itself
        assert np.array_equal(np.concatenate(shards), np.arange(n))
    else:
        # global batch b = the ranks' local batches b in rank order = rows b*G...
        G, steps = size * B, -(-n // B)
        rebuilt = np.concatenate([s[b * B:(b + 1) * B] for b in range(steps)
                                  for s in shards])
        assert np.array_equal(rebuilt, np.arange(n)), G


def test_shard_rows_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match="rank"):
        distributed.shard_rows(10, 2, 2)
