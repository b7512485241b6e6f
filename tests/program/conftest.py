"""Shared helpers for the engine.program tests."""

from __future__ import annotations

import numpy as np
import pytest

import engine


@pytest.fixture
def seed_inputs():
    """The seed tutorial's a and b."""
    return {
        "a": engine.tensor([2.0, 3.0], requires_grad=True),
        "b": engine.tensor([6.0, 4.0], requires_grad=True),
    }


def values(t) -> list:
    return np.asarray(t.detach().numpy()).tolist()
