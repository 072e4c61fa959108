"""How long the fuzz tests (tests/*/test_fuzz_*.py) run: a few examples each by default, so the
suite stays quick and every run tries the same inputs; more, or other inputs, on demand:

    KEFU_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests -k fuzz    # examples per test (operation)
    KEFU_FUZZ_SEED=7 ...                                       # other inputs than the default run
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, seed, settings

T = TypeVar("T", bound=Callable[..., Any])


def examples(default: int) -> int:
    """`default`, or $KEFU_FUZZ_EXAMPLES when set."""
    value = os.environ.get("KEFU_FUZZ_EXAMPLES", "").strip()
    return int(value) if value else default


def fuzz(default: int) -> Callable[[T], T]:
    """Hypothesis settings for a fuzz test: `examples(default)` examples, no deadline (a shared
    2-core machine), reproducible (derandomized) unless $KEFU_FUZZ_SEED picks a seed, and no
    example database written to the working tree."""
    chosen = os.environ.get("KEFU_FUZZ_SEED", "").strip()
    applied = settings(
        max_examples=examples(default),
        deadline=None,
        derandomize=not chosen,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )

    def decorate(test: T) -> T:
        decorated = applied(test)
        return seed(int(chosen))(decorated) if chosen else decorated

    return decorate
