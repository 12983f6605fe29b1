"""DBA in PyTorch, written the framework way: an independent implementation to check the reference.

Per-sample gradients come from ``torch.func``, as PyTorch's documentation computes them::

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)     # {name: (B, *shape)}

This materialises ``(B, out, in)`` numbers per layer, which the reference never
does (its Gram identity works from ``(A, Δ)``); here it is the point: the Gram
matrix is ``K = G Gᵀ`` of the flattened gradients ``G`` ``(B, P_l)``, so the
two agree only if both the gradients and the identity are right. The metrics
(spec §4) and the searches (spec §5) then run on tensors, written afresh (the
greedy search recomputes ``r = K w`` from the mask at every step instead of
updating it), and :class:`DBA` wraps any ``torch.optim`` optimizer: each
layer's ``.grad`` becomes the mean over its selected samples before
``base.step()`` (spec §6).

Shared with the reference: only constants of the definition (``Q_EPS``, the
metric and strategy names, ``EXHAUSTIVE_MAX_B``) and the ``min_size`` rule.

Devices: every tensor created here is made on the device of the inputs (K,
or the model's parameters and the batch), so the same code runs on CUDA
tensors: move the model and the batch with ``.to("cuda")``.

Example
-------
>>> import torch
>>> from dba_ref.frameworks.torch_dba import DBA, TorchMLP
>>> model = TorchMLP([4, 8, 3], "relu")
>>> opt = DBA(model, torch.optim.SGD(model.parameters(), lr=0.1))
>>> X, y = torch.randn(16, 4, dtype=torch.float64), torch.arange(16) % 3
>>> [sel.indices.shape[0] <= 16 for sel in opt.step(X, y)]
[True, True]

On the cases of ``dba-ref conformance export DIR``::

    python -m dba_ref.frameworks.torch_dba DIR RESULTS.npz
    dba-ref conformance check RESULTS.npz
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .._validation import check_min_size
from ..metrics import METRIC_NAMES, Q_EPS
from ..search import EXHAUSTIVE_MAX_B, STRATEGIES, min_size_count

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda z: z}


class TorchMLP(nn.Module):
    """``sizes[0] -> ... -> sizes[-1]``: ``nn.Linear`` layers, ``activation`` between them, logits out."""

    def __init__(self, sizes, activation: str = "relu", dtype=torch.float64):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.activation = activation
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out, dtype=dtype) for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phi = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = phi(layer(x))
        return self.layers[-1](x)

    @classmethod
    def from_params(cls, params, activation: str = "relu") -> "TorchMLP":
        """A module holding ``params = [(W_l, b_l)]`` (arrays or tensors; e.g. ``dba_ref.MLP.params``), same dtype."""
        params = [(torch.as_tensor(np.asarray(W)), torch.as_tensor(np.asarray(b))) for W, b in params]
        sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
        module = cls(sizes, activation, params[0][0].dtype)
        with torch.no_grad():
            for layer, (W, b) in zip(module.layers, params):
                layer.weight.copy_(W)
                layer.bias.copy_(b)
        return module

    def numpy_params(self) -> list:
        """``[(W_l, b_l)]`` as NumPy arrays (copies, from whichever device)."""
        return [(layer.weight.detach().cpu().numpy().copy(), layer.bias.detach().cpu().numpy().copy())
                for layer in self.layers]


# --------------------------------------------------------------------------
# Per-sample losses, gradients and Gram matrices
# --------------------------------------------------------------------------
def per_sample_losses(model: TorchMLP, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``ℓ_i``, shape ``(B,)``."""
    with torch.no_grad():
        return F.cross_entropy(model(X), y, reduction="none")


def per_sample_grads(model: TorchMLP, X: torch.Tensor, y: torch.Tensor) -> list:
    """``[(gW, gb)]`` per layer, ``gW`` ``(B, out, in)`` and ``gb`` ``(B, out)``, by ``vmap(grad(...))``."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(p, x, target):
        logits = functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(logits, target.unsqueeze(0))

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, X, y)
    return [(grads[f"layers.{l}.weight"], grads[f"layers.{l}.bias"]) for l in range(len(model.layers))]


def gram(gW: torch.Tensor, gb: torch.Tensor) -> torch.Tensor:
    """``K = G Gᵀ`` with ``G = [vec(gW_i), gb_i]`` the flattened per-sample gradients, shape ``(B, B)``."""
    G = torch.cat([gW.flatten(1), gb], dim=1)
    return G @ G.T


# --------------------------------------------------------------------------
# Metrics and searches (spec §4, §5)
# --------------------------------------------------------------------------
def metric_value(name: str, T, Q, k) -> torch.Tensor:
    """``variance = T/k − Q/k²``; ``normalized_variance = kT/Q − 1``; ``mean_variance = T/Q − 1/k``.

    The last two are +inf when ``Q <= Q_EPS·k·T`` (the selected gradients cancel out). Computed on the
    device of whichever argument is a tensor.
    """
    device = next((v.device for v in (T, Q, k) if torch.is_tensor(v)), None)
    T, Q, k = (torch.as_tensor(v, dtype=torch.float64, device=device) for v in (T, Q, k))
    if name == "variance":
        return T / k - Q / (k * k)
    ratio = k * T / Q - 1 if name == "normalized_variance" else T / Q - 1 / k
    return torch.where(Q > Q_EPS * k * T, ratio, torch.inf)


@dataclass(frozen=True)
class TorchSelection:
    """The chosen subset and the trace of the search (the fields of ``dba_ref.SelectionTrace`` that matter)."""

    indices: torch.Tensor     # sorted int64
    value: float
    removed: torch.Tensor     # int64, in removal order
    values: torch.Tensor      # metric after each removal
    full_T: float
    full_Q: float
    full_value: float


def select(K, metric: str = "mean_variance", strategy: str = "greedy", min_size=2, tol: float = 0.0) -> TorchSelection:
    """The subset of a batch that minimises ``metric``, from the Gram matrix ``K`` (float64 inside)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRIC_NAMES)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    K = torch.as_tensor(K).to(torch.float64)
    B = K.shape[0]
    m = min_size_count(check_min_size(min_size), B)
    if m > B:
        raise ValueError(f"min_size={m} is larger than the batch (B={B})")
    T, Q = K.trace(), K.sum()
    full = metric_value(metric, T, Q, B)
    search = {"greedy": _greedy, "prefix": _prefix, "exhaustive": _exhaustive, "all": _all}[strategy]
    indices, value, removed, values = search(K, metric, m, tol)
    removed = torch.as_tensor(removed, dtype=torch.int64, device=K.device)
    values = torch.as_tensor(values, dtype=torch.float64, device=K.device)
    return TorchSelection(indices.sort().values, float(value), removed, values, float(T), float(Q), float(full))


def _greedy(K, metric, m, tol):
    """Backward elimination; ``r = K w`` is recomputed from the mask ``w`` at every step."""
    B = K.shape[0]
    d = K.diagonal()
    keep = torch.ones(B, dtype=torch.bool, device=K.device)
    current = metric_value(metric, d.sum(), K.sum(), B)
    removed, values = [], []
    for k in range(B, m, -1):                                      # k = |S| before the removal
        w = keep.to(K.dtype)
        r = K @ w
        cand = metric_value(metric, d @ w - d, w @ r - 2 * r + d, k - 1).masked_fill(~keep, torch.inf)
        best = int(torch.argmin(cand))                             # the first minimum: lowest index on ties
        threshold = current if current <= 0 else (1 - tol) * current
        if not cand[best] < threshold:
            break
        keep[best] = False
        current = cand[best]
        removed.append(best)
        values.append(float(current))
    return keep.nonzero().flatten(), current, removed, values


def _prefix(K, metric, m, tol):
    """Rank by ``c_i = ⟨g_i, s⟩/‖g_i‖`` (descending, stable); metric of every prefix via 2-D cumulative sums."""
    B = K.shape[0]
    norms = K.diagonal().clamp(min=0).sqrt()
    c = torch.where(norms > 0, K.sum(1) / norms, torch.zeros((), dtype=K.dtype, device=K.device))
    order = torch.sort(c, descending=True, stable=True).indices
    P = K[order][:, order]
    sizes = torch.arange(1, B + 1, device=K.device)
    path = metric_value(metric, P.diagonal().cumsum(0), P.cumsum(0).cumsum(1).diagonal(), sizes)
    allowed = path[m - 1:]
    k_best = m + int(torch.nonzero(allowed == allowed.min()).max())   # the longest of the best prefixes
    return order[:k_best], path[k_best - 1], order.flip(0)[:B - m], path[m - 1:B - 1].flip(0)


def _exhaustive(K, metric, m, tol):
    """Every subset of size >= m as a row of a 0/1 mask matrix; ties: the largest subset, then the
    lexicographically smallest index list."""
    B = K.shape[0]
    if B > EXHAUSTIVE_MAX_B:
        raise ValueError(f"exhaustive search needs B <= {EXHAUSTIVE_MAX_B}, got {B}")
    bits = torch.arange(B, device=K.device)
    M = ((torch.arange(1, 2 ** B, device=K.device)[:, None] >> bits) & 1).to(torch.float64)
    M = M[M.sum(1) >= m]
    vals = metric_value(metric, M @ K.diagonal(), ((M @ K) * M).sum(1), M.sum(1))
    low = vals.min()                    # if every value is +inf, every subset ties
    best = min((-len(t), t) for t in (tuple(row.nonzero().flatten().tolist()) for row in M[vals == low]))[1]
    return torch.tensor(best, dtype=torch.int64, device=K.device), low, [], []


def _all(K, metric, m, tol):
    B = K.shape[0]
    return torch.arange(B, device=K.device), metric_value(metric, K.trace(), K.sum(), B), [], []


# --------------------------------------------------------------------------
# DBA around a torch.optim optimizer (spec §6)
# --------------------------------------------------------------------------
class DBA:
    """Dynamic Batch Adaptation around ``base``, a ``torch.optim`` optimizer over ``model.parameters()``.

    :meth:`step` computes the per-sample gradients of a batch, selects a subset
    for every layer, sets each layer's ``.grad`` to the mean over its subset and
    calls ``base.step()``. A batch smaller than ``min_size`` is used whole.
    """

    def __init__(self, model: TorchMLP, base: torch.optim.Optimizer, metric: str = "mean_variance",
                 strategy: str = "greedy", min_size=2, tol: float = 0.0):
        self.model, self.base = model, base
        self.metric, self.strategy, self.min_size, self.tol = metric, strategy, min_size, tol

    def step(self, X: torch.Tensor, y: torch.Tensor) -> list:
        """One update on the batch ``(X, y)``; returns the :class:`TorchSelection` of every layer."""
        B = X.shape[0]
        m = min_size_count(check_min_size(self.min_size), B)
        strategy = self.strategy if m <= B else "all"
        self.base.zero_grad()
        selections = []
        for layer, (gW, gb) in zip(self.model.layers, per_sample_grads(self.model, X, y)):
            sel = select(gram(gW, gb), self.metric, strategy, min(m, B), self.tol)
            layer.weight.grad = gW[sel.indices].mean(0)
            layer.bias.grad = gb[sel.indices].mean(0)
            selections.append(sel)
        self.base.step()
        return selections


# --------------------------------------------------------------------------
# The conformance check's cases
# --------------------------------------------------------------------------
#: The ``torch.optim`` optimizer of each base of the conformance cases, from the case's hyper-parameters.
TORCH_BASES = {
    "sgd": lambda params, hp: torch.optim.SGD(params, lr=hp["learning_rate"]),
    "momentum": lambda params, hp: torch.optim.SGD(params, lr=hp["learning_rate"], momentum=hp["momentum"]),
    "adam": lambda params, hp: torch.optim.Adam(params, lr=hp["learning_rate"], betas=(hp["beta1"], hp["beta2"]),
                                                eps=hp["eps"]),
}


def conformance_results(inputs) -> dict:
    """This implementation's outputs for one case exported by ``dba-ref conformance export``.

    ``inputs`` maps the case file's keys to arrays; the result maps the output
    keys of ``docs/golden_schema.md`` to NumPy arrays, for the metrics,
    strategies and bases the case file names, with trajectories of
    ``inputs["steps"]`` DBA steps.
    """
    from ..conformance import pad_rows, selection_key, trajectory_key

    L = len(inputs["sizes"]) - 1
    params = [(inputs[f"W{l}"], inputs[f"b{l}"]) for l in range(1, L + 1)]
    activation = str(inputs["activation"])
    X, y = torch.as_tensor(inputs["X"]), torch.as_tensor(inputs["y"])
    m, tol = int(inputs["min_size"]), float(inputs["tol"])
    model = TorchMLP.from_params(params, activation)
    out = {"losses": per_sample_losses(model, X, y)}
    for l, (gW, gb) in enumerate(per_sample_grads(model, X, y), 1):
        K = gram(gW, gb)
        out.update({f"grad_W{l}": gW, f"grad_b{l}": gb, f"gram{l}": K})
        for metric in map(str, inputs["metrics"]):
            for strategy in map(str, inputs["strategies"]):
                sel = select(K, metric, strategy, m, tol)
                for name in ("indices", "value", "removed", "values"):
                    out[selection_key(metric, strategy, l, name)] = getattr(sel, name)
            out[f"full/L{l}/{metric}"] = sel.full_value
        out[f"full/L{l}/T"], out[f"full/L{l}/Q"] = sel.full_T, sel.full_Q
    B = X.shape[0]
    for base in map(str, inputs["bases"]):
        hyperparams = {k.split("_", 1)[1]: float(v) for k, v in inputs.items() if k.startswith(f"{base}_")}
        for metric in map(str, inputs["metrics"]):
            for strategy in map(str, inputs["strategies"]):
                model = TorchMLP.from_params(params, activation)
                dba = DBA(model, TORCH_BASES[base](model.parameters(), hyperparams), metric, strategy, m, tol)
                steps = [(dba.step(torch.as_tensor(Xt), torch.as_tensor(yt)), model.numpy_params())
                         for Xt, yt in zip(inputs["step_X"], inputs["step_y"])]
                key = lambda name: trajectory_key(base, metric, strategy, name)     # noqa: E731
                for l in range(L):
                    out[key(f"L{l + 1}/indices")] = pad_rows([sels[l].indices.cpu() for sels, _ in steps], B)
                    out[key(f"L{l + 1}/removed")] = pad_rows([sels[l].removed.cpu() for sels, _ in steps], B)
                    out[key(f"W{l + 1}")] = np.stack([weights[l][0] for _, weights in steps])
                    out[key(f"b{l + 1}")] = np.stack([weights[l][1] for _, weights in steps])
    return {k: v.detach().numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in out.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dba_ref.frameworks.torch_dba",
                                     description="Run the PyTorch DBA on exported conformance cases.")
    parser.add_argument("inputs", help="folder written by `dba-ref conformance export`")
    parser.add_argument("results", help="RESULTS.npz to write (<case>/<key> arrays)")
    args = parser.parse_args(argv)
    paths = sorted(Path(args.inputs).glob("*.npz"))
    if not paths:
        parser.error(f"no .npz cases in {args.inputs}; run `dba-ref conformance export {args.inputs}` first")
    results = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as archive:
            outputs = conformance_results({key: archive[key] for key in archive.files})
        results.update({f"{path.stem}/{key}": value for key, value in outputs.items()})
    np.savez(args.results, **results)
    print(f"wrote {len(results)} arrays for {len(paths)} cases to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
