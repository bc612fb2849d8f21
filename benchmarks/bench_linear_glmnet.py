"""gradwise.linear paths against the glmnet Fortran (python-glmnet), glum and scikit-learn.

100-lambda paths on three problems, timed in one run, printed as ours / peer:

* dense gaussian 1000 x 10000, elastic net alpha = 0.5;
* sparse CSR 10000 x 50000, density 0.001, alpha = 0.5 (glum needs X dense
  here, 3.7 GiB at this size: it is skipped above ``--glum-max-dense`` GiB);
* logistic 2000 x 2000, alpha = 0.5 (and a multinomial row: 2000 x 500, 3
  classes, against glmnet only: glum has no multinomial family).

Every solver runs the same lam grid (gradwise's, which is glmnet's) on glmnet's
objective, unstandardised (y scaled to unit sd, so glmnet's internal scaling
of y is the identity). The accuracy each reached is printed beside its time:
the largest objective excess over a tight reference solution (gradwise at
tol 1e-10) along the path, relative to the objective. The peers run at their
defaults (glmnet's ``thresh`` 1e-7). For each peer, gradwise is timed at the
loosest duality-gap tolerance of a fixed ladder whose excess is no larger
than that peer's (equal accuracy; the tolerance used is printed), so a ratio
is never bought with a less accurate answer. Ours and the peer then run
alternately ``--repeats`` times: "min ratio" is ours' fastest over the peer's
fastest, "paired" the median of the per-round ratios.

    python benchmarks/bench_linear_glmnet.py [--quick] [--repeats N] [--only sparse ...]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from gradwise.linear import enet_path, logistic_path


def _time(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _paired(ours, peer, repeats):
    """Ours and the peer alternated ``repeats`` times: (min ours, min peer, median of the
    per-round ratios, the peer's last output); pairing cancels most of a shared machine's
    load swings, which the ratio of minima does not."""
    to, tp, out = [], [], None
    for _ in range(repeats):
        t = time.perf_counter()
        ours()
        to.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = peer()
        tp.append(time.perf_counter() - t)
    return min(to), min(tp), float(np.median(np.array(to) / np.array(tp))), out


def gaussian_objective(X, y, coefs, b0s, lams, alpha):
    R = y[:, None] - X @ coefs - b0s[None, :]
    loss = 0.5 * np.mean(np.asarray(R) ** 2, axis=0)
    pen = alpha * np.abs(coefs).sum(0) + (1 - alpha) / 2 * (coefs**2).sum(0)
    return loss + lams * pen


def logistic_objective(X, y, coefs, b0s, lams, alpha):
    eta = np.asarray(X @ coefs) + b0s[None, :]
    loss = np.mean(np.logaddexp(0, eta) - y[:, None] * eta, axis=0)
    pen = alpha * np.abs(coefs).sum(0) + (1 - alpha) / 2 * (coefs**2).sum(0)
    return loss + lams * pen


def excess(f, ref):
    return float(np.max((f - ref) / np.abs(ref)))


def gaussian_problem(n, p, density, seed=0):
    rng = np.random.default_rng(seed)
    if density < 1:
        X = sp.random(n, p, density=density, format="csr", random_state=seed,
                      data_rvs=rng.standard_normal)
    else:
        X = rng.standard_normal((n, p))
    b = np.zeros(p)
    b[rng.choice(p, 20, replace=False)] = rng.standard_normal(20) * 2
    y = np.asarray(X @ b).ravel() + rng.standard_normal(n)
    return X, y / y.std()


def logistic_problem(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    b = np.zeros(p)
    b[rng.choice(p, 20, replace=False)] = rng.standard_normal(20)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ b))).astype(float)
    return X, y


def run_gaussian(name, X, y, alpha, repeats, glum_max_gib, rows):
    import glmnet
    import glum

    lams, ref, _ = enet_path(X, y, alpha=alpha, n_lams=100, standardize=False, tol=1e-10)
    dense = X.toarray() if sp.issparse(X) else X
    ybar = y.mean()
    xbar = np.asarray(X.mean(axis=0)).ravel()
    f_ref = gaussian_objective(X, y, ref, ybar - xbar @ ref, lams, alpha)

    def ours(tol):
        _, c, _ = enet_path(X, y, alpha=alpha, lams=lams, standardize=False, tol=tol)
        return c, ybar - xbar @ c

    def gl():
        m = glmnet.ElasticNet(alpha=alpha, lambda_path=lams, standardize=False, n_splits=0)
        m.fit(X, y)
        return m.coef_path_, m.intercept_path_

    def sklearn():
        _, c, _ = sk.enet_path(X - xbar if not sp.issparse(X) else X, y - ybar,
                               l1_ratio=alpha, alphas=lams)
        return c, ybar - xbar @ c

    def gm():
        m = glum.GeneralizedLinearRegressor(family="normal", alpha_search=True, alphas=lams,
                                            l1_ratio=alpha, fit_intercept=True)
        m.fit(dense, y)
        return m.coef_path_.T, np.asarray(m.intercept_path_)

    peers = {"glmnet": gl, "scikit-learn": sklearn}
    if dense.nbytes / 2**30 <= glum_max_gib:
        peers["glum"] = gm
    ladder = _ladder(lambda tol: excess(gaussian_objective(X, y, *ours(tol), lams, alpha),
                                        f_ref))
    for peer, fn in peers.items():
        c, b0 = fn()  # warm-up, and the peer's accuracy
        e = excess(gaussian_objective(X, y, c, b0, lams, alpha), f_ref)
        tol, e_ours = _match(ladder, e)
        t_ours, t, paired, _ = _paired(lambda: ours(tol), fn, repeats)  # noqa: B023
        rows.append((name, peer, tol, t_ours, t, paired, e_ours, e))
    if "glum" not in peers:
        rows.append((name, "glum (X too big dense)", *[np.nan] * 6))


TOLS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7, 1e-8)


def _ladder(excess_at) -> list[tuple[float, float]]:
    """(tol, excess) of gradwise along the tolerance ladder, loosest first."""
    return [(tol, excess_at(tol)) for tol in TOLS]


def _match(ladder, peer_excess) -> tuple[float, float]:
    """The loosest tolerance whose excess is <= the peer's (else the tightest)."""
    for tol, e in ladder:
        if e <= peer_excess:
            return tol, e
    return ladder[-1]


def run_logistic(name, X, y, alpha, repeats, rows, sklearn_logistic=True):
    import glmnet
    import glum

    lams, ref, ref_b0, _ = logistic_path(X, y, alpha=alpha, n_lams=100, standardize=False,
                                         tol=1e-10, max_iter=500)
    f_ref = logistic_objective(X, y, ref[0], ref_b0[0], lams, alpha)

    def ours(tol):
        _, c, b0, _ = logistic_path(X, y, alpha=alpha, lams=lams, standardize=False, tol=tol)
        return c[0], b0[0]

    def gl():
        m = glmnet.LogitNet(alpha=alpha, lambda_path=lams, standardize=False, n_splits=0)
        m.fit(X, y)
        return m.coef_path_[0], m.intercept_path_[0]

    def gm():
        m = glum.GeneralizedLinearRegressor(family="binomial", alpha_search=True, alphas=lams,
                                            l1_ratio=alpha, fit_intercept=True)
        m.fit(X, y)
        return m.coef_path_.T, np.asarray(m.intercept_path_)

    def sklearn():  # scikit-learn has no logistic path: warm-started refits
        m = sk.LogisticRegression(l1_ratio=alpha, solver="saga", warm_start=True, max_iter=1000)
        cs, bs = [], []
        for lam in lams:
            m.set_params(C=1.0 / (X.shape[0] * lam))
            m.fit(X, y)
            cs.append(m.coef_[0].copy())
            bs.append(m.intercept_[0])
        return np.stack(cs, 1), np.array(bs)

    ladder = _ladder(lambda tol: excess(logistic_objective(X, y, *ours(tol), lams, alpha),
                                        f_ref))
    peers = {"glmnet": gl, "glum": gm}
    if sklearn_logistic:
        peers["scikit-learn"] = sklearn
    for peer, fn in peers.items():
        t, (c, b0) = _time(fn, 1)  # the peer's accuracy (refits are slow: timed once more)
        e = excess(logistic_objective(X, y, c, b0, lams, alpha), f_ref)
        tol, e_ours = _match(ladder, e)
        reps = 1 if peer == "scikit-learn" else repeats  # its refits take minutes
        t_ours, t2, paired, _ = _paired(lambda: ours(tol), fn, reps)  # noqa: B023
        rows.append((name, peer, tol, t_ours, min(t, t2), paired, e_ours, e))
    n = X.shape[0]
    Xm, ym = multinomial_problem(n, n // 4)
    run_multinomial(f"multinomial {n}x{n // 4}, K=3", Xm, ym, alpha, repeats, rows)


def multinomial_problem(n, p, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((classes, p))
    for k in range(classes):
        W[k, rng.choice(p, 10, replace=False)] = rng.standard_normal(10)
    eta = X @ W.T
    P = np.exp(eta - eta.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, 1)).sum(1)
    return X, y


def multinomial_objective(X, y, coefs, b0s, lams, alpha):
    """glmnet's multinomial objective along the path: coefs (K, p, L), b0s (K, L)."""
    eta = np.einsum("ij,kjl->ikl", X, coefs) + b0s[None]  # (n, K, L)
    m = eta.max(1, keepdims=True)
    lse = (m + np.log(np.exp(eta - m).sum(1, keepdims=True)))[:, 0]
    loss = np.mean(lse - eta[np.arange(len(y)), y], axis=0)
    pen = alpha * np.abs(coefs).sum((0, 1)) + (1 - alpha) / 2 * (coefs**2).sum((0, 1))
    return loss + lams * pen


def run_multinomial(name, X, y, alpha, repeats, rows):
    import glmnet

    lams, ref, ref_b0, _ = logistic_path(X, y, alpha=alpha, n_lams=100, standardize=False,
                                         tol=1e-10, max_iter=500)
    f_ref = multinomial_objective(X, y, ref, ref_b0, lams, alpha)

    def ours(tol):
        _, c, b0, _ = logistic_path(X, y, alpha=alpha, lams=lams, standardize=False, tol=tol)
        return c, b0

    def gl():
        m = glmnet.LogitNet(alpha=alpha, lambda_path=lams, standardize=False, n_splits=0)
        m.fit(X, y)
        return m.coef_path_, m.intercept_path_

    ladder = _ladder(lambda tol: excess(multinomial_objective(X, y, *ours(tol), lams, alpha),
                                        f_ref))
    t, (c, b0) = _time(gl, 1)
    e = excess(multinomial_objective(X, y, c, b0, lams, alpha), f_ref)
    tol, e_ours = _match(ladder, e)
    t_ours, t2, paired, _ = _paired(lambda: ours(tol), gl, repeats)
    rows.append((name, "glmnet", tol, t_ours, min(t, t2), paired, e_ours, e))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="problems 1/5 the size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--glum-max-dense", type=float, default=0.1,
                        help="skip glum where its dense X would exceed this many GiB")
    parser.add_argument("--no-sklearn-logistic", action="store_true")
    parser.add_argument("--only", nargs="+", choices=("dense", "sparse", "logistic"),
                        default=("dense", "sparse", "logistic"), help="run only these problems")
    args = parser.parse_args()
    s = 5 if args.quick else 1
    rows: list = []
    warnings.simplefilter("ignore", ConvergenceWarning)
    with threadpool_limits(1):
        if "dense" in args.only:
            X, y = gaussian_problem(1000 // s, 10_000 // s, 1.0)
            run_gaussian(f"dense gaussian {1000 // s}x{10_000 // s}", X, y, 0.5, args.repeats,
                         args.glum_max_dense, rows)
        if "sparse" in args.only:
            X, y = gaussian_problem(10_000 // s, 50_000 // s, 0.001)
            run_gaussian(f"sparse CSR {10_000 // s}x{50_000 // s}", X, y, 0.5, args.repeats,
                         args.glum_max_dense, rows)
        if "logistic" in args.only:
            X, y = logistic_problem(2000 // s, 2000 // s)
            run_logistic(f"logistic {2000 // s}x{2000 // s}", X, y, 0.5, args.repeats, rows,
                         not args.no_sklearn_logistic)
    print(f"{'problem':<28}{'peer':<24}{'our tol':>9}{'ours s':>9}{'peer s':>9}"
          f"{'min ratio':>11}{'paired':>8}{'ours excess':>13}{'peer excess':>13}")
    for name, peer, tol, t_o, t_p, paired, e_o, e_p in rows:
        print(f"{name:<28}{peer:<24}{tol:9.0e}{t_o:9.3f}{t_p:9.3f}{t_o / t_p:11.2f}"
              f"{paired:8.2f}{e_o:13.1e}{e_p:13.1e}")


if __name__ == "__main__":
    main()
