"""Log-likelihoods against scipy reference values; mixture prior against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from biostruct.multiomics.likelihoods import (
    _DENSE_SHARE,
    BernoulliLikelihood,
    GaussianLikelihood,
    NBLikelihood,
    PoissonLikelihood,
    ProteinLikelihood,
    ZINBLikelihood,
    nb_log_prob,
    nb_logits,
    zinb_log_prob,
)
from biostruct.multiomics.prior import MixturePrior, standard_normal_kl

torch.manual_seed(0)
N, G, H = 6, 9, 4


def _setup(cls):
    lik = cls(G, H)
    with torch.no_grad():
        for p in lik.parameters():
            p.normal_(0, 0.5)
    h = torch.randn(N, H)
    return lik, h


def _counts(seed=0):
    return torch.as_tensor(np.random.default_rng(seed).poisson(2.0, (N, G)), dtype=torch.float32)


def test_nb_matches_scipy():
    lik, h = _setup(NBLikelihood)
    x = _counts()
    lib = lik.auxiliary(x)
    ours = lik.log_likelihood(x, h, lib).detach().numpy()
    mu = (lib * torch.softmax(lik.scale_head(h), -1)).detach().numpy()
    theta = lik.theta().detach().numpy()
    ref = stats.nbinom.logpmf(x.numpy(), theta, theta / (theta + mu)).sum(1)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)
    # the Pyro object agrees with the fast path and has the scVI mean
    d = lik.distribution(h, lib)
    np.testing.assert_allclose(d.log_prob(x).sum(1).detach().numpy(), ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(d.mean.detach().numpy(), mu, rtol=1e-4)


@pytest.mark.parametrize("share", [0.3, 1.0])
def test_nb_log_prob_matches_pyro_values_and_gradients(share):
    # mostly zeros, as count matrices are: the lgamma terms run on the non-zero entries only;
    # mostly non-zero, as ADT counts are: they run over the whole tensor
    x = _counts(3) * (torch.rand(N, G, generator=torch.Generator().manual_seed(3)) < share)
    x = x if share < 1.0 else x + 1.0
    x[0] = 0.0  # an all-zero row
    assert ((x > 0).double().mean() >= _DENSE_SHARE) == (share == 1.0)  # both paths are tested
    mu = torch.rand(N, G, dtype=torch.float64).mul(20).add(0.01).requires_grad_(True)
    theta = torch.rand(G, dtype=torch.float64).mul(5).add(0.05).requires_grad_(True)
    ours = nb_log_prob(x.double(), mu, theta)
    ref = dist.NegativeBinomial(theta.expand_as(mu), logits=nb_logits(mu, theta)).log_prob(
        x.double()
    )
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)
    g_ours = torch.autograd.grad(ours.sum(), (mu, theta))
    g_ref = torch.autograd.grad(ref.sum(), (mu, theta))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # an all-zero batch takes the dense terms only
    zero = torch.zeros(N, G, dtype=torch.float64)
    torch.testing.assert_close(
        nb_log_prob(zero, mu, theta),
        dist.NegativeBinomial(theta.expand_as(mu), logits=nb_logits(mu, theta)).log_prob(zero),
    )


def test_zinb_matches_scipy_mixture():
    lik, h = _setup(ZINBLikelihood)
    x = _counts(1)
    lib = lik.auxiliary(x)
    ours = lik.log_likelihood(x, h, lib).detach().numpy()
    mu = (lib * torch.softmax(lik.scale_head(h), -1)).detach().numpy()
    theta = lik.theta().detach().numpy()
    pi = torch.sigmoid(lik.gate_head(h)).detach().numpy()
    nb = stats.nbinom.pmf(x.numpy(), theta, theta / (theta + mu))
    ref = np.log(pi * (x.numpy() == 0) + (1 - pi) * nb).sum(1)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)
    pyro_lp = lik.distribution(h, lib).log_prob(x).sum(1).detach().numpy()
    np.testing.assert_allclose(pyro_lp, ref, rtol=1e-4, atol=1e-3)


def test_zinb_extreme_gates_stay_finite():
    x = torch.tensor([[0.0, 3.0, 0.0]])
    mu = torch.tensor([[1e-6, 50.0, 200.0]])
    theta = torch.tensor([0.01, 100.0, 1.0])
    g = torch.tensor([[30.0, -30.0, 0.0]])
    lp = zinb_log_prob(x, mu, theta, g)
    ref = dist.ZeroInflatedNegativeBinomial(
        total_count=theta.expand_as(mu), logits=nb_logits(mu, theta), gate_logits=g
    ).log_prob(x)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, ref, rtol=1e-4, atol=1e-4)


def _sparse_counts(seed: int) -> torch.Tensor:
    x = _counts(seed) * (torch.rand(N, G, generator=torch.Generator().manual_seed(seed)) < 0.3)
    x[0] = 0.0
    return x.double()


def test_zinb_closed_form_gradients_match_pyro_autograd():
    x = _sparse_counts(5)
    mu = torch.rand(N, G, dtype=torch.float64).mul(20).add(0.01).requires_grad_(True)
    theta = torch.rand(G, dtype=torch.float64).mul(5).add(0.05).requires_grad_(True)
    gate = torch.randn(N, G, dtype=torch.float64).mul(3).requires_grad_(True)
    ours = zinb_log_prob(x, mu, theta, gate)
    ref = dist.ZeroInflatedNegativeBinomial(
        total_count=theta.expand_as(mu), logits=nb_logits(mu, theta), gate_logits=gate
    ).log_prob(x)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)
    w = torch.randn(N, G, dtype=torch.float64)  # a non-uniform upstream gradient
    g_ours = torch.autograd.grad((ours * w).sum(), (mu, theta, gate))
    g_ref = torch.autograd.grad((ref * w).sum(), (mu, theta, gate))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # without gradients the same values (the no-grad path skips the derivatives)
    with torch.no_grad():
        torch.testing.assert_close(zinb_log_prob(x, mu, theta, gate), ref.detach())


def test_registered_nonzeros_give_the_same_values_and_gradients():
    from biostruct.multiomics.likelihoods import register_nonzero

    x = _sparse_counts(6)
    registered = x.clone()
    rows, cols = torch.nonzero(x, as_tuple=True)
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    register_nonzero(registered, rows[perm], cols[perm])  # any order (CSR need not be sorted)
    mu = torch.rand(N, G, dtype=torch.float64).add(0.1).requires_grad_(True)
    theta = torch.rand(G, dtype=torch.float64).add(0.1).requires_grad_(True)
    a = nb_log_prob(x, mu, theta)
    b = nb_log_prob(registered, mu, theta)
    torch.testing.assert_close(a, b)
    grads_a = torch.autograd.grad(a.sum(), (mu, theta))
    grads_b = torch.autograd.grad(b.sum(), (mu, theta))
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb)


def test_count_log_probs_broadcast_as_pyro_does():
    x = _sparse_counts(9)
    theta = torch.rand(G, dtype=torch.float64).add(0.2).requires_grad_(True)
    mu_row = torch.rand(G, dtype=torch.float64).mul(5).add(0.1).requires_grad_(True)
    gate = torch.randn(N, G, dtype=torch.float64).requires_grad_(True)
    for xi, mu, g in ((x, mu_row, gate), (x[1], mu_row.expand(N, G) * 1.0, gate)):
        ours = zinb_log_prob(xi, mu, theta, g)
        ref = dist.ZeroInflatedNegativeBinomial(
            total_count=theta, logits=nb_logits(mu, theta), gate_logits=g
        ).log_prob(xi)
        torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)
        g_ours = torch.autograd.grad(ours.sum(), (mu_row, theta, g), retain_graph=True)
        g_ref = torch.autograd.grad(ref.sum(), (mu_row, theta, g))
        for a, b in zip(g_ours, g_ref):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    nb = nb_log_prob(x, mu_row, theta)
    ref = dist.NegativeBinomial(theta, logits=nb_logits(mu_row, theta)).log_prob(x)
    torch.testing.assert_close(nb, ref, rtol=1e-7, atol=1e-7)
    g_ours = torch.autograd.grad(nb.sum(), (mu_row, theta))
    g_ref = torch.autograd.grad(ref.sum(), (mu_row, theta))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_an_in_place_change_invalidates_the_registered_nonzeros():
    from biostruct.multiomics.likelihoods import register_nonzero

    x = _sparse_counts(10)
    rows, cols = torch.nonzero(x, as_tuple=True)
    register_nonzero(x, rows, cols)
    lik = BernoulliLikelihood(G, H)
    assert torch.equal(lik.target(x), (x > 0).double())
    x[1:] = 0.0  # reused as a buffer: the stored non-zeros and binarised copy are stale
    x[0, 0] = 2.0
    assert torch.equal(lik.target(x), (x > 0).double())
    mu = torch.rand(N, G, dtype=torch.float64).add(0.1)
    theta = torch.rand(G, dtype=torch.float64).add(0.1)
    torch.testing.assert_close(nb_log_prob(x, mu, theta), nb_log_prob(x.clone(), mu, theta))


def test_minibatch_registers_the_csr_nonzeros():
    import scipy.sparse as sp

    from biostruct.multiomics.data import MultiomeData
    from biostruct.multiomics.likelihoods import _NONZERO, _cached

    dense = _sparse_counts(7).float().numpy()
    m = sp.csr_matrix(dense)
    m.data[0] = 0.0  # an explicitly stored zero is not a non-zero
    data = MultiomeData(
        {"rna": m},
        None,
        None,
        np.zeros(N, dtype=np.int64),
        ["b"],
        None,  # type: ignore[arg-type]
    )
    b = data.minibatch(np.array([1, 3, 4]), torch.device("cpu"), ["rna"])
    rows, cols = _cached(_NONZERO, b["rna"])
    got = sorted(zip(rows.tolist(), cols.tolist()))
    assert got == sorted(map(tuple, torch.nonzero(b["rna"]).tolist()))
    # a Bernoulli modality's binarised batch is built from them, once per batch
    binary = BernoulliLikelihood(G, H).encoder_input(b["rna"])
    torch.testing.assert_close(binary, (b["rna"] > 0).float())
    assert BernoulliLikelihood(G, H).target(b["rna"]) is binary


def test_bernoulli_sparse_path_matches_the_dense_pmf_values_and_gradients():
    lik, h = _setup(BernoulliLikelihood)
    lik = lik.double()
    h = h.double().requires_grad_(True)
    with torch.no_grad():
        lik.log_scale.fill_(0.3)
    x = _sparse_counts(8)  # row 0 all closed
    aux = lik.auxiliary(x)
    ours = lik.log_likelihood(x, h, aux)
    lam = torch.exp(torch.log_softmax(lik.logit_head(h), -1) + aux + lik.log_scale)
    ref = torch.distributions.Bernoulli(probs=-torch.expm1(-lam)).log_prob(lik.target(x)).sum(-1)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    params = [h, *lik.parameters()]
    weights = torch.arange(N, dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * weights).sum(), params, retain_graph=True)
    g_ref = torch.autograd.grad((ref * weights).sum(), params)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_poisson_matches_scipy():
    lik, h = _setup(PoissonLikelihood)
    x = _counts(2)
    lib = lik.auxiliary(x)
    rate = (lib * torch.softmax(lik.scale_head(h), -1)).detach().numpy()
    ref = stats.poisson.logpmf(x.numpy(), rate).sum(1)
    np.testing.assert_allclose(lik.log_likelihood(x, h, lib).detach().numpy(), ref, rtol=1e-4)


def test_bernoulli_binarises_and_matches_scipy():
    lik, h = _setup(BernoulliLikelihood)
    x = _counts(3)
    aux = lik.auxiliary(x)
    depth = (x > 0).sum(1, keepdim=True).float()
    torch.testing.assert_close(aux, depth.log())
    rho = torch.softmax(lik.logit_head(h), -1)
    p = (1 - torch.exp(-torch.exp(lik.log_scale) * depth * rho)).detach().numpy()
    ref = stats.bernoulli.logpmf((x.numpy() > 0).astype(int), p).sum(1)
    np.testing.assert_allclose(lik.log_likelihood(x, h, aux).detach().numpy(), ref, rtol=1e-4)
    d = lik.distribution(h, aux)
    np.testing.assert_allclose(d.log_prob(lik.target(x)).sum(1).detach().numpy(), ref, rtol=1e-4)
    # the observed depth is an offset: at the same latent state a cell with more open peaks
    # gets a higher p for every peak
    h1 = h[:1].expand(2, H)
    p2 = lik.distribution(h1, torch.tensor([[np.log(2.0)], [np.log(8.0)]])).mean
    assert (p2[1] > p2[0]).all()
    # normalized_mean reads the mean depth of the training batches seen
    lik.train()
    lik.auxiliary(x)
    torch.testing.assert_close(lik.ref_depth, depth.mean())
    lik.eval()
    lik.auxiliary(torch.ones(N, G))  # evaluation batches leave it alone
    torch.testing.assert_close(lik.ref_depth, depth.mean())
    torch.testing.assert_close(
        lik.normalized_mean(h), lik.distribution(h, depth.mean().log().expand(N, 1)).mean
    )


def test_gaussian_matches_scipy():
    lik, h = _setup(GaussianLikelihood)
    x = torch.randn(N, G)
    loc = lik.loc_head(h).detach().numpy()
    sd = (torch.nn.functional.softplus(lik.log_scale) + 1e-4).detach().numpy()
    ref = stats.norm.logpdf(x.numpy(), loc, sd).sum(1)
    np.testing.assert_allclose(lik.log_likelihood(x, h, None).detach().numpy(), ref, rtol=1e-4)


def test_protein_mixture_matches_scipy():
    lik, h = _setup(ProteinLikelihood)
    x = _counts(4) * 5
    back = torch.exp(lik.log_background + lik.bg_head(h)).detach().numpy()
    fore = back * (1 + torch.nn.functional.softplus(lik.fg_head(h)).detach().numpy())
    pb = torch.sigmoid(lik.mix_head(h)).detach().numpy()
    theta = (torch.nn.functional.softplus(lik.log_theta) + 1e-4).detach().numpy()
    xn = x.numpy()
    lb = stats.nbinom.logpmf(xn, theta, theta / (theta + back))
    lf = stats.nbinom.logpmf(xn, theta, theta / (theta + fore))
    ref = logsumexp(np.stack([np.log(pb) + lb, np.log1p(-pb) + lf]), axis=0).sum(1)
    np.testing.assert_allclose(lik.log_likelihood(x, h, None).detach().numpy(), ref, rtol=1e-4)


def test_protein_depth_scales_background():
    lik, h = _setup(ProteinLikelihood)
    x = _counts(4) * 5
    with torch.no_grad():
        lik.bg_head.weight.normal_(0, 0.3)
    aux = lik.auxiliary(x)
    ref = lik.distribution(h, aux).log_prob(x).sum(-1)
    np.testing.assert_allclose(
        lik.log_likelihood(x, h, aux).detach().numpy(), ref.detach().numpy(), rtol=1e-4
    )
    # twice the depth: every background (and foreground) mean doubles
    b1, f1, _ = lik._parts(h, aux)
    b2, f2, _ = lik._parts(h, aux + np.log(2.0))
    np.testing.assert_allclose((b2 / b1).detach().numpy(), 2.0, rtol=1e-5)
    np.testing.assert_allclose((f2 / f1).detach().numpy(), 2.0, rtol=1e-5)


def _mixture(seed=0, k=3, d=2):
    prior = MixturePrior(k, d, seed=seed)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.3, -0.5, 1.0][:k]))
        prior.raw_scale.normal_(0, 0.5)
    return prior


def test_mixture_log_prob_matches_scipy():
    prior = _mixture()
    z = torch.randn(7, 2)
    w = torch.softmax(prior.logits, -1).detach().numpy()
    mu = prior.loc.detach().numpy()
    sd = prior.scale().detach().numpy()
    comp = np.stack(
        [np.log(w[k]) + stats.norm.logpdf(z.numpy(), mu[k], sd[k]).sum(1) for k in range(3)]
    )
    ref = logsumexp(comp, axis=0)
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), ref, rtol=1e-5)
    np.testing.assert_allclose(prior.to_pyro().log_prob(z).detach().numpy(), ref, rtol=1e-5)
    r = prior.responsibilities(z).detach().numpy()
    np.testing.assert_allclose(r.sum(1), 1.0, rtol=1e-6)


def test_mixture_log_prob_gradients_match_pyro():
    """The written-out component densities give Pyro's values and gradients, also for a
    leading sample axis (z of shape (s, n, d))."""
    z = torch.randn(4, 7, 2)
    state = _mixture(2).state_dict()
    grads = []
    for use_pyro in (False, True):
        prior = MixturePrior(3, 2)
        prior.load_state_dict(state)
        zz = z.clone().requires_grad_(True)
        lp = prior.to_pyro().log_prob(zz) if use_pyro else prior.log_prob(zz)
        (lp * torch.linspace(0.5, 2.0, 7)).sum().backward()
        grads.append([zz.grad] + [p.grad for p in (prior.logits, prior.loc, prior.raw_scale)])
        grads[-1].append(lp.detach())
    for ours, ref in zip(*grads):
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_mixture_kl_matches_independent_monte_carlo():
    prior = _mixture(1)
    mu = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    logvar = torch.tensor([[-1.0, 0.2], [0.0, -0.5]])
    torch.manual_seed(1)
    ours = prior.kl(mu, logvar, n_samples=40000).detach().numpy()
    # independent estimate with numpy/scipy: E_q[log q(z) - log p(z)]
    rng = np.random.default_rng(2)
    w = torch.softmax(prior.logits, -1).detach().numpy()
    pm, ps = prior.loc.detach().numpy(), prior.scale().detach().numpy()
    for i in range(2):
        m, s = mu[i].numpy(), np.exp(0.5 * logvar[i].numpy())
        z = m + s * rng.standard_normal((40000, 2))
        lq = stats.norm.logpdf(z, m, s).sum(1)
        lp = logsumexp(
            np.stack([np.log(w[k]) + stats.norm.logpdf(z, pm[k], ps[k]).sum(1) for k in range(3)]),
            axis=0,
        )
        mc = (lq - lp).mean()
        se = (lq - lp).std() / np.sqrt(len(z))
        assert abs(ours[i] - mc) < 5 * se + 0.02, (ours[i], mc, se)
        assert ours[i] > 0


def test_single_component_kl_equals_closed_form():
    prior = MixturePrior(1, 3)
    with torch.no_grad():
        prior.loc.zero_()
        prior.raw_scale.fill_(np.log(np.e - 1))  # sigma = 1 (+1e-4)
    mu = torch.tensor([[0.3, -0.2, 1.0]])
    logvar = torch.tensor([[0.1, -0.3, 0.0]])
    ref = standard_normal_kl(mu, logvar)
    torch.manual_seed(0)
    est = prior.kl(mu, logvar, n_samples=200000)
    assert abs(float(est.detach() - ref)) < 0.01


def test_kmeans_init_fits_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = np.concatenate([c + 0.3 * rng.standard_normal((200, 2)) for c in centres])
    prior = MixturePrior(3, 2)
    prior.init_kmeans(z, seed=0)
    loc = prior.loc.detach().numpy()
    for c in centres:
        assert np.min(np.linalg.norm(loc - c, axis=1)) < 0.2
    np.testing.assert_allclose(torch.softmax(prior.logits, -1).detach().numpy(), 1 / 3, atol=0.01)
    assert np.allclose(prior.scale().detach().numpy(), 0.3, atol=0.08)


@pytest.mark.parametrize("cls", [NBLikelihood, ZINBLikelihood, PoissonLikelihood])
def test_count_normalized_mean_is_library_free(cls):
    lik, h = _setup(cls)
    m = lik.normalized_mean(h)
    torch.testing.assert_close(m.sum(-1), torch.full((N,), 1e4), rtol=1e-4, atol=1e-2)


def test_bernoulli_stays_finite_where_the_rate_underflows_or_saturates():
    """An open peak whose rate underflows, and rates so large that expm1 would overflow
    float32: finite values equal to the float64 pmf, finite gradients."""
    import copy

    lik, _ = _setup(BernoulliLikelihood)
    with torch.no_grad():
        lik.logit_head.weight.zero_()
        lik.logit_head.bias.copy_(torch.linspace(-120.0, 0.0, G))
    h = torch.zeros(2, H, requires_grad=True)
    x = torch.tensor([[1.0] * G, [1.0, 0.0] * (G // 2) + [1.0]])
    aux = torch.tensor([[0.0], [11.5]])  # 1 and 1e5 open peaks: rates e^-120 to 1e5

    def reference(lik64):
        log_rate = torch.log_softmax(lik64.logit_head(h.double()), -1) + aux.double()
        log_rate = log_rate + lik64.log_scale
        lam = log_rate.exp()
        small = torch.where(lam < 1, lam, torch.ones_like(lam))
        large = torch.where(lam < 1, torch.ones_like(lam), lam)
        open_ = torch.where(
            lam < 1,
            log_rate + torch.log(torch.expm1(small) / small),
            large + torch.log1p(-torch.exp(-large)),
        )
        return ((x.double() * open_).sum(-1) - lam.sum(-1)).detach().numpy()

    lik64 = copy.deepcopy(lik).double()
    ref = reference(lik64)
    ours = lik.log_likelihood(x, h, aux)
    assert torch.isfinite(ours).all()
    # float32: the open-peak terms and the total rate (1e5) cancel to about -255, so the error
    # is float32's relative precision times the depth, not times the result
    np.testing.assert_allclose(ours.detach().numpy(), ref, rtol=1e-6, atol=1e-6 * 1e5)
    # in float64 the same code agrees with the reference to float64 precision
    ours64 = lik64.log_likelihood(x.double(), h.double(), aux.double())
    np.testing.assert_allclose(ours64.detach().numpy(), ref, rtol=1e-12)
    ours.sum().backward()
    assert torch.isfinite(lik.logit_head.bias.grad).all()
    assert torch.isfinite(lik.log_scale.grad).all()
