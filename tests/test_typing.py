"""The type hints hold: mypy passes on the package and on a typed example
of downstream use, and reports the wrong calls a user can make.

Skipped where mypy is not installed (pip install -e ".[typing]").  The
mypy runs are marked slow (a cold run analyses the package and NumPy:
about 35 s on two cores); .ci/run runs them with --runslow.
"""
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "tests", "typing_example.py")


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    """Runs mypy with the project's configuration on paths; returns
    (exit status, output).  One cache for the module: the package is
    analysed once."""
    cache = tmp_path_factory.mktemp("mypy_cache")
    env = dict(os.environ, MYPYPATH=ROOT)   # this checkout's lowprec

    def run(*paths):
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file",
             os.path.join(ROOT, "pyproject.toml"), "--cache-dir", str(cache),
             "--no-error-summary", "--show-error-codes", *paths],
            cwd=ROOT, env=env, capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr
    return run


@pytest.mark.slow
def test_package_and_example_are_clean(mypy):
    rc, out = mypy("lowprec", EXAMPLE)
    assert rc == 0, out
    assert out.strip() == "", out


def test_package_ships_py_typed():
    assert os.path.isfile(os.path.join(ROOT, "lowprec", "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        text = fh.read()
    data = text.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"py.typed"' in data and '"*.pyi"' in data


# Each line marked "# error" must be reported, and no other line.
WRONG_CALLS = '''\
import numpy as np
import lowprec as lp

x = np.ones(4)
lp.encode(x, "e4m3", rounding="nearst_even")            # error: typo
lp.encode(x, "e4m3", backend="cuda")                    # error: no backend
lp.encode(x, "e4m3", saturate=1.5)                      # error: not a bool
lp.encdoe(x, "e4m3")                                    # error: no function
lp.unpack(np.zeros(2, np.uint8), "fp4", 3.0)            # error: float count
lp.get_format("mxfp4").max                              # error: BlockFormat
lp.get_format(lp.IntFormat(4)).ebits                    # error: no ebits
lp.scaled_matmul(x, x, accumulate="fp16")               # error: no rule
lp.Accumulator("bf16", seed="0")                        # error: str seed
lp.quantize_blocks(x, "mxfp4", axis=1.0)                # error: float axis
lp.jit.encoder("e4m3", rounding="up")                   # error: no mode
lp.hardware.h100.wgmma("e4m3", "e4m3", accumulator="bf16")  # error: acc
lp.FusedAccumulator(32, 13.0)                           # error: float bits
lp.decode(np.array([1], np.uint8), "e4m3", dtype=np.float32).max()
lp.FloatFormat(4, 3).max + 1.0
'''


@pytest.mark.slow
def test_wrong_calls_are_errors(mypy, tmp_path):
    path = tmp_path / "wrong_calls.py"
    path.write_text(WRONG_CALLS)
    rc, out = mypy(str(path))
    assert rc == 1, out
    reported = {int(m.group(1)) for m in re.finditer(
        r"wrong_calls\.py:(\d+): error", out)}
    expected = {i + 1 for i, line in enumerate(WRONG_CALLS.splitlines())
                if "# error" in line}
    assert reported == expected, out


def test_example_runs():
    """The example's calls are valid at run time too."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, EXAMPLE], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "typing example ran" in proc.stdout
