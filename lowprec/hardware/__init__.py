"""Models of real hardware (API.md section 7): lowprec.hardware.h100."""
from . import h100

__all__ = ["h100"]
