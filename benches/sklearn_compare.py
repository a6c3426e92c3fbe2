"""nncore's scikit-learn estimators against scikit-learn's own MLPs, same settings.

``NNClassifier`` against ``MLPClassifier`` on scikit-learn's bundled classification
sets (digits, breast_cancer, wine, iris), ``NNRegressor`` against ``MLPRegressor`` on
diabetes (the only bundled regression set that needs no download). Both estimators get
the same constructor arguments (scikit-learn's defaults unless given: 100 ReLU units,
Adam at 1e-3, batch "auto", alpha 1e-4, max_iter 200, tol 1e-4, n_iter_no_change 10)
and the same data: per seed, a 75/25 split (stratified for classification), features
standardized with the training rows' statistics (the diabetes target too), in the
``--dtype`` given (scikit-learn's MLPs keep float32 input in float32). Each
(estimator, data set) runs in a fresh process pinned to ``--threads`` CPUs, fitting
once per seed, then timing ``predict`` on the test rows.

The report gives per data set the test accuracy (R^2 for diabetes) as mean +- standard
deviation over the seeds, the median fit time and its ratio, the ratio per epoch (the
two may stop after different numbers of epochs: tol applies to each one's own loss
curve), and the predict time ratio. Accuracy is "within noise" when nncore's mean is no
lower than scikit-learn's by more than twice the standard error of the difference.
"""
import warnings

import numpy as np

from . import harness, report
from .machine import machine_info
from .train import parse_list

HELP = "NNClassifier/NNRegressor against MLPClassifier/MLPRegressor on bundled data"
DESCRIPTION = __doc__
DATASETS = {"digits": "classification", "breast_cancer": "classification",
            "wine": "classification", "iris": "classification",
            "diabetes": "regression"}
ESTIMATORS = {"nncore": "nncore.sklearn", "sklearn": "scikit-learn"}


def add_arguments(p):
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help="comma list (%(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per data set (5; 2 "
                   "with --quick)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="of the data and of nncore's arithmetic (%(default)s)")
    p.add_argument("--max-iter", type=int, default=200,
                   help="both estimators' max_iter (200; 50 with --quick)")
    p.add_argument("--hidden", default="100",
                   help="hidden_layer_sizes, comma list (%(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPUs per worker process (%(default)s)")
    p.add_argument("--min-time", type=float, default=0.2,
                   help="seconds of timed predict calls per seed (%(default)s)")


def _load(name, seed, dtype):
    """(X_train, X_test, y_train, y_test), split, standardized, in ``dtype``."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    regression = DATASETS[name] == "regression"
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=None if regression else y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = (scaler.transform(a).astype(dtype) for a in (X_tr, X_te))
    if regression:
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    return X_tr, X_te, y_tr, y_te


def _estimator(which, task, settings, seed, dtype):
    if which == "nncore":
        from nncore.sklearn import NNClassifier as Classifier
        from nncore.sklearn import NNRegressor as Regressor
        settings = dict(settings, dtype=dtype)
    else:
        from sklearn.neural_network import MLPClassifier as Classifier
        from sklearn.neural_network import MLPRegressor as Regressor
    cls = Classifier if task == "classification" else Regressor
    return cls(**settings, random_state=seed)


def measure(spec):
    """Worker: per seed, the test score, fit seconds, epochs and predict seconds."""
    import time

    task = DATASETS[spec["dataset"]]
    settings = {"hidden_layer_sizes": tuple(spec["hidden"]),
                "max_iter": spec["max_iter"]}
    out = {"score": [], "fit_s": [], "epochs": [], "predict_s": []}
    for seed in range(spec["seeds"]):
        X_tr, X_te, y_tr, y_te = _load(spec["dataset"], seed, spec["dtype"])
        est = _estimator(spec["estimator"], task, settings, seed, spec["dtype"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(X_tr, y_tr)
            out["fit_s"].append(time.perf_counter() - t0)
        out["epochs"].append(int(est.n_iter_))
        out["score"].append(float(est.score(X_te, y_te)))
        predict = est.predict
        predict(X_te)
        times = harness.time_repeats(lambda f=predict, X=X_te: f(X), spec["min_time"], 5)
        out["predict_s"].append(harness.median(times))
    out["rows"] = [int(X_tr.shape[0]), int(X_te.shape[0]), int(X_tr.shape[1])]
    return out


def run(args):
    datasets = parse_list(args.datasets, list(DATASETS), "--datasets")
    hidden = parse_list(args.hidden, None, "--hidden", int)
    seeds = 2 if args.quick else args.seeds
    max_iter = 50 if args.quick and args.max_iter == 200 else args.max_iter
    results = {"machine": machine_info(), "raw": {},
               "settings": {"datasets": datasets, "seeds": seeds, "dtype": args.dtype,
                            "max_iter": max_iter, "hidden": hidden,
                            "threads": args.threads}}
    for name in datasets:
        for which, label in ESTIMATORS.items():
            harness.log(f"{name}: {label} ({seeds} seeds) ...")
            spec = {"dataset": name, "estimator": which, "seeds": seeds,
                    "dtype": args.dtype, "max_iter": max_iter, "hidden": hidden,
                    "min_time": args.min_time}
            res = harness.run_worker("sklearn_compare:measure", spec, args.threads, args)
            if res["status"] != "ok":
                harness.log(f"  {res['status']}: {res['reason']}")
            results["raw"].setdefault(name, {})[which] = res
    return results


def _within_noise(ours, theirs):
    """nncore's mean score is not below scikit-learn's by more than 2 standard errors
    of the difference of the means."""
    a, b = np.asarray(ours), np.asarray(theirs)
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size) if a.size > 1 else 0.0
    return a.mean() >= b.mean() - 2 * se


def markdown(results):
    st = results["settings"]
    goal = report.load_targets().get("sklearn", {}).get("fit_min_ratio", 5.0)
    rows, lines = [], []
    for name in st["datasets"]:
        runs = results["raw"].get(name, {})
        a, b = runs.get("nncore", {}), runs.get("sklearn", {})
        if a.get("status") != "ok" or b.get("status") != "ok":
            why = "; ".join(r.get("reason", "?") for r in (a, b)
                            if r.get("status") != "ok")
            rows.append([name] + ["-"] * 8)
            lines.append(report.verdict(None, f"{name}: not measured ({why})"))
            continue
        med = harness.median
        fit = med(b["fit_s"]) / med(a["fit_s"])
        per_epoch = med(np.divide(b["fit_s"], b["epochs"]).tolist()) / \
            med(np.divide(a["fit_s"], a["epochs"]).tolist())
        pred = med(b["predict_s"]) / med(a["predict_s"])
        metric = "R^2" if DATASETS[name] == "regression" else "accuracy"
        rows.append([f"{name} ({a['rows'][0]}+{a['rows'][1]} x {a['rows'][2]})", metric,
                     f"{np.mean(a['score']):.4f} +- {np.std(a['score']):.4f}",
                     f"{np.mean(b['score']):.4f} +- {np.std(b['score']):.4f}",
                     f"{med(a['fit_s']) * 1e3:.1f} / {med(b['fit_s']) * 1e3:.1f}",
                     f"{fit:.1f}x", f"{per_epoch:.1f}x",
                     f"{med(a['epochs']):.0f} / {med(b['epochs']):.0f}",
                     f"{pred:.1f}x"])
        ok = _within_noise(a["score"], b["score"])
        lines.append(report.verdict(ok, f"{name}: {metric} within noise of "
                                        "scikit-learn's"))
        if st["dtype"] == "float32":
            lines.append(report.verdict(fit >= goal, f"{name}: fit {fit:.1f}x faster; "
                                                     f"target >= {goal:g}x"))
    header = ["data set (train+test x features)", "score", "nncore", "scikit-learn",
              "fit ms (nncore / sklearn)", "fit ratio", "per-epoch ratio",
              "epochs (nncore / sklearn)", "predict ratio"]
    intro = (f"hidden_layer_sizes={tuple(st['hidden'])}, max_iter={st['max_iter']}, "
             f"otherwise scikit-learn's defaults for both; {st['dtype']} data; "
             f"{st['seeds']} seeds; {st['threads']} thread(s) per process. Scores: "
             "mean +- standard deviation over the seeds; times: medians; ratios: "
             "scikit-learn's time over nncore's.")
    runs = [r for pair in results["raw"].values() for r in pair.values()]
    busy = report.others(runs)
    if busy:
        intro += f" While measuring, {busy}."
    out = [intro, "", report.table(header, rows), "", report.targets_block(lines)]
    return "\n".join(out)
