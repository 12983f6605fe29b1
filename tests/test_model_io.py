"""Weights in and out of the MLP: a list of arrays and a PyTorch ``nn.Sequential`` (issue 11, item 7).

- ``from_arrays``/``to_arrays`` and ``from_torch``/``to_torch`` round trips are exact, bit for bit, in float32
  and float64, for 1-4 layers and every activation; the copies never share memory with their source;
- the torch Sequential computes the model's function (exactly, on dyadic weights where no rounding occurs);
- bad input gets a one-line error that names what to fix (for a Sequential: the module and its position),
  and PyTorch missing gets one that says how to install it.
"""
import sys

import numpy as np
import pytest

from dba_ref import MLP
from dba_ref.model import ACTIVATIONS

DTYPES = [np.float32, np.float64]


def random_model(rng, n_layers, activation, dtype):
    """An MLP with odd widths and non-zero biases (zero biases would hide a swapped W/b)."""
    sizes = [int(s) for s in rng.choice([1, 3, 5, 7], size=n_layers)] + [3]
    model = MLP(sizes, activation=activation, seed=int(rng.integers(1 << 31)), dtype=dtype)
    model.set_params([(W, rng.normal(size=b.shape)) for W, b in model.params])
    return model


def assert_same_bits(arrays, reference):
    assert len(arrays) == len(reference)
    for a, r in zip(arrays, reference):
        assert a.dtype == r.dtype and a.shape == r.shape
        assert a.tobytes() == r.tobytes()


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_arrays_round_trip_is_exact(rng, n_layers, activation, dtype):
    model = random_model(rng, n_layers, activation, dtype)
    arrays = model.to_arrays()
    assert [a.shape for a in arrays] == [a.shape for W, b in model.params for a in (W, b)]
    twin = MLP.from_arrays(arrays, activation=activation)
    assert (twin.sizes, twin.activation, twin.dtype, twin.seed) == (model.sizes, activation, np.dtype(dtype), None)
    assert_same_bits(twin.to_arrays(), arrays)
    X = rng.normal(size=(5, model.sizes[0]))
    assert twin.forward(X).tobytes() == model.forward(X).tobytes()


def test_arrays_are_copies(rng):
    model = random_model(rng, 2, "relu", np.float64)
    arrays = model.to_arrays()
    arrays[0][...] = 7.0                                  # changing what to_arrays gave changes nothing
    assert not np.any(model.weights[0] == 7.0)
    twin = MLP.from_arrays(arrays)
    arrays[2][...] = 9.0                                  # nor does changing what from_arrays took
    assert not np.any(twin.weights[1] == 9.0)


def test_from_arrays_dtype():
    arrays = [np.ones((3, 2), np.float32), np.zeros(3, np.float32)]
    assert MLP.from_arrays(arrays).dtype == np.float32
    assert MLP.from_arrays([arrays[0], arrays[1].astype(np.float64)]).dtype == np.float64     # NumPy's promotion
    converted = MLP.from_arrays(arrays, dtype=np.float64)
    assert converted.dtype == np.float64 and converted.weights[0].dtype == np.float64
    assert MLP.from_arrays([[[1, 2]] * 3, [0, 0, 0]], dtype="float32").weights[0].dtype == np.float32


W32, B3 = np.ones((3, 2)), np.zeros(3)


@pytest.mark.parametrize("arrays, error, words", [
    ([], ValueError, "alternate weights and biases"),
    ([W32], ValueError, "got 1 arrays"),
    (W32, TypeError, "must be a list"),
    ([W32.ravel(), B3], ValueError, "arrays[0] must be a weight matrix"),
    ([W32, np.zeros(2)], ValueError, "arrays[1] must be the bias (3,)"),
    ([W32, B3, np.ones((3, 4)), np.zeros(3)], ValueError, "arrays[2] has 4 inputs but the layer before it"),
    ([W32, B3.astype(complex)], TypeError, "arrays[1] must hold real numbers"),
    ([W32.astype(int), B3.astype(int)], TypeError, "pass dtype=np.float32"),
    ([W32.astype(np.float16), B3.astype(np.float16)], TypeError, "pass dtype=np.float32"),
    ([np.full((3, 2), np.nan), B3], ValueError, "NaN or inf"),
    ([np.ones((1, 2)), np.zeros(1)], ValueError, "at least 2 classes"),
])
def test_from_arrays_bad_input(arrays, error, words):
    with pytest.raises(error) as info:
        MLP.from_arrays(arrays)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_from_arrays_bad_activation_and_dtype():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        MLP.from_arrays([W32, B3], activation="gelu")
    with pytest.raises(TypeError, match="float32 or float64"):
        MLP.from_arrays([W32, B3], dtype=np.int32)


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")


@pytest.mark.torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_torch_round_trip_is_exact(torch, rng, n_layers, activation, dtype):
    model = random_model(rng, n_layers, activation, dtype)
    net = model.to_torch()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(net) == 2 * n_layers - 1 and len(linears) == n_layers
    assert {type(m).__name__ for m in net[1::2]} <= {{"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid",
                                                       "identity": "Identity"}[activation]}
    for layer, (W, b) in zip(linears, model.params):        # PyTorch's layout: weight (out, in), bias (out,)
        assert layer.weight.detach().numpy().tobytes() == W.tobytes()
        assert layer.bias.detach().numpy().tobytes() == b.tobytes()
    twin = MLP.from_torch(net)
    assert twin.dtype == np.dtype(dtype) and twin.sizes == model.sizes
    assert twin.activation == (activation if n_layers > 1 else "identity")    # one Linear has no activation
    assert_same_bits(twin.to_arrays(), model.to_arrays())


@pytest.mark.torch
def test_from_torch_copies_and_leaves_the_module_alone(torch):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    before = [p.detach().clone() for p in net.parameters()]
    model = MLP.from_torch(net)
    model.weights[0][...] = 5.0
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))
    assert (model.dtype, model.activation, model.sizes) == (np.float32, "tanh", [3, 4, 2])


@pytest.mark.torch
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_torch_net_computes_the_model(torch, rng, activation):
    """Dyadic weights and inputs (multiples of 1/8, small): every product and sum is exact in float64,
    so the Sequential's logits equal the model's bit for bit, whatever the order of the sums."""
    model = MLP([6, 5, 4, 3], activation=activation)
    model.set_params([(rng.integers(-8, 9, W.shape) / 8, rng.integers(-8, 9, b.shape) / 8) for W, b in model.params])
    X = rng.integers(-8, 9, (10, 6)) / 8
    with torch.no_grad():
        logits = model.to_torch()(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(logits, model.forward(X))


@pytest.mark.torch
def test_torch_dtype_conversion(torch):
    model = MLP([3, 4, 2], dtype=np.float64, seed=1)
    net = model.to_torch(dtype=torch.float32)
    assert net[0].weight.dtype == torch.float32
    assert MLP.from_torch(net).weights[0].tobytes() == model.weights[0].astype(np.float32).tobytes()
    assert model.to_torch(dtype=np.float32)[0].weight.dtype == torch.float32
    assert MLP.from_torch(net, dtype=torch.float64).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        model.to_torch(dtype=torch.float16)


@pytest.mark.torch
def test_from_torch_reads_identity_anywhere_and_none_between(torch):
    nn = torch.nn
    net = nn.Sequential(nn.Identity(), nn.Linear(3, 4), nn.Linear(4, 4), nn.Identity(), nn.Linear(4, 2), nn.Identity())
    model = MLP.from_torch(net)
    assert (model.activation, model.sizes) == ("identity", [3, 4, 4, 2])
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Identity(), nn.Linear(4, 2))
    assert MLP.from_torch(net).activation == "relu"


def torch_case(name):
    """Bad Sequentials (built after torch is imported) and the words their error must hold."""
    import torch
    nn = torch.nn
    return {
        "dropout": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 2)),
                    ValueError, "position 2 of the Sequential holds Dropout"),
        "leaky": (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(), nn.Linear(4, 2)),
                  ValueError, "position 1 of the Sequential holds LeakyReLU"),
        "softmax at the end": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(dim=1)),
                               ValueError, "position 3 of the Sequential holds Softmax"),
        "activation at the end": (nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()),
                                  ValueError, "position 1 of the Sequential holds Sigmoid after the last Linear"),
        "activation first": (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)),
                             ValueError, "position 0 of the Sequential holds ReLU before the first Linear"),
        "mixed": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)),
                  ValueError, "mixes activations (ReLU at position 1, Tanh at position 3)"),
        "mixed with none": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2)),
                            ValueError, "no activation before position 3"),
        "two activations": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)),
                            ValueError, "positions 1 and 2 of the Sequential both hold an activation"),
        "no bias": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)),
                    ValueError, "position 2 of the Sequential is a Linear without bias"),
        "half": (nn.Sequential(nn.Linear(3, 2)).half(), TypeError, "position 0 of the Sequential is a Linear of "
                                                                   "torch.float16"),
        "nested": (nn.Sequential(nn.Sequential(nn.Linear(3, 2))), ValueError, "position 0 of the Sequential holds "
                                                                            "Sequential"),
        "empty": (nn.Sequential(), ValueError, "holds no Linear layer"),
        "not a Sequential": (nn.Linear(3, 2), TypeError, "takes a torch.nn.Sequential of Linear layers and "
                                                         "activations, got Linear"),
        "one class": (nn.Sequential(nn.Linear(3, 1)), ValueError, "at least 2 classes"),
    }[name]


@pytest.mark.torch
@pytest.mark.parametrize("name", ["dropout", "leaky", "softmax at the end", "activation at the end",
                                  "activation first", "mixed", "mixed with none", "two activations", "no bias",
                                  "half", "nested", "empty", "not a Sequential", "one class"])
def test_from_torch_bad_sequential(torch, name):
    net, error, words = torch_case(name)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(error) as info:
        MLP.from_torch(net)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_without_torch_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` now raises ImportError
    model = MLP([3, 2])
    with pytest.raises(ImportError, match=r"^MLP.to_torch needs PyTorch, which is not installed: pip install torch"):
        model.to_torch()
    with pytest.raises(ImportError, match=r"^MLP.from_torch needs PyTorch"):
        MLP.from_torch(object())
