# The cffi extension module built from csrc/ (lowprec/_build.py).  cffi
# generates it without type information: ffi and lib are dynamic.
from typing import Any

ffi: Any
lib: Any
