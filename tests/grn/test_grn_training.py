"""Batched solves, pruning schedule through the core, LR reset, checkpoints and resume."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq

from biostruct.errors import SolverError
from biostruct.grn.dash import PruneSchedule
from biostruct.grn.data import trajectories_from_anndata
from biostruct.grn.field import PRUNABLE, PhoenixField
from biostruct.grn.solve import SolverConfig, integrate_transitions
from biostruct.grn.train import PruningConfig, TrainConfig, Trainer


@pytest.fixture(scope="module")
def tiny(small_network):
    adata, truth, prior = small_network
    tr = trajectories_from_anndata(adata[adata.obs["trajectory"].astype(int) < 8])
    return tr.subset(list(range(6))).transitions(), tr.subset([6, 7]).transitions(), prior


def _trainer(tiny, *, epochs=6, pruning=None, **cfg):
    train, val, prior = tiny
    field = PhoenixField(train.x0.shape[1], 6, seed=0)
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, rate_lr_factor=5.0, **cfg)
    return Trainer(field, train, val, config, prior=prior, pruning=pruning, seed=0)


def test_batched_solve_equals_separate_solves(tiny):
    train = tiny[0]
    field = PhoenixField(train.x0.shape[1], 6, seed=1)
    tight = SolverConfig("dopri5", rtol=1e-8, atol=1e-10)
    with torch.no_grad():
        batched = integrate_transitions(field, train.x0, train.dt, tight)
        for k in range(0, len(train), 5):
            t = torch.tensor([0.0, float(train.dt[k])])
            one = torchdiffeq.odeint(
                lambda _t, x: field(x), train.x0[k : k + 1], t, rtol=1e-8, atol=1e-10
            )[-1, 0]
            torch.testing.assert_close(batched[k], one, rtol=1e-5, atol=1e-6)
        fixed = integrate_transitions(field, train.x0, train.dt, SolverConfig())  # rk4, 4 steps
    # the default rk4 (4 steps per interval) stays a tenth below the benchmarks' noise sd 0.025
    err = (fixed - batched).abs()
    assert float(err.max()) < 2.5e-3
    assert float(err.pow(2).mean().sqrt()) < 5e-4


def test_schedule_densities_and_lr_reset(tiny):
    sched = PruneSchedule(start_epoch=2, first_fraction=0.5, every=3, fraction=0.5)
    pruning = PruningConfig(scores="dash", lam_ppi=0.05, lam_motif=0.01, schedule=sched)
    # patience 0 and a huge threshold: the plateau scheduler cuts the LR after every epoch
    t = _trainer(tiny, epochs=8, pruning=pruning, plateau_patience=0, plateau_threshold=1.0)
    t.fit()
    assert [e["epoch"] for e in t.events] == [2, 3, 6]
    expected = [0.5, 0.25, 0.125]
    for event, want in zip(t.events, expected):
        for fqn in PRUNABLE:
            numel = t.masked.mask(fqn).numel()
            assert abs(event["densities"][fqn] - want) <= 1.0 / numel + 1e-9
    # pruned weights are exactly zero in the field
    for fqn in PRUNABLE:
        w = dict(t.field.named_parameters())[fqn]
        assert torch.all(w[~t.masked.mask(fqn)] == 0)
    lrs = {h["epoch"]: h["lr"] for h in t.history}
    assert lrs[5] < 1e-3  # reduced by the plateau scheduler before the cut at epoch 6
    # after the cut at epoch 6 the LR is back at its initial value (5x for the gene rates)...
    t2 = _trainer(tiny, epochs=8, pruning=pruning, plateau_patience=0, plateau_threshold=1.0)
    seen = {}

    def grab(row):
        if row["pruned"]:
            seen[row["epoch"]] = [g["lr"] for g in t2.optimizer.param_groups]

    t2.fit(callback=grab)
    for lrs_after in seen.values():
        assert lrs_after == pytest.approx([1e-3, 1e-3 * t2.config.rate_lr_factor])
    assert sorted(seen) == [2, 3, 6]
    # without the reset the LR keeps falling
    t3 = _trainer(
        tiny,
        epochs=8,
        pruning=PruningConfig(schedule=sched, reset_lr=False),
        plateau_patience=0,
        plateau_threshold=1.0,
    )
    t3.fit()
    assert t3.optimizer.param_groups[0]["lr"] < 0.6e-3


def test_best_state_has_final_sparsity(tiny):
    sched = PruneSchedule(start_epoch=2, first_fraction=0.7, every=2, fraction=0.3)
    t = _trainer(tiny, epochs=6, pruning=PruningConfig(schedule=sched))
    t.fit()
    t.restore_best()
    assert t.best_epoch > t.events[-1]["epoch"]
    final = t.events[-1]["densities"]["sums.weight"]
    assert float((t.field.sums.weight != 0).float().mean()) <= final + 1e-9


def test_checkpoint_resume_is_exact(tiny, tmp_path):
    pruning = PruningConfig(schedule=PruneSchedule(start_epoch=2, first_fraction=0.5, every=2))
    ref = _trainer(tiny, epochs=6, pruning=pruning, input_noise=0.01)
    ref.fit()

    ckpt = tmp_path / "run.pt"
    first = _trainer(tiny, epochs=6, pruning=pruning, input_noise=0.01)

    class Stop(Exception):
        pass

    def interrupt(row):
        if row["epoch"] == 3:
            raise Stop

    with pytest.raises(Stop):
        first.fit(checkpoint=ckpt, callback=interrupt)
    # the callback runs before the epoch-3 checkpoint: the file holds epoch 2
    resumed = _trainer(tiny, epochs=6, pruning=pruning, input_noise=0.01)
    resumed.load_checkpoint(ckpt)
    assert resumed.epoch == 2
    resumed.fit(checkpoint=ckpt)
    assert resumed.epoch == 6
    for k, v in ref.field.state_dict().items():
        torch.testing.assert_close(resumed.field.state_dict()[k], v, rtol=0, atol=0)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in ref.history]
    assert not list(tmp_path.glob("*.tmp"))


def test_prior_loss_targets(tiny):
    t = _trainer(tiny, lambda_data=0.5, n_prior_states=200, prior_batch_size=50)
    prior = torch.as_tensor(tiny[2], dtype=torch.float32)
    assert t.prior_x.shape == (200, prior.shape[0])
    assert float(t.prior_x.min()) >= -0.5 and float(t.prior_x.max()) <= 0.5
    torch.testing.assert_close(t.prior_y, t.prior_x @ prior)
    with torch.no_grad():
        before = float(((t.field.joint(t.prior_x) - t.prior_y) ** 2).mean())
    t.fit()
    with torch.no_grad():
        after = float(((t.field.joint(t.prior_x) - t.prior_y) ** 2).mean())
    assert after < before


def test_solver_failure_is_solver_error(tiny):
    t = _trainer(tiny, epochs=1)
    with torch.no_grad():
        t.field.prods.weight.fill_(30.0)  # exp(30 * log(...)) explodes
        t.field.gene_rates.fill_(50.0)
    t.config.solver.max_steps = 5
    with pytest.raises(SolverError, match="Fix:"):
        t.fit()


def test_pilot_reparameterisation_decay_switch_off_and_cut(tiny):
    from biostruct.grn.methods import build_configs

    train, val, prior = tiny
    cfg, pruning = build_configs("pilot", 8, batch_size=8)
    assert cfg.pilot_off_epoch == 4 and pruning.schedule.cuts(8) == [(6, 0.95)]
    field = PhoenixField(train.x0.shape[1], 6, seed=0)
    t = Trainer(field, train, val, cfg, prior=prior, pruning=pruning, seed=0)
    assert t.mw is not None and t.masked.mode("sums.weight") == "parametrize"
    decays = []
    t.fit(callback=lambda row: decays.append(t.optimizer.param_groups[2]["weight_decay"]))
    assert decays[:4] == [0.1] * 4 and decays[4:] == [0.0] * 4
    t.restore_best()
    for fqn in PRUNABLE:
        assert t.masked.densities()[fqn] == pytest.approx(0.05, abs=0.02)
    dense = t.dense_state()
    assert set(dense) >= {"sums.weight", "prods.weight", "alpha_sums.weight", "gene_rates"}
    assert float((dense["sums.weight"] != 0).float().mean()) <= 0.07


@pytest.mark.parametrize("method", ["posthoc", "lrr", "l1", "dense", "prior_only"])
def test_baselines_share_the_training_path(tiny, method):
    from biostruct.grn.methods import build_configs

    train, val, prior = tiny
    cfg, pruning = build_configs(method, 20, batch_size=16)
    t = Trainer(
        PhoenixField(train.x0.shape[1], 6, seed=0),
        train,
        val,
        cfg,
        prior=prior,
        pruning=pruning,
        seed=0,
    )
    if method == "posthoc":
        # one magnitude cut to 5 % at mid-training, output layers scored by |A| * relu(m)
        assert pruning.schedule.cuts(20) == [(10, 0.95)]
        t.config.epochs = 10
        t.fit()
        scores = t._scores()
        rates = torch.relu(t.field.gene_rates.detach()).double()
        want = t.field.alpha_sums.weight.detach().abs().double() * rates[:, None]
        torch.testing.assert_close(scores["alpha_sums.weight"], want)
        torch.testing.assert_close(
            scores["sums.weight"], t.field.sums.weight.detach().abs().double()
        )
    elif method == "lrr":
        assert pruning.scores == "lrr" and pruning.schedule.cuts(20) == [(10, 0.15)]
        t.fit()
        # one global ranking: layers end at different densities, overall 85 % kept
        d = t.masked.densities()
        assert t.masked.density() == pytest.approx(0.85, abs=0.01)
        assert max(d.values()) - min(d.values()) > 0.01
    elif method == "l1":
        assert cfg.l1_path == pytest.approx(1e-3) and pruning is None
        t.config.epochs = 2
        t.fit()
        assert not t.events
    elif method == "dense":
        assert pruning is None and cfg.lambda_data == 1.0
    else:
        assert pruning.lam_ppi == 1.0 and pruning.lam_motif == 1.0


def test_adjoint_gradients_match_direct(tiny):
    train = tiny[0]
    field = PhoenixField(train.x0.shape[1], 6, seed=3)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        cfg = SolverConfig("dopri5", rtol=1e-7, atol=1e-9, adjoint=adjoint)
        out = integrate_transitions(field, train.x0[:8], train.dt[:8], cfg)
        ((out - train.x1[:8]) ** 2).mean().backward()
        grads.append(field.sums.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-6)
