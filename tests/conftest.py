import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=200,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", deadline=None, max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true",
                     help="run tests marked slow (also LOWPREC_SLOW=1)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("LOWPREC_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: use --runslow or LOWPREC_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
