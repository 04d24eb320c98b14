"""Shared fixtures: a fresh kernel and tiny processes for kernel tests."""

from __future__ import annotations

import pytest

from model.kernel.process import Kernel


@pytest.fixture
def kernel() -> Kernel:
    return Kernel(cores=2, policy="fifo")
