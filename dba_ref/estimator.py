"""A scikit-learn classifier trained with DBA (or any optimizer of the package).

:class:`DBAClassifier` is :class:`dba_ref.MLP` behind the scikit-learn
estimator interface — ``fit``, ``partial_fit``, ``predict``,
``predict_proba``, ``score``, ``get_params`` / ``set_params`` — so it drops
into ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and the rest. The
steps are those of :func:`dba_ref.training.train` (the same
:class:`~dba_ref.training.Trainer`): the same model, data order, optimizer and
seed give the same weights.

Labels may be any sortable values (``classes_`` holds them in sorted order);
the network's output ``k`` is ``classes_[k]``. Inputs are validated by
scikit-learn (NaN, inf, sparse, complex, wrong ``n_features_in_`` are
refused) and converted to ``dtype``.

It passes every check of ``sklearn.utils.estimator_checks.check_estimator``
(scikit-learn 1.9.1: 55 checks), none skipped or expected to fail;
``tests/test_estimator.py`` runs them. One of them, ``check_array_api_input``,
scikit-learn skips unless ``SCIPY_ARRAY_API=1`` is set; the test sets it.

>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from dba_ref.estimator import DBAClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = make_pipeline(StandardScaler(), DBAClassifier(hidden_layer_sizes=(16,), epochs=30, random_state=0))
>>> clf.fit(X, y).score(X, y) > 0.9
True
"""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_dtype, check_positive
from .model import MLP
from .optimizers import DBA_DEFAULTS, Optimizer, make_optimizer
from .training import History, Trainer


class DBAClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron classifier trained with DBA(``base``) or a plain optimizer.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64,)
        Widths of the hidden layers; ``()`` gives a linear (softmax) model.
    activation : {"relu", "tanh", "sigmoid", "identity"}, default "relu"
    optimizer : str, default "dba"
        ``"dba"`` wraps ``base`` in :func:`dba_ref.dba`; any other name of
        :data:`dba_ref.OPTIMIZERS` trains plainly with it (as ``dba-ref train --optimizer``).
    base : str, default "sgd"
        DBA's base optimizer (ignored unless ``optimizer="dba"``). SGD because at
        its default rate (0.1) it learns within the default 20 epochs, where Adam at
        its default 1e-3 needs many more; ``dba-ref train`` uses Adam at the larger
        rate the reproduction validated for it.
    learning_rate : float or None, default None
        The (base) optimizer's learning rate; None keeps its own default.
    optimizer_params : dict or None
        Other hyper-parameters of the (base) optimizer, e.g. ``{"momentum": 0.8}``.
    metric, strategy, min_size, tol :
        DBA's selection (see :func:`dba_ref.select`; the defaults are the library's,
        :data:`dba_ref.optimizers.DBA_DEFAULTS`); ignored unless ``optimizer="dba"``.
    backend : {"numpy", "numba", "cuda"}, default "numpy"
        Who computes the training steps (:mod:`dba_ref.backends`).
    epochs : int, default 20
        Passes over the data in :meth:`fit`; :meth:`partial_fit` makes one pass per call.
    batch_size : int or None, default 32
        None: the whole data set in every step. For an adaptive-batch
        optimizer (``adadagrad``), the initial size.
    shuffle : bool, default True
        Draw a new permutation of the samples every epoch.
    dtype : {"float64", "float32"}, default "float64"
        Dtype of the network and of every computation.
    random_state : int, RandomState or None
        Seeds the initialisation and the shuffling (scikit-learn convention).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray, when X had string column names
    model_ : dba_ref.MLP
        The trained network.
    optimizer_state_ : object
        The optimizer's state after the last step (what :meth:`partial_fit` continues from).
    n_iter_ : int
        Epochs run: ``epochs`` after :meth:`fit`, plus one per :meth:`partial_fit`.
    t_ : int
        Optimizer steps taken.
    loss_curve_ : list of float
        Mean training loss of the steps of every epoch.
    steps_ : dict
        Per-step records, as ``History.steps`` of :func:`dba_ref.training.train`
        (for DBA: the selected sizes and metrics of every layer).
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", optimizer="dba", base="sgd",
                 learning_rate=None, optimizer_params=None, metric=DBA_DEFAULTS["metric"],
                 strategy=DBA_DEFAULTS["strategy"], min_size=DBA_DEFAULTS["min_size"], tol=DBA_DEFAULTS["tol"],
                 backend="numpy", epochs=20, batch_size=32, shuffle=True, dtype="float64", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.base = base
        self.learning_rate = learning_rate
        self.optimizer_params = optimizer_params
        self.metric = metric
        self.strategy = strategy
        self.min_size = min_size
        self.tol = tol
        self.backend = backend
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dtype = dtype
        self.random_state = random_state

    # -- building ----------------------------------------------------------------------------------
    def make_optimizer(self) -> Optimizer:
        """The :class:`~dba_ref.Optimizer` these parameters describe (rebuilt on every call: it holds no state)."""
        options = dict(self.optimizer_params or {})
        if self.learning_rate is not None:
            options["learning_rate"] = self.learning_rate
        if self.optimizer == "dba":
            options.update(base=self.base, metric=self.metric, strategy=self.strategy, min_size=self.min_size,
                           tol=self.tol)
        return make_optimizer(self.optimizer, **options)

    def _hidden(self) -> list:
        sizes = self.hidden_layer_sizes
        return [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)

    def _initialise(self, n_features: int) -> None:
        """A fresh network and optimizer state; the seeds come from ``random_state``."""
        rs = check_random_state(self.random_state)
        model_seed, shuffle_seed = (int(s) for s in rs.randint(0, 2 ** 31 - 1, size=2))
        self.model_ = MLP([n_features, *self._hidden(), len(self.classes_)], activation=self.activation,
                          seed=model_seed, dtype=check_dtype(self.dtype))
        self.optimizer_state_ = self.make_optimizer().init(self.model_.params)
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self.n_iter_, self.t_, self.loss_curve_, self.steps_ = 0, 0, [], {"loss": [], "batch_size": []}

    def _validate(self, X, y="no_validation", reset: bool = False):
        dtype = check_dtype(self.dtype)
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, reset=reset, dtype=dtype)
        X, y = validate_data(self, X, y, reset=reset, dtype=dtype)
        check_classification_targets(y)
        return X, y

    def _encode(self, y) -> np.ndarray:
        """Labels → 0..n_classes-1 (positions in ``classes_``)."""
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(f"y has labels {sorted(set(np.asarray(y)[unknown].tolist()))} that are not in "
                             f"classes_ {self.classes_.tolist()}")
        return codes.astype(np.int64)

    def _run(self, X, y, epochs: int) -> None:
        """``epochs`` passes over ``(X, y)`` (y encoded), continuing the stored state: the loop of every fit."""
        batch = X.shape[0] if self.batch_size is None else check_positive(self.batch_size, "batch_size", integer=True)
        trainer = Trainer(self.model_, self.make_optimizer(), History(steps=self.steps_),
                          state=self.optimizer_state_, step=self.t_, backend=self.backend)
        sampler = trainer.sampler(X.shape[0], batch, self._shuffle_rng, bool(self.shuffle))     # capped at n
        for _ in range(epochs):
            first = trainer.step
            trainer.run_epoch(X, y, sampler)
            self.loss_curve_.append(float(np.mean(self.steps_["loss"][first:])))
            self.n_iter_ += 1
            self.optimizer_state_, self.t_ = trainer.state, trainer.step

    # -- scikit-learn API ---------------------------------------------------------------------------
    def fit(self, X, y):
        """Train a fresh network for ``epochs`` epochs on ``(X, y)``; returns self."""
        X, y = self._validate(X, y, reset=True)
        epochs = check_positive(self.epochs, "epochs", integer=True)
        classes = unique_labels(y)
        if len(classes) < 2:
            raise ValueError(f"DBAClassifier needs at least 2 classes in y to learn from; got 1 class ({classes[0]!r})")
        self.classes_ = classes
        self._initialise(X.shape[1])
        self._run(X, self._encode(y), epochs)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on ``(X, y)``, continuing the network and optimizer state of earlier calls.

        ``classes`` (every label that will ever appear) is required on the first call, as in scikit-learn.
        """
        first = not hasattr(self, "model_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = unique_labels(classes)
            if len(classes) < 2:
                raise ValueError(f"DBAClassifier needs at least 2 classes; got classes={classes.tolist()}")
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} differs from classes_={self.classes_.tolist()} of the "
                             "first call to partial_fit")
        X, y = self._validate(X, y, reset=first)
        if first:
            self.classes_ = classes
            self._initialise(X.shape[1])
        self._run(X, self._encode(y), 1)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``softmax(Z_L)``, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        check_is_fitted(self)
        return self.model_.predict_proba(self._validate(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of every sample (a label of ``classes_``)."""
        check_is_fitted(self)
        return self.classes_[self.model_.predict(self._validate(X))]


__all__ = ["DBAClassifier"]
