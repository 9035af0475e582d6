r"""The discrete active-inference :class:`Agent`: a POMDP generative model as a predcode model.

The agent's parameters *are* its generative model (Friston et al. 2017; Da
Costa et al. 2020; pymdp's ``Agent``, Heins et al. 2022): likelihoods ``A``,
transitions ``B``, preferences ``C``, initial states ``D``, habits ``E``,
policies of depth ``T - 1``, and Dirichlet priors ``pA``, ``pB``, ``pD`` over
``A``, ``B``, ``D``. The function API of :mod:`predcode.models.active_inference`
(:func:`~predcode.models.active_inference.marginal_message_passing`,
:func:`~predcode.models.active_inference.learn`,
:func:`~predcode.models.active_inference.run_trials`) does the work underneath.

Perception and learning from recorded trials (the protocol)
-----------------------------------------------------------
Data are observation sequences ``O``: ints (n_trials, T) for one modality or
(n_trials, T, M), optionally with the actions taken, ``actions`` (n_trials,
T - 1) for one factor or (n_trials, T - 1, F).

* **State inference** (``infer``): for every policy :math:`\pi`, marginal
  message passing (Parr et al. 2019; SPM ``spm_MDP_VB_X``) over the whole
  trial with every outcome seen (:math:`t = T - 1`), from uniform beliefs,
  ``n_iter`` sweeps with time constant ``tau``, gives :math:`s_{\pi\tau}` and
  the policy's free energy :math:`F(\pi)`. The policy posterior is
  :math:`q(\pi) = \sigma(\ln E - F)` over the policies consistent with the
  given actions (all policies when none are given; at the end of a trial no
  future is left, so SPM's :math:`\gamma G` term is zero), and the posterior
  over states is the Bayesian model average
  :math:`\bar s_\tau = \sum_\pi q(\pi)\, s_{\pi\tau}`.
* **Free energy** (``energy``, nats, one per trial): the variational free
  energy of states and policies at that policy posterior,

  .. math::

      F = \sum_\pi q(\pi)\big[F(\pi) + \ln q(\pi) - \ln E(\pi)\big]
        = -\ln \sum_\pi E(\pi)\, e^{-F(\pi)},

  with :math:`F(\pi) = \sum_{\tau,f} s\cdot(\ln s - \ln B s_{\tau-1}) -
  \sum_\tau \mathbb{E}_s[\ln P(o_\tau | s_\tau)]` SPM's marginal free energy.
  For one factor and converged beliefs it is :math:`-\ln P(o_{0:T-1})`.
* **Learning** (``fit``: ``epochs`` passes; ``partial_fit``: one): in each
  pass, trials go in order in batches of ``batch_size`` (all at once by
  default); each batch's posteriors (under the counts at the start of the
  batch) add Dirichlet counts (Da Costa et al. 2020 eq. 12; SPM; pymdp's
  ``update_A``),

  .. math::

      a^m \mathrel{+}= \text{lr} \sum_{n,\tau} o^m_{n\tau} \otimes \bar s_{n\tau}
      \;[a^m > 0], \quad
      b^f_u \mathrel{+}= \text{lr} \sum_{n,\tau \ge 1} [u_{n,\tau-1} = u]\,
      \bar s^f_{n\tau} \otimes \bar s^f_{n,\tau-1}\;[b^f > 0], \quad
      d^f \mathrel{+}= \text{lr} \sum_n \bar s^f_{n0},

  and the agent's ``A``, ``B``, ``D`` become the counts' expectations. As in
  SPM and pymdp the posterior counts are the next prior: a second pass
  presents the trials again. ``A`` is learned unless ``learn_A=False``
  (prior counts ``pA``, default ``A`` itself: a concentration of one per
  column, pymdp's ``dirichlet_like``); ``B`` when ``pB`` is given (this needs
  the actions), ``D`` when ``pD`` is given.

Acting (``run``)
----------------
:meth:`Agent.run` puts the agent (with what it has learned) into a generative
process for ``n_trials`` trials (``n_agents`` copies that each keep learning
on their own): :func:`~predcode.models.active_inference.run_trials`, SPM's
``spm_MDP_VB_X``: expected free energy, precision ``gamma = 1 / beta``,
action precision ``alpha``.

References
----------
Friston, FitzGerald, Rigoli, Schwartenbeck & Pezzulo (2017). Active inference:
a process theory. *Neural Computation* 29(1), 1-49.
Da Costa, Parr, Sajid, Veselic, Neacsu & Friston (2020). Active inference on
discrete state-spaces: a synthesis. *J. Math. Psychol.* 99, 102447.
Parr, Markovic, Kiebel & Friston (2019). Neuronal message passing using
mean-field, Bethe, and marginal approximations. *Sci. Rep.* 9, 1889.
Heins, Millidge, Demekas, Klein, Friston, Couzin & Tschantz (2022). pymdp: A
Python library for active inference in discrete state spaces. *JOSS* 7(73), 4098.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..backend import array_namespace, is_cupy, to_numpy
from ..base import Model
from ..exceptions import ValidationError
from ..pomdp import LOG_FLOOR, GenerativeModel, make_model
from ..validation import check_choice, check_int, check_param, check_random_state
from .active_inference import _batched, learn, marginal_message_passing, run_trials
from .spm_mdp import SpmAgent

__all__ = ["Agent"]

#: parameters that are one array per modality / factor, and single-array parameters
_LIST_PARAMS = ("A", "B", "C", "D", "pA", "pB", "pD")
_ARRAY_PARAMS = ("E", "policies")


def _nested(x: Any) -> Any:
    """A host array as nested tuples (JSON-safe, compares by value)."""
    arr = np.asarray(to_numpy(x))
    if arr.ndim == 0:
        return arr.item()
    return tuple(_nested(v) for v in arr)


def _freeze(value: Any, per_item: bool) -> Any:
    """Canonical, comparable form of an array parameter: nested tuples.

    ``per_item``: the parameter is one array per modality/factor; a single
    array means one. The form survives a JSON round trip (save/load) unchanged.
    """
    if value is None:
        return None
    if per_item:
        if isinstance(value, np.ndarray) or is_cupy(value) or np.isscalar(value):
            value = [value]
        if isinstance(value, (list, tuple)):
            return tuple(_nested(v) for v in value)
        return value  # invalid: make_model names it at fit time
    return _nested(value)


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [] if value is None else [value]


class Agent(Model):
    r"""Discrete active inference agent (SPM's ``spm_MDP_VB_X``, pymdp's ``Agent``).

    Parameters
    ----------
    A : array or list of arrays
        ``A[m]`` (O_m, S_1, ..., S_F): likelihood of modality ``m``.
    B : array or list of arrays
        ``B[f]`` (S_f, S_f, U_f): transitions of factor ``f`` under each action.
    C, D, E : optional
        Log preferences ``C[m]`` (O_m,) or (O_m, T); initial states ``D[f]``;
        policy prior (P,) (see :func:`~predcode.pomdp.make_model`).
    policies : array of int, optional
        (P, T - 1, F) or (P, T - 1); default every sequence of ``T - 1`` moves.
    T : int, optional
        Time steps per trial (policy depth ``T - 1``); default from ``policies``.
    pA, pB, pD : optional
        Dirichlet prior counts over ``A``, ``B``, ``D`` (shapes like them).
        ``pB``/``pD`` switch on learning of ``B``/``D``.
    learn_A : bool
        Learn ``A`` (prior ``pA``, default ``A``: one count per column entry).
    lr : float
        Learning rate of the Dirichlet counts (SPM's ``eta``, default 1).
    epochs : int
        Passes over the trials in ``fit``.
    batch_size : int or None
        Trials per count update within a pass (None: all; 1: SPM's trial-by-trial).
    n_iter, tau : int, float
        Sweeps and time constant of marginal message passing (SPM: 16, 4).
    beta, alpha : float
        Prior rate of the policy precision (:math:`\gamma = 1/\beta`) and
        action precision, for acting (SPM: 1, 512).
    epistemic, novelty, update_gamma : bool
        Expected-free-energy terms and precision updates when acting
        (see :func:`~predcode.models.active_inference.run_trials`).
    action_mode : {"stochastic", "deterministic"}
    backend : {"auto", "numpy", "numba", "cupy"}
        ``auto`` resolves from the data (cupy arrays, given to ``fit`` or as
        parameters, select cupy; else numba, else numpy).
    dtype : {"float64", "float32"}
    random_state : int, Generator or None
        Seeds acting (:meth:`run`); inference and learning are deterministic.
    scheme : {"predcode", "spm"}
        ``"spm"``: SPM12's ``spm_MDP_VB_X`` for everything (the code of
        :func:`predcode.models.spm_mdp.replay_trials`, which matches SPM to 5e-15):
        :meth:`run` is ``run_trials(scheme="spm")``; ``infer``/``energy`` replay each
        trial's outcomes through SPM's agent under the current counts and return its
        end-of-trial averaged posteriors and :math:`-\ln\sum_\pi E(\pi)\,e^{-F(\pi)}`
        over the policies SPM kept (its Occam window); ``fit`` learns ``d`` trial by
        trial as SPM does (``batch_size`` None or 1). SPM's beliefs see outcomes only,
        so ``actions`` are checked but not used. It learns ``d`` only: use
        ``learn_A=False``, no ``pB``; host numpy, float64. ``"predcode"`` (default):
        predcode's batched variant (all backends, ``a``/``b``/``d`` learning), which
        differs from SPM (see ``run_trials``).
    verbose : bool
        One progress bar per ``fit``.

    Attributes
    ----------
    model_ : GenerativeModel
        The validated generative model (host arrays, the prior counts).
    a_, b_, d_ : list of arrays or None
        Learned Dirichlet counts, on the data's device (None: not learned).
    n_features_in_ : int
        Number of outcome modalities.
    history_ : dict
        Per epoch: ``energy`` (mean free energy per trial, nats), ``wall_time_s``
        and ``log_evidence_bound`` (= minus ``energy``).
    """

    ENERGY_UNIT = "nats"
    _KERNELS = ("aif_belief_step", "aif_propagate", "aif_efe")
    _RUNTIME = ("_xp", "_k", "_gm")
    _DIVERGENCE_PARAM = "lr"
    #: saved arrays that are not floating point (see Model._STATE_KINDS)
    _STATE_KINDS = {"policies": "iu"}
    _LEARNED = ("model_", "a_", "b_", "d_", "n_features_in_", "history_")

    def __init__(
        self,
        A: Any,
        B: Any,
        C: Any = None,
        D: Any = None,
        E: Any = None,
        policies: Any = None,
        T: int | None = None,
        *,
        pA: Any = None,
        pB: Any = None,
        pD: Any = None,
        learn_A: bool = True,
        lr: float = 1.0,
        epochs: int = 1,
        batch_size: int | None = None,
        n_iter: int = 16,
        tau: float = 4.0,
        beta: float = 1.0,
        alpha: float = 512.0,
        epistemic: bool = True,
        novelty: bool = True,
        update_gamma: bool = True,
        action_mode: str = "stochastic",
        backend: str = "auto",
        dtype: str = "float64",
        random_state: Any = None,
        verbose: bool = False,
        scheme: str = "predcode",
    ) -> None:
        self.A, self.B, self.C, self.D, self.E = A, B, C, D, E
        self.policies, self.T = policies, T
        self.pA, self.pB, self.pD, self.learn_A = pA, pB, pD, learn_A
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.n_iter, self.tau, self.beta, self.alpha = n_iter, tau, beta, alpha
        self.epistemic, self.novelty, self.update_gamma = epistemic, novelty, update_gamma
        self.action_mode, self.backend, self.dtype = action_mode, backend, dtype
        self.random_state, self.verbose = random_state, verbose
        self.scheme = scheme

    # -- parameters ---------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters; arrays as nested tuples (comparable, JSON-safe)."""
        params = super().get_params(deep)
        for name in _LIST_PARAMS:
            params[name] = _freeze(params[name], True)
        for name in _ARRAY_PARAMS:
            params[name] = _freeze(params[name], False)
        return params

    def __repr__(self) -> str:
        def shape(v: Any) -> str:
            return "x".join(map(str, np.shape(to_numpy(v))))

        arrays = ", ".join(f"{n}=[{', '.join(shape(v) for v in _flat(getattr(self, n)))}]"
                           for n in ("A", "B") if getattr(self, n) is not None)
        return f"Agent({arrays}, T={self.T!r}, lr={self.lr!r}, backend={self.backend!r})"

    def _validate(self) -> None:
        owner = "Agent"
        check_param(self.lr, "lr", owner, low=0, low_inclusive=True)
        for name in ("tau", "beta", "alpha"):
            check_param(getattr(self, name), name, owner, low=0)
        check_int(self.epochs, "epochs", owner)
        check_int(self.n_iter, "n_iter", owner)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", owner)
        check_choice(self.action_mode, "action_mode", ("stochastic", "deterministic"), owner)
        check_choice(self.dtype, "dtype", ("float32", "float64"), owner)
        for name in ("learn_A", "epistemic", "novelty", "update_gamma", "verbose"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValidationError(f"Agent.{name}: expected True or False, got "
                                      f"{getattr(self, name)!r}.")
        check_random_state(self.random_state, owner=owner)
        check_choice(self.scheme, "scheme", ("predcode", "spm"), owner)
        if self.scheme == "spm":
            if self.learn_A or self.pB is not None:
                raise ValidationError("Agent.scheme: scheme='spm' learns d only (as replayed "
                                      "against SPM); set learn_A=False and pB=None, or use "
                                      "scheme='predcode'.")
            if self.backend not in ("auto", "numpy") or self.dtype != "float64":
                raise ValidationError(f"Agent.scheme: scheme='spm' runs on the host in float64, "
                                      f"got backend={self.backend!r}, dtype={self.dtype!r}; use "
                                      "backend='numpy' and dtype='float64'.")
            if self.batch_size not in (None, 1):
                raise ValidationError(f"Agent.batch_size: scheme='spm' learns trial by trial; "
                                      f"use None or 1, got {self.batch_size!r}.")

    def _spec(self) -> GenerativeModel:
        """The generative model of the parameters (validated; prior counts)."""
        a = (self.pA if self.pA is not None else self.A) if self.learn_A else None
        return make_model(self.A, self.B, self.C, self.D, self.E, self.policies, self.T,
                          a=a, b=self.pB, d=self.pD)

    def _param_arrays(self) -> list[Any]:
        return [x for n in (*_LIST_PARAMS, *_ARRAY_PARAMS) for x in _flat(getattr(self, n))]

    # -- data -----------------------------------------------------------------
    def _check_data(self, O: Any, actions: Any, method: str) -> tuple[Any, Any]:
        """Validated outcome (N, T, M) and action (N, T - 1, F) int arrays on O's device."""
        m = self.model_
        owner = f"Agent.{method}"
        T, M, F = m.T, len(m.A), len(m.B)
        if not hasattr(O, "shape") or not hasattr(O, "dtype"):
            O = np.asarray(O)
        xp = array_namespace(O)
        if O.ndim == 2 and M == 1:
            O = O[:, :, None]
        if O.ndim != 3 or O.shape[1:] != (T, M):
            want = (f"(n_trials, {T}) or (n_trials, {T}, 1)" if M == 1
                    else f"(n_trials, {T}, {M})")
            one = tuple(O.shape) in ((T,), (T, M)) if M == 1 else tuple(O.shape) == (T, M)
            hint = f"; for one trial use O.reshape(1, {T}, {M})" if one else ""
            raise ValidationError(f"{owner}: O must be outcomes of shape {want} (one per "
                                  f"time step and modality), got shape {tuple(O.shape)}{hint}.")
        O = self._as_ints(O, xp, owner, "O")
        for k, n in enumerate(m.n_outcomes):
            lo, hi = int(O[..., k].min()), int(O[..., k].max())
            if lo < 0 or hi >= n:
                raise ValidationError(f"{owner}: O[..., {k}] must lie in 0..{n - 1} (outcomes "
                                      f"of modality {k}), got values in {lo}..{hi}.")
        if actions is None:
            if self.pB is not None and any(u > 1 for u in m.n_actions):
                raise ValidationError(f"{owner}: learning B (pB is set) needs the actions; "
                                      f"call {method}(O, actions).")
            return O, None
        acts = actions if hasattr(actions, "shape") else np.asarray(actions)
        if array_namespace(acts) is not xp:
            raise ValidationError(f"{owner}: actions must be on the same device as O.")
        if acts.ndim == 2 and F == 1:
            acts = acts[:, :, None]
        if acts.ndim != 3 or acts.shape != (O.shape[0], T - 1, F):
            raise ValidationError(f"{owner}: actions must have shape ({O.shape[0]}, {T - 1}, "
                                  f"{F}) (one per move and factor), got {tuple(acts.shape)}.")
        acts = self._as_ints(acts, xp, owner, "actions")
        for f, nu in enumerate(m.n_actions):
            if acts[..., f].size and (int(acts[..., f].min()) < 0
                                      or int(acts[..., f].max()) >= nu):
                raise ValidationError(f"{owner}: actions[..., {f}] must lie in 0..{nu - 1} "
                                      f"(B[{f}] has {nu} actions).")
        return O, acts

    @staticmethod
    def _as_ints(X: Any, xp: Any, owner: str, name: str) -> Any:
        if X.dtype.kind in "iu":
            return X.astype(xp.int64)
        if X.dtype.kind != "f":
            raise ValidationError(f"{owner}: {name} must be integers, got dtype {X.dtype}.")
        if not bool(xp.all(xp.isfinite(X))):
            raise ValidationError(f"{owner}: {name} contains NaN or infinite values.")
        if not bool(xp.all(X == xp.round(X))):
            raise ValidationError(f"{owner}: {name} must be whole numbers (outcome indices).")
        return X.astype(xp.int64)

    # -- protocol -------------------------------------------------------------
    def fit(self, O: Any, actions: Any = None) -> Agent:
        """Learn the Dirichlet counts from trials ``O`` (and ``actions``): ``epochs`` passes."""
        return super().fit(O, actions)

    def partial_fit(self, O: Any, actions: Any = None) -> Agent:
        """One more pass of learning over ``O`` (the first call initialises)."""
        return super().partial_fit(O, actions)

    def _init_fit(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        self._validate()
        spec = self._spec()
        arrays = [X, *(a for a in [y] if hasattr(a, "shape")), *self._param_arrays()]
        self._setup_runtime(*[a for a in arrays if hasattr(a, "shape")])
        self.model_ = spec
        self._on_runtime()
        data = self._check_data(X, y, "fit")
        xp = self._xp
        self.a_ = None if spec.a is None else [xp.asarray(x, dtype=self.dtype) for x in spec.a]
        self.b_ = None if spec.b is None else [xp.asarray(x, dtype=self.dtype) for x in spec.b]
        self.d_ = None if spec.d is None else [xp.asarray(x, dtype=self.dtype) for x in spec.d]
        self.n_features_in_ = len(spec.A)
        return data

    def _fit_data(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self._check_data(X, y, "partial_fit")

    def _on_runtime(self) -> None:
        if "model_" not in self.__dict__:
            return
        xp = self._xp
        m = self.model_

        def dev(t: Any) -> Any:
            return None if t is None else tuple(xp.asarray(x) for x in t)

        # the constant arrays go to the device once, here
        self._gm = dataclasses.replace(
            m, A=dev(m.A), B=dev(m.B), C=dev(m.C), D=dev(m.D), E=xp.asarray(m.E),
            policies=xp.asarray(m.policies)) if xp is not np else m

    def _to_runtime_device(self) -> None:
        xp = self._xp
        for key in ("a_", "b_", "d_"):
            v = getattr(self, key, None)
            if v is not None:
                setattr(self, key, [xp.asarray(x) for x in v])

    def _counts(self) -> dict[str, Any]:
        return {"a": self.a_, "b": self.b_, "d": self.d_}

    def _spm_agent(self) -> SpmAgent:
        """SPM's agent under the current counts (``scheme="spm"``)."""
        d = None if self.d_ is None else tuple(to_numpy(x).astype(np.float64) for x in self.d_)
        m = dataclasses.replace(self.model_, d=d)
        return SpmAgent(m, tau=self.tau, beta=self.beta, alpha=self.alpha, n_iter=self.n_iter,
                        novelty=self.novelty, epistemic=self.epistemic,
                        fixed_gamma=not self.update_gamma, eta=float(self.lr),
                        owner="Agent")

    def _spm_trials(self, O: Any, learn: bool) -> tuple[list[Any], Any]:
        """SPM's end-of-trial posteriors (per factor, (N, T, S_f)) and energies (N,),
        trial after trial; ``learn``: accumulate ``d`` after each trial (SPM's learning)."""
        agent = self._spm_agent()
        agent.learn = learn
        On = to_numpy(O)
        X: list[list[np.ndarray]] = [[] for _ in self.model_.B]
        energy = np.zeros(On.shape[0])
        lnE = agent.arr.lnE
        for n in range(On.shape[0]):
            agent.begin_trial()
            for t in range(self.model_.T):
                agent.step(t, On[n, t])
            keep = agent.plaus
            v = lnE[keep] + agent.F[keep, -1]  # SPM's F is -F(pi)
            energy[n] = -(v.max() + np.log(np.exp(v - v.max()).sum()))
            rec = agent.end_trial()
            for f, x in enumerate(rec["X"]):
                X[f].append(x.T)
        if learn and agent.d is not None:
            self.d_ = [self._xp.asarray(x) for x in agent.d]
        return [self._xp.asarray(np.stack(x)) for x in X], self._xp.asarray(energy)

    def _posterior(self, O: Any, acts: Any) -> tuple[list[Any], Any, dict[str, Any]]:
        """BMA state posteriors (per factor, (N, T, S_f)), free energies (N,), batched arrays."""
        if self.scheme == "spm":
            X, energy = self._spm_trials(O, learn=False)
            return X, energy, {}
        xp, m = self._xp, self._gm
        N, T, P = O.shape[0], m.T, m.n_policies
        st = _batched(m, N, xp, self.dtype, counts=self._counts())
        qs = [xp.full((N, P, T, s), 1.0 / s, dtype=self.dtype) for s in m.n_states]
        qs, Fpi = marginal_message_passing(m, st, O, T - 1, qs, n_iter=self.n_iter,
                                           tau=self.tau, backend=self.backend_)
        lnE = xp.log(xp.asarray(m.E, dtype=self.dtype) + LOG_FLOOR)
        v = lnE[None, :] - Fpi
        if acts is not None and T > 1:
            V = st["V"]
            mask = xp.all(V[None] == acts[:, None], axis=(-1, -2))
            ok = xp.any(mask, axis=1)
            if not bool(xp.all(ok)):
                i = int(xp.argmin(ok.astype(xp.int64)))
                raise ValidationError(f"Agent: actions[{i}] is not one of the agent's "
                                      f"policies; give policies that include it.")
            v = xp.where(mask, v, -xp.inf)
        vmax = xp.max(v, axis=1, keepdims=True)
        w = xp.exp(v - vmax)
        Z = xp.sum(w, axis=1, keepdims=True)
        q_pi = w / Z
        energy = -(vmax[:, 0] + xp.log(Z[:, 0]))
        X = [xp.sum(q_pi[:, :, None, None] * q, axis=1) for q in qs]
        return X, energy, st

    def _epoch(self, data: Any, epoch: int, n_epochs: int) -> dict[str, float]:
        O, acts = data
        xp, m = self._xp, self._gm
        n = O.shape[0]
        if self.scheme == "spm":
            e = float(self._xp.sum(self._spm_trials(O, learn=True)[1])) / n
            return {"energy": e, "log_evidence_bound": -e}
        bs = n if self.batch_size is None else self.batch_size
        total = xp.zeros((), dtype=xp.float64)
        for s in range(0, n, bs):
            Ob = O[s:s + bs]
            ab = None if acts is None else acts[s:s + bs]
            X, energy, st = self._posterior(Ob, ab)
            total = total + xp.sum(energy)
            ab_learn = ab if ab is not None else xp.zeros(
                (Ob.shape[0], m.T - 1, len(m.B)), dtype=xp.int64)
            learn(m, st, Ob, ab_learn, X, eta=float(self.lr))
            for key, attr in (("a", "a_"), ("b", "b_"), ("d", "d_")):
                old = getattr(self, attr)
                if old is not None:
                    setattr(self, attr, [c + xp.sum(new - c[None], axis=0)
                                         for c, new in zip(old, st[key], strict=True)])
        e = float(total) / n
        return {"energy": e, "log_evidence_bound": -e}

    def infer(self, O: Any, actions: Any = None, *, split: bool = False) -> Any:
        r"""Posterior over hidden states of every trial and time step.

        Returns
        -------
        array (n_trials, T, sum S_f)
            The factor marginals :math:`\bar s^f_\tau` side by side (factor 0
            first), on ``O``'s device; with ``split=True`` a list of
            (n_trials, T, S_f), one per factor. Each marginal sums to one.
        """
        self._check_fitted("infer")
        O, acts = self._check_data(O, actions, "infer")
        X, _, _ = self._posterior(O, acts)
        return X if split else self._xp.concatenate(X, axis=-1)

    def energy(self, O: Any, actions: Any = None) -> Any:
        """Variational free energy of each trial (n_trials,), in nats, on ``O``'s device."""
        self._check_fitted("energy")
        O, acts = self._check_data(O, actions, "energy")
        return self._posterior(O, acts)[1]

    def score(self, O: Any, actions: Any = None) -> float:
        """Minus the mean free energy per trial (a lower bound on the mean log evidence)."""
        self._check_fitted("score")
        return -float(self._xp.mean(self.energy(O, actions)))

    # -- acting ----------------------------------------------------------------
    def generative_model(self) -> GenerativeModel:
        """The agent's generative model now: the learned counts when fitted (host arrays)."""
        if not self._is_fitted():
            self._validate()
            return self._spec()
        m = self.model_

        def host(v: Any) -> Any:
            return None if v is None else tuple(to_numpy(x).astype(np.float64) for x in v)

        return make_model(m.A, m.B, m.C, m.D, m.E, m.policies, m.T,
                          a=host(self.a_), b=host(self.b_), d=host(self.d_))

    def run(self, process: Any, n_trials: int = 1, *, n_agents: int = 1,
            random_state: Any = None) -> dict[str, Any]:
        """Act in ``process`` for ``n_trials`` trials (``n_agents`` copies that each learn).

        :func:`~predcode.models.active_inference.run_trials` with the agent's
        generative model (learned counts included) and parameters
        (``lr`` as ``eta``). The agent itself is not changed: the records hold
        each copy's final counts. ``random_state`` defaults to the agent's.
        """
        model = self.generative_model()
        backend = self.backend_ if self._is_fitted() else self.backend
        if backend == "auto" and any(is_cupy(x) for x in self._param_arrays()):
            backend = "cupy"
        if self.scheme == "spm":
            backend = "numpy"
        rs = self.random_state if random_state is None else random_state
        return run_trials(model, process, n_agents=n_agents, n_trials=n_trials,
                          beta=self.beta, alpha=self.alpha, tau=self.tau, n_iter=self.n_iter,
                          eta=self.lr, epistemic=self.epistemic, novelty=self.novelty,
                          update_gamma=self.update_gamma, action_mode=self.action_mode,
                          backend=backend, dtype=self.dtype, random_state=rs,
                          scheme=self.scheme)

    # -- persistence -------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        m = self.model_
        out: dict[str, Any] = {}
        for key, arrs in (("B", m.B), ("C", m.C), ("D", m.D)):
            for i, x in enumerate(arrs):
                out[f"{key}_{i}"] = x
        out["E"], out["policies"] = m.E, m.policies
        for i, x in enumerate(m.A):
            out[f"A_{i}"] = x
        for key, arrs in (("a", self.a_), ("b", self.b_), ("d", self.d_)):
            for i, x in enumerate(arrs or ()):
                out[f"{key}_{i}"] = x
        return out

    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        m = self._spec()
        out: dict[str, tuple[int, ...]] = {}
        for key, arrs in (("A", m.A), ("B", m.B), ("C", m.C), ("D", m.D),
                          ("a", m.a), ("b", m.b), ("d", m.d)):
            for i, x in enumerate(arrs or ()):
                out[f"{key}_{i}"] = tuple(x.shape)
        out["E"], out["policies"] = tuple(m.E.shape), tuple(m.policies.shape)
        return out

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self._validate()
        self.model_ = self._spec()

        def counts(key: str, like: Any) -> Any:
            if like is None:
                return None
            return [state[f"{key}_{i}"].astype(self.dtype) for i in range(len(like))]

        self.a_ = counts("a", self.model_.a)
        self.b_ = counts("b", self.model_.b)
        self.d_ = counts("d", self.model_.d)
        self.n_features_in_ = len(self.model_.A)
