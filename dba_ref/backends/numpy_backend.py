"""The NumPy backend: the reference kernels themselves, gathered under the backend interface."""
from ..backprop import mean_grad
from ..gram import gram
from ..search import exhaustive_search, greedy_path, prefix_path

__all__ = ["gram", "greedy_path", "prefix_path", "exhaustive_search", "mean_grad"]
