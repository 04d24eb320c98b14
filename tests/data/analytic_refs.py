# Verbatim copy of research/bench/analytic_refs.py from the shared research notes (tests import it from here).
# ruff: noqa: B905, E741
"""Closed-form queueing anchors a simulator test can assert against.

Pure standard library; prints a table of reference cases.  Every function
is small enough to copy into a test helper.

    python analytic_refs.py
"""
from math import factorial


# ---------------------------------------------------------------- M/M/1
def mm1(lam, mu):
    """Steady-state M/M/1 (FIFO, infinite buffer). Requires lam < mu."""
    rho = lam / mu
    assert rho < 1, "unstable"
    return {
        "rho": rho,  # utilization = P(server busy); 1-rho = idle fraction
        "L": rho / (1 - rho),  # mean number in system
        "Lq": rho**2 / (1 - rho),  # mean number waiting
        "W": 1 / (mu - lam),  # mean sojourn (response) time
        "Wq": rho / (mu - lam),  # mean wait before service
        "P0": 1 - rho,
    }


# ---------------------------------------------------------------- M/M/c
def erlang_c(c, a):
    """P(wait > 0) in M/M/c with offered load a = lam/mu (a < c)."""
    rho = a / c
    top = a**c / factorial(c) / (1 - rho)
    return top / (sum(a**k / factorial(k) for k in range(c)) + top)


def mmc(lam, mu, c):
    a = lam / mu
    rho = a / c
    assert rho < 1, "unstable"
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam)
    return {
        "rho": rho,  # per-server utilization
        "C": pw,
        "Wq": wq,
        "W": wq + 1 / mu,
        "Lq": lam * wq,
        "L": lam * (wq + 1 / mu),
    }


# ---------------------------------------------------------------- M/G/1
def mg1(lam, es, scv):
    """Pollaczek-Khinchine. es = E[S], scv = Var[S]/E[S]^2 (0 = M/D/1, 1 = M/M/1)."""
    rho = lam * es
    assert rho < 1
    wq = rho * es * (1 + scv) / (2 * (1 - rho))
    return {"rho": rho, "Wq": wq, "W": wq + es, "Lq": lam * wq, "L": lam * (wq + es)}


# ---------------------------------------------------------------- open Jackson network
def jackson(gamma, P, mu, servers=None):
    """Open Jackson network.

    gamma[i]: external Poisson arrival rate into node i
    P[i][j]:  routing probability i -> j (rows may sum to < 1: the rest leaves)
    mu[i]:    per-server exponential service rate; servers[i] (default 1)
    Solves traffic equations lam = gamma + lam P by fixed-point iteration,
    then treats every node as an independent M/M/c (product form).
    """
    n = len(gamma)
    servers = servers or [1] * n
    lam = list(gamma)
    for _ in range(10_000):
        new = [gamma[j] + sum(lam[i] * P[i][j] for i in range(n)) for j in range(n)]
        if max(abs(a - b) for a, b in zip(new, lam)) < 1e-13:
            break
        lam = new
    nodes = [mmc(lam[i], mu[i], servers[i]) for i in range(n)]
    L = sum(x["L"] for x in nodes)
    total_in = sum(gamma)
    return {
        "lam": lam,
        "visits": [l / total_in for l in lam],  # visit ratio V_i
        "rho": [x["rho"] for x in nodes],
        "W_node": [x["W"] for x in nodes],  # per visit
        "L": L,
        "W": L / total_in,  # end-to-end mean response time (Little)
    }


# ---------------------------------------------------------------- exact MVA (closed)
def mva(D, N, Z=0.0, delay=None):
    """Exact single-class MVA (Reiser & Lavenberg 1980).

    D[k]: service demand at centre k (= visits * service time)
    N:    customer population, Z: think time
    delay[k]: True for an infinite-server (pure delay) centre
    Returns per-population throughput X(n) and response time R(n).
    """
    delay = delay or [False] * len(D)
    Q = [0.0] * len(D)
    out = []
    for n in range(1, N + 1):
        R = [D[k] if delay[k] else D[k] * (1 + Q[k]) for k in range(len(D))]
        X = n / (Z + sum(R))
        Q = [X * r for r in R]
        out.append({"n": n, "X": X, "R": sum(R), "U": [X * d for d in D], "Q": Q})
    return out


def asymptotic_bounds(D, N, Z=0.0):
    """Operational-analysis bounds (Denning & Buzen 1978; Lazowska et al. ch. 5)."""
    Dsum, Dmax = sum(D), max(D)
    return {
        "X_upper": min(N / (Dsum + Z), 1 / Dmax),
        "R_lower": max(Dsum, N * Dmax - Z),
        "N_star": (Dsum + Z) / Dmax,  # knee: population where the bottleneck saturates
    }


def _fmt(d):
    return ", ".join(
        f"{k}={[round(x, 4) for x in v] if isinstance(v, list) else round(v, 4)}" for k, v in d.items()
    )


if __name__ == "__main__":
    print("M/M/1 lam=0.8 mu=1.0 :", _fmt(mm1(0.8, 1.0)))
    print("M/M/1 lam=0.5 mu=1.0 :", _fmt(mm1(0.5, 1.0)))
    print("M/M/1 lam=0.9 mu=1.0 :", _fmt(mm1(0.9, 1.0)))
    print("M/M/3 lam=0.2 mu=0.1 (Ciw README):", _fmt(mmc(0.2, 0.1, 3)))
    print("M/M/3 lam=10 mu=4 (Palmer et al. 2017 benchmark):", _fmt(mmc(10, 4, 3)))
    print("M/M/2 lam=1.5 mu=1.0 :", _fmt(mmc(1.5, 1.0, 2)))
    print("M/D/1 lam=0.8 E[S]=1 :", _fmt(mg1(0.8, 1.0, 0.0)))
    print("M/G/1 lam=0.8 E[S]=1 scv=1 (=M/M/1):", _fmt(mg1(0.8, 1.0, 1.0)))
    # tandem smtp -> queue -> mta, no feedback
    P3 = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    print("Jackson tandem gamma=0.5 mu=(1,2,1):", _fmt(jackson([0.5, 0, 0], P3, [1, 2, 1])))
    # same tandem with an extra relay node (e.g. an 'mfa' hop, mu=10) inserted
    P4 = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    print(
        "Jackson tandem + relay mu=(1,10,2,1):",
        _fmt(jackson([0.5, 0, 0, 0], P4, [1, 10, 2, 1])),
    )
    # feedback: node 0 -> node 1; node 1 returns to node 0 w.p. 0.25
    Pfb = [[0, 1], [0.25, 0]]
    print("Jackson feedback gamma=(1,0) mu=(4,3) p_back=0.25:", _fmt(jackson([1, 0], Pfb, [4, 3])))
    print("MVA D=(1.0,0.5,0.25) Z=0, N=1..5:")
    for row in mva([1.0, 0.5, 0.25], 5):
        print("   ", _fmt(row))
    print("MVA D=(0.2,0.1) Z=1.0, N=1..5 (terminal model):")
    for row in mva([0.2, 0.1], 5, Z=1.0):
        print("   ", _fmt(row))
    print("bounds D=(1.0,0.5,0.25) N=5:", _fmt(asymptotic_bounds([1.0, 0.5, 0.25], 5)))
    print("bounds D=(0.2,0.1) Z=1 N=5:", _fmt(asymptotic_bounds([0.2, 0.1], 5, Z=1.0)))
