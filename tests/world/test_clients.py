"""The clients' session planner: recipients per message and relayed domains (issue 21's
realistic mix), drawn so that workloads without them draw exactly as before."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smtpd_sim.spec.workload import Mix, WorkloadSpec
from smtpd_sim.world.clients import plan_sessions


def _spec(**mix: object) -> WorkloadSpec:
    return WorkloadSpec(duration_s=20.0, mix=Mix(local_share=0.5, **mix))


def test_recipients_max_draws_every_count_in_range() -> None:
    plans = plan_sessions(_spec(recipients=1, recipients_max=3), seed=7)
    counts = {len(m.rcpts) for p in plans for m in p.messages}
    assert counts == {1, 2, 3}


def test_relay_domains_are_drawn_from_the_list_and_leave_the_rest_alone() -> None:
    domains = ["a.test", "b.test", "c.test"]
    plain = plan_sessions(_spec(), seed=3)
    several = plan_sessions(_spec(relay_domains=domains), seed=3)
    seen = set()
    for p, q in zip(plain, several, strict=True):
        for r, s in zip(p.messages[0].rcpts, q.messages[0].rcpts, strict=True):
            user, _, domain = s.partition("@")
            assert user == r.partition("@")[0]  # same users, same local/relay choices
            if r.endswith("@relay.test"):
                assert domain in domains
                seen.add(domain)
            else:
                assert r == s
    assert seen == set(domains)


def test_recipients_max_below_recipients_is_refused() -> None:
    with pytest.raises(ValidationError, match="recipients_max"):
        Mix(recipients=3, recipients_max=2)
