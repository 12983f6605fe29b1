"""The NumPy backend: the reference kernels and the reference DBA step themselves."""
from ..update import NUMPY_KERNELS as KERNELS
from ..update import dba_gradients

__all__ = ["KERNELS", "dba_gradients"]
