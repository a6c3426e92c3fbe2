"""Training while another process holds one core in a busy loop.

The medium and large networks, trained by nncore at 1 and 2 threads on an idle machine
and again while a process spinning in an empty loop runs pinned to the second usable
CPU. The worker is pinned to the first 1 or 2 CPUs as usual, so at 2 threads one of
its threads shares its CPU with the loop; at 1 thread it has its CPU to itself (unless
the two CPUs are hyperthreads of one core: the report's cache line shows which CPUs
share a cache).
The loop is started before each busy measurement and killed right after it, and ends
by itself after ``--timeout`` seconds in any case. Every measurement is the training
benchmark's (``python -m benches train --help``); rounds interleave the four cases.

Reported: the ratios 2-thread busy / 1-thread idle (the rate a user who gives nncore
two threads on a shared machine gets, against what one thread would have given) and
2-thread idle / 1-thread idle (what the second core is worth when free).
"""
import os
import subprocess
import sys

from . import harness, report
from .configs import CONFIGS
from .machine import machine_info
from .peers import PEERS
from .train import add_timing_arguments, parse_list, summarize, timing

HELP = "medium and large at 1 and 2 threads, idle and with one core held busy"
DESCRIPTION = __doc__
CASES = [(1, "idle"), (2, "idle"), (1, "busy"), (2, "busy")]
_LOOP = ("import time\nend = time.monotonic() + {seconds}\n"
         "while time.monotonic() < end: pass\n")


def add_arguments(p):
    p.add_argument("--configs", default="medium,large", help="comma list (%(default)s)")
    p.add_argument("--peers", default="nncore", help="comma list (%(default)s)")
    add_timing_arguments(p)


class BusyCore:
    """A process spinning on one CPU for the duration of a ``with`` block."""

    def __init__(self, cpu, seconds):
        self.cpu, self.seconds = cpu, seconds

    def __enter__(self):
        preexec = None if self.cpu is None else (
            lambda: os.sched_setaffinity(0, [self.cpu]))
        code = _LOOP.format(seconds=self.seconds)
        self.proc = subprocess.Popen([sys.executable, "-c", code], preexec_fn=preexec)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def run(args):
    configs = parse_list(args.configs, list(CONFIGS), "--configs")
    peers = parse_list(args.peers, list(PEERS), "--peers")
    cpus = harness.usable_cpus()
    if len(cpus) < 2:
        raise SystemExit("busy: needs at least 2 usable CPUs")
    t = timing(args)
    hog_cpu = None if args.no_pin else cpus[1]   # one of the 2-thread worker's CPUs
    results = {"machine": machine_info(),
               "rows": {c: CONFIGS[c].rows(t["scale"]) for c in configs},
               "settings": {"configs": configs, "peers": peers, "busy_cpu": hog_cpu, **t},
               "raw": {}}
    try:
        for r in range(t["rounds"]):
            for cname in configs:
                for peer in peers:
                    for n, state in CASES:
                        key = f"float32/{n}/{cname}/{peer}/{state}"
                        harness.log(f"[round {r + 1}/{t['rounds']}] {key} ...")
                        spec = {"peer": peer, "config": cname, "dtype": "float32",
                                "rows": results["rows"][cname], "threads": n, **t}
                        res = _measure(spec, n, state, hog_cpu, args)
                        results["raw"].setdefault(key, []).append(res)
                        if res["status"] != "ok":
                            harness.log(f"  {res['status']}: {res['reason']}")
    except KeyboardInterrupt:
        results["interrupted"] = True
    return results


def _measure(spec, n, state, hog_cpu, args):
    if state == "idle":
        return harness.run_worker("train:measure_training", spec, n, args)
    with BusyCore(hog_cpu, args.timeout + 10):
        return harness.run_worker("train:measure_training", spec, n, args,
                                  expect_busy=True)


GOALS = {"busy_2t_over_idle_1t": (2, "busy"), "idle_2t_over_idle_1t": (2, "idle")}
RATIOS = [(2, "busy"), (2, "idle"), (1, "busy")]   # each over 1 thread idle


def markdown(results):
    st = results["settings"]
    aggs = summarize({"raw": results["raw"], "rows": results["rows"]})
    goals = report.load_targets()["busy"]
    rows, lines = [], []
    for cname in st["configs"]:
        for peer in st["peers"]:
            sps = {}
            for n, state in CASES:
                agg = aggs.get(f"float32/{n}/{cname}/{peer}/{state}")
                sps[n, state] = agg["sps"] if agg else None
            base = sps[1, "idle"]
            ratio = {c: sps[c] / base if sps[c] and base else None for c in RATIOS}
            rows.append([cname, PEERS[peer].label] + [report.rate(sps[c]) for c in CASES]
                        + [report.num(ratio[c], ".2f") for c in RATIOS])
            if peer != "nncore":
                continue
            for goal, case in GOALS.items():
                r, minimum = ratio[case], goals[goal]
                lines.append(report.verdict(
                    None if r is None else r >= minimum,
                    f"{cname}: {case[0]}t {case[1]} / 1t idle = {report.num(r, '.2f')}; "
                    f"target >= {minimum:g}"))
    header = (["config", "peer"] + [f"{n}t {state}" for n, state in CASES]
              + [f"{n}t {state} / 1t idle" for n, state in RATIOS])
    where = (f"pinned to CPU {st['busy_cpu']}" if st["busy_cpu"] is not None
             else "unpinned")
    return "\n".join([
        f"Samples per second, float32; the busy loop {where}; median over {st['rounds']} "
        f"process(es) per case, each >= {st['min_time']:g} s of timed epochs. Rows: "
        + ", ".join(f"{c} {n}" for c, n in results["rows"].items()) + ".", "",
        report.table(header, rows), "", report.targets_block(lines)])
