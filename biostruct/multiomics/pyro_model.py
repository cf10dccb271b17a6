"""The generative model of one component written as a Pyro model/guide pair.

Training uses the equivalent plain-torch ELBO in :mod:`biostruct.multiomics.module` (same
distribution objects, same networks): that makes the annealing schedule (alpha ramp, KL crossfade,
frozen ancestors) simple to express and avoids Pyro's per-step tracing overhead, which
``benchmarks/multiomics_snareseq.py`` measures with :func:`svi_step_seconds`. This module keeps the
model available to Pyro users (``pyro.infer.SVI`` with ``Trace_ELBO``), and its ELBO agrees with the
plain-torch one in expectation (checked in the tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from biostruct.multiomics.module import DAGModule

__all__ = ["component_model_guide", "svi_step_seconds"]


def component_model_guide(
    module: DAGModule, component: str
) -> tuple[Callable[..., None], Callable[..., None]]:
    """Pyro ``model(x, batch)`` and ``guide(x, batch)`` of one component.

    Ancestors enter through their posterior means (they are frozen while the component trains).
    The prior on z is the component's mixture, a ``MixtureSameFamily`` whose ``log_prob``
    marginalises the cluster exactly.
    """
    comp = module.components[component]
    anc = module.graph.ancestors(component)

    def _parents(x: Mapping[str, torch.Tensor], batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {p: module.components[p].encode(x, batch)[0] for p in anc}

    def model(x: Mapping[str, torch.Tensor], batch: torch.Tensor) -> None:
        pyro.module(f"dagvae_{component}", comp)
        z_par = _parents(x, batch)
        with pyro.plate("cells", batch.shape[0]):
            z = pyro.sample("z", comp.prior.to_pyro())
            z_hat = module.propagate({**z_par, component: z})[component]
            # feature links and sparse-decoder loadings, as in the plain-torch loss
            with module.linked(component, x, z_hat):
                for m in comp.modalities:
                    lik = comp.likelihoods[m]
                    h = comp.decode_hidden(m, z_hat, batch)
                    d = lik.distribution(h, lik.auxiliary(x[m])).to_event(1)
                    pyro.sample(f"x_{m}", d, obs=lik.target(x[m]))
            # decode_ancestors: z_hat also generates (some of) the ancestors' modalities
            for m in comp.ancestor_modalities:
                lik = comp.ancestor_likelihoods[m]
                h = comp.decode_ancestor_hidden(m, z_hat, batch)
                d = lik.distribution(h, lik.auxiliary(x[m])).to_event(1)
                with poutine.scale(scale=module.ancestor_scale(component, m)):
                    pyro.sample(f"x_{m}_from_{component}", d, obs=lik.target(x[m]))

    def guide(x: Mapping[str, torch.Tensor], batch: torch.Tensor) -> None:
        pyro.module(f"dagvae_{component}", comp)
        with pyro.plate("cells", batch.shape[0]):
            mu, logvar = comp.encode(x, batch)
            pyro.sample("z", dist.Normal(mu, torch.exp(0.5 * logvar)).to_event(1))

    return model, guide


def svi_step_seconds(
    module: DAGModule,
    component: str,
    x: Mapping[str, torch.Tensor],
    batch: torch.Tensor,
    n_steps: int = 10,
    lr: float = 1e-3,
) -> dict[str, float]:
    """Seconds per optimisation step: Pyro SVI (Trace_ELBO) vs the plain-torch loss.

    Both run the same networks on the same minibatch; the difference is Pyro's tracing and its
    generic distribution code.
    """
    model, guide = component_model_guide(module, component)
    pyro.clear_param_store()
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": lr}), pyro.infer.Trace_ELBO())
    svi.step(x, batch)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        svi.step(x, batch)
    t_pyro = (time.perf_counter() - t0) / n_steps
    params = list(module.components[component].parameters())
    opt = torch.optim.Adam(params, lr=lr)
    t0 = time.perf_counter()
    for _ in range(n_steps + 1):
        if _ == 1:
            t0 = time.perf_counter()
        terms = module.component_loss(component, x, batch)
        loss = (-terms.recon + terms.kl_gmm).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t_plain = (time.perf_counter() - t0) / n_steps
    return {"pyro_svi_step_s": t_pyro, "plain_torch_step_s": t_plain, "ratio": t_pyro / t_plain}
