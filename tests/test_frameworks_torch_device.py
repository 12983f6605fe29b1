"""The PyTorch version on any device: every tensor it creates follows the device of its inputs.

Without a GPU this is checked by recording the device of every tensor that
:mod:`dba_ref.frameworks.torch_dba` creates while it runs every search and a
DBA step on CPU tensors: each must have been asked for on the inputs' device,
not left to PyTorch's default. With a GPU, a DBA step on CUDA tensors must
give the selections and the weights of the same step on the CPU.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from dba_ref.frameworks import torch_dba as td  # noqa: E402
from dba_ref.metrics import METRIC_NAMES  # noqa: E402

pytestmark = pytest.mark.torch

FACTORIES = ("arange", "ones", "zeros", "tensor", "as_tensor", "full", "empty", "eye", "linspace")


class RecordingTorch:
    """``torch`` as :mod:`torch_dba` sees it, recording the ``device`` argument of every factory call."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        attribute = getattr(torch, name)
        if name not in FACTORIES:
            return attribute

        def factory(*args, **kwargs):
            device = kwargs.get("device")
            if device is None and name == "as_tensor" and torch.is_tensor(args[0]):
                device = args[0].device          # a tensor converted in place keeps its device
            self.calls.append((name, device))
            return attribute(*args, **kwargs)

        return factory


def batch(rng, B, sizes, device):
    X = torch.as_tensor(rng.normal(size=(B, sizes[0])), device=device)
    y = torch.as_tensor(rng.integers(0, sizes[-1], B), device=device)
    return X, y


def test_every_tensor_created_names_the_inputs_device(rng, monkeypatch):
    recording = RecordingTorch()
    monkeypatch.setattr(td, "torch", recording)
    sizes = [5, 7, 3]
    model = td.TorchMLP(sizes, "tanh")
    X, y = batch(rng, 9, sizes, "cpu")
    K = td.gram(*td.per_sample_grads(model, X, y)[0])
    for metric in METRIC_NAMES:
        for strategy in ("greedy", "prefix", "exhaustive", "all"):
            td.select(K, metric, strategy, 2)
    td.DBA(model, torch.optim.SGD(model.parameters(), lr=0.1)).step(X, y)
    assert recording.calls, "the search made no tensor: the check checks nothing"
    undirected = [name for name, device in recording.calls if device is None]
    assert not undirected, f"tensors made on PyTorch's default device, not the inputs': {undirected}"
    assert {str(device) for _, device in recording.calls} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU for PyTorch")
@pytest.mark.parametrize("strategy", ["greedy", "prefix", "exhaustive", "all"])
def test_dba_step_on_cuda_tensors_matches_the_cpu_step(rng, strategy):
    sizes = [6, 8, 3]
    X, y = batch(rng, 12, sizes, "cpu")
    results = {}
    for device in ("cpu", "cuda"):
        model = td.TorchMLP(sizes, "relu")
        torch.manual_seed(0)
        for layer in model.layers:
            torch.nn.init.normal_(layer.weight)
            torch.nn.init.normal_(layer.bias)
        model.to(device)
        selections = td.DBA(model, torch.optim.SGD(model.parameters(), lr=0.1), strategy=strategy).step(
            X.to(device), y.to(device))
        assert all(sel.indices.device.type == device for sel in selections)
        results[device] = ([sel.indices.cpu().numpy() for sel in selections], model.numpy_params())
    (cpu_sets, cpu_params), (gpu_sets, gpu_params) = results["cpu"], results["cuda"]
    for cpu_set, gpu_set in zip(cpu_sets, gpu_sets):
        np.testing.assert_array_equal(gpu_set, cpu_set)
    bound = 4 * (12 + sum(sizes)) * np.finfo(np.float64).eps    # n·eps over the terms summed on the way
    for (W, b), (rW, rb) in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(W, rW, rtol=0, atol=bound * np.abs(rW).max())
        np.testing.assert_allclose(b, rb, rtol=0, atol=bound * np.abs(rb).max())
