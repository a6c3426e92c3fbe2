"""What every results file records about the machine: the CPU, its caches, the
nncore kernel build in use and the versions of the libraries compared."""
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from . import harness

_CPUINFO_KEYS = {"vendor_id": "vendor", "model name": "model_name",
                 "cpu family": "family", "model": "model", "stepping": "stepping"}
_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "GOMP_SPINCOUNT",
        "NNCORE_KERNELS")
_DISTRIBUTIONS = ("numpy", "scipy", "torch", "jax", "jaxlib", "scikit-learn",
                  "threadpoolctl")


def _cpuinfo():
    info = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model_name": platform.processor() or platform.machine()}
    for line in text.split("\n\n")[0].splitlines():   # the first CPU
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in _CPUINFO_KEYS:
            info[_CPUINFO_KEYS[key]] = value
        elif key == "flags":
            info["flags"] = [f for f in _FLAGS if f in value.split()]
    return info


def _caches():
    """{"L1d": {"size": "48K", "shared_cpus": "0"}, "L2": ..., "L3": ...} of CPU 0."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size, shared = (
                (index / f).read_text().strip()
                for f in ("level", "type", "size", "shared_cpu_list"))
        except OSError:
            continue
        if kind != "Instruction":
            name = f"L{level}" + ("d" if kind == "Data" else "")
            caches[name] = {"size": size, "shared_cpus": shared}
    return caches or _lscpu_caches()


def _lscpu_caches():
    """The same from ``lscpu -C`` where sysfs does not show the caches."""
    try:
        out = subprocess.run(["lscpu", "-C=NAME,ONE-SIZE"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    caches = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 2 and parts[0] != "L1i":
            caches[parts[0]] = {"size": parts[1], "shared_cpus": "?"}
    return caches


def nncore_info(spec):
    """Worker: nncore's version, kernel build and path, and the thread pools loaded
    with it. Run in a worker so that the harness process never imports nncore (which
    sets GOMP_SPINCOUNT in its environment, and the workers would inherit it)."""
    from threadpoolctl import threadpool_info

    import nncore
    from nncore import _dispatch

    keys = ("internal_api", "version", "architecture", "num_threads", "filepath")
    pools = [{k: d.get(k) for k in keys} for d in threadpool_info()]
    return {"version": nncore.__version__, "kernels": _dispatch.variant,
            "path": str(Path(nncore.__file__).parent), "pools": pools}


def _versions():
    out = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info():
    """The CPU, its caches, nncore's kernel build, library versions and the
    environment variables that change what the libraries do."""
    nn = harness.call("machine:nncore_info", {})
    if nn["status"] != "ok":
        nn = {"error": f"nncore does not import: {nn['reason']}"}
    return {"cpu": _cpuinfo(), "caches": _caches(),
            "usable_cpus": len(harness.usable_cpus()),
            "platform": platform.platform(), "versions": _versions(),
            "env": {k: os.environ[k] for k in _ENV if k in os.environ},
            "pools": nn.pop("pools", []), "nncore": nn}


def _size(text):
    """sysfs's "48K" / "2048K" -> "48 KiB" / "2 MiB"."""
    units = {"K": 1, "M": 1024, "G": 1024 ** 2}
    if not text or text[-1] not in units or not text[:-1].isdigit():
        return text
    kib = int(text[:-1]) * units[text[-1]]
    return f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"


def _cache_text(name, cache):
    shared = cache["shared_cpus"]
    alone = shared.isdigit()          # one CPU's own cache, e.g. "0"
    text = f"{name} {_size(cache['size'])}"
    return text if alone else f"{text} shared by CPUs {shared}"


def cpu_line(info):
    """One line: model, vendor, family/model, instruction sets, cache sizes, CPUs."""
    cpu = info.get("cpu", {})
    caches = ", ".join(_cache_text(n, c) for n, c in info.get("caches", {}).items())
    return (f"{cpu.get('model_name', '?')} ({cpu.get('vendor', '?')}, family "
            f"{cpu.get('family', '?')} model {cpu.get('model', '?')} stepping "
            f"{cpu.get('stepping', '?')}; {' '.join(cpu.get('flags', []))}); "
            f"{caches or 'caches unknown'}; {info.get('usable_cpus')} usable CPUs")


def software_line(info):
    """nncore's version and kernel build, then the other libraries' versions."""
    nn = info.get("nncore", {})
    nn_text = (f"nncore {nn['version']} ({nn['kernels']} kernels)" if "version" in nn
               else nn.get("error", "nncore ?"))
    others = ", ".join(f"{name} {v}" for name, v in info.get("versions", {}).items() if v)
    env = ", ".join(f"{k}={v}" for k, v in info.get("env", {}).items())
    return f"{nn_text}; {others}" + (f"; environment: {env}" if env else "")
