"""The flow prior: exact inverses, exact log-determinants, a normalised density, conditioning,
checkpoints and a Lightning training step. Tiny models, float64 where precision matters."""
import math

import pytest
import pytorch_lightning as pl
import torch
from torch.autograd.functional import jacobian

from priors.checkpoint import describe_prior, load_prior, save_prior
from priors.flow import ActNorm, AffineCoupling, Flow, Invertible1x1Conv, MixtureCDFCoupling, MixtureLogisticCDF, Squeeze
from priors.noise import NoiseSchedule
from tests.conftest import perturb_couplings


def _flow(**kw) -> Flow:
    torch.manual_seed(0)
    args = dict(n_blocks=2, n_flows=2, channels=8, n_layers=2, kernel_size=3)
    args.update(kw)
    return Flow(**args).double()


def _initialised(flow: Flow, batch: int = 4, length: int = 16, perturb: bool = True, source=None) -> Flow:
    """Run ActNorm's data-dependent initialisation on a random batch, then perturb the couplings."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        flow(torch.rand(batch, length, generator=g, dtype=torch.float64) * 2 - 1, sigma=0.1, source=source)
    if perturb:
        perturb_couplings(flow)
    return flow.eval()


def _layers(c: int = 4):
    """One instance of each layer type, float64, non-trivial parameters, plus its conditioning width."""
    torch.manual_seed(0)
    act = ActNorm(c).double()
    act.initialize(torch.randn(3, c, 16, dtype=torch.float64) * 0.4 + 0.2)
    coup = AffineCoupling(c, hidden=8, n_layers=2, kernel_size=3, cond_channels=5).double()
    perturb_couplings(coup)
    mix = MixtureLogisticCDF(c, 3).double()
    with torch.no_grad():
        mix.mean.normal_(0.0, 1.5)
        mix.log_scale.normal_(0.0, 0.5)
        mix.logits.normal_()
    probit = MixtureLogisticCDF(c, 3, link="probit").double()
    probit.load_state_dict(mix.state_dict())
    mix_coupling = MixtureCDFCoupling(c, hidden=8, n_layers=2, kernel_size=3, cond_channels=5, n_components=3).double()
    perturb_couplings(mix_coupling)
    return {"squeeze": Squeeze(), "actnorm": act, "conv1x1": Invertible1x1Conv(c).double(), "coupling": coup,
            "mixture_cdf": mix, "mixture_cdf_probit": probit, "mixture_coupling": mix_coupling}


@pytest.mark.parametrize("name", ["squeeze", "actnorm", "conv1x1", "coupling", "mixture_cdf", "mixture_cdf_probit",
                                  "mixture_coupling"])
def test_each_layer_inverts_and_its_logdet_is_log_abs_det_jacobian(name):
    layer = _layers()[name]
    torch.manual_seed(2)
    x = torch.randn(2, 4, 16, dtype=torch.float64)
    cond = torch.randn(2, 5, dtype=torch.float64)
    y, logdet = layer(x, cond)
    assert logdet.shape == (2,)
    assert torch.allclose(layer.reverse(y, cond), x, atol=1e-9 if name.startswith("mixture") else 1e-10)
    if name != "squeeze":
        assert not torch.allclose(y, x), "the layer should not be the identity in this test"
    for i in range(2):
        xi, ci = x[i:i + 1], cond[i:i + 1]
        jac = jacobian(lambda v: layer(v.reshape(xi.shape), ci)[0].reshape(-1), xi.reshape(-1), vectorize=True)
        assert torch.allclose(logdet[i], torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_actnorm_initialises_from_the_first_batch_only():
    act = ActNorm(3).double()
    x = torch.randn(5, 3, 40, dtype=torch.float64) * torch.tensor([0.1, 1.0, 3.0]).view(1, 3, 1) + 2.0
    y, _ = act(x)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(y.std(dim=(0, 2), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-10)
    before = {k: v.clone() for k, v in act.state_dict().items()}
    act(torch.randn(5, 3, 40, dtype=torch.float64))
    assert all(torch.equal(v, before[k]) for k, v in act.state_dict().items())
    fresh = ActNorm(3).double()
    fresh.load_state_dict(before)
    assert torch.equal(fresh(x)[0], y), "a loaded ActNorm must not re-initialise"


def test_whole_flow_inverts_and_logdet_matches_autograd():
    flow = _initialised(_flow(n_sources=2), source=0)
    torch.manual_seed(3)
    x = torch.rand(3, 32, dtype=torch.float64) * 2 - 1
    sigma, source = torch.tensor([0.0, 0.05, 0.3], dtype=torch.float64), torch.tensor([0, 1, 1])
    z, logdet = flow(x, sigma, source)
    assert z.shape == (3, 4, 8) and logdet.shape == (3,)
    assert torch.allclose(flow.reverse(z, sigma, source), x, atol=1e-10)
    x1 = x[:1, :16]
    jac = jacobian(lambda v: flow(v.reshape(1, 16), 0.1, 1)[0].reshape(-1), x1.reshape(-1), vectorize=True)
    assert torch.allclose(flow(x1, 0.1, 1)[1][0], torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_float32_round_trip_within_1e4():
    torch.manual_seed(0)
    flow = Flow(n_blocks=3, n_flows=3, channels=16, n_layers=3)
    with torch.no_grad():
        flow(torch.rand(4, 256) * 2 - 1, sigma=0.0)
    perturb_couplings(flow, 0.1)
    x = torch.rand(2, 256) * 2 - 1
    with torch.no_grad():
        z, _ = flow(x, 0.05)
        assert (flow.reverse(z, 0.05) - x).abs().max() < 1e-4


def test_log_prob_is_the_change_of_variables_formula():
    flow = _initialised(_flow())
    x = (torch.rand(1, 16, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    lp = flow.log_prob(x, sigma=0.2)
    assert lp.shape == (1, 16) and torch.allclose(lp, lp[:, :1].expand(-1, 16))
    with torch.no_grad():
        z, _ = flow(x, 0.2)
    jac = jacobian(lambda v: flow(v.reshape(1, 16), 0.2)[0].reshape(-1), x.detach().reshape(-1), vectorize=True)
    expected = (-0.5 * z.pow(2).sum() - 8 * math.log(2 * math.pi)) + torch.linalg.slogdet(jac)[1]
    assert torch.allclose(lp.sum(), expected, atol=1e-8)
    assert torch.allclose(flow.log_likelihood(x, 0.2)[0], expected, atol=1e-8)
    lp.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_density_integrates_to_one():
    """A 1-block flow on length-2 waveforms: ∫ p(x) dx over a fine 2-D grid is 1."""
    torch.manual_seed(0)
    flow = Flow(n_blocks=1, n_flows=3, channels=8, n_layers=2).double()
    _initialised(flow, batch=64, length=2)
    n, half = 161, 10.0  # the density is smooth: a coarse Riemann sum is already exact to ~1e-7
    u = torch.linspace(-half, half, n, dtype=torch.float64)
    grid = torch.cartesian_prod(u, u)
    with torch.no_grad():
        density = flow.log_likelihood(grid, sigma=0.1).exp()
    integral = density.sum() * (u[1] - u[0]) ** 2
    assert abs(integral.item() - 1.0) < 1e-5


def test_conditioning_changes_the_density_and_source_is_required():
    flow = _initialised(_flow(n_sources=2), source=0)
    x = torch.rand(2, 32, dtype=torch.float64) * 2 - 1
    assert not torch.allclose(flow.log_prob(x, 0.0, 0), flow.log_prob(x, 0.3, 0))
    assert not torch.allclose(flow.log_prob(x, 0.1, 0), flow.log_prob(x, 0.1, 1))
    with pytest.raises(ValueError):
        flow.log_prob(x, 0.1)


def test_generate_shape_finite_reproducible_and_refuses_bad_lengths():
    flow = _initialised(_flow()).float()
    assert flow.length_multiple == 4
    torch.manual_seed(5)
    a = flow.generate(3, 64, sigma=0.0, temperature=0.8)
    torch.manual_seed(5)
    b = flow.generate(3, 64, sigma=0.0, temperature=0.8)
    assert a.shape == (3, 64) and torch.isfinite(a).all() and torch.equal(a, b)
    assert a.abs().max() <= 1.0
    raw = flow.generate(3, 64, temperature=0.0, clip=False)
    z, _ = flow(raw)
    assert z.abs().max() < 1e-4, "temperature 0 decodes z = 0"
    with pytest.raises(ValueError, match="multiple of 4"):
        flow.generate(2, 30)
    with pytest.raises(ValueError, match="multiple of 4"):
        flow.log_prob(torch.zeros(1, 30))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    flow = Flow(n_blocks=2, n_flows=2, channels=8, n_layers=2)
    with torch.no_grad():
        flow(torch.rand(4, 64) * 2 - 1, sigma=0.0)
    perturb_couplings(flow, 0.1)
    save_prior(tmp_path / "sin.pt", flow, describe_prior(flow, "sin", 14_700, NoiseSchedule()))
    model, meta = load_prior(tmp_path / "sin.pt")
    assert meta["class_path"] == "priors.flow.Flow" and meta["init_args"]["n_blocks"] == 2
    x = torch.rand(2, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x, 0.1), flow.eval().log_prob(x, 0.1), atol=1e-5)
    # the ActNorms are restored as initialised: a first call on other data does not re-fit them
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.log_prob(torch.randn(3, 64) * 5, 0.0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # the 1x1 convolutions' derived buffers are not stored, and a state that still holds them loads
    state = flow.state_dict()
    assert not any(k.endswith(("lower_mask", ".eye")) for k in state)
    conv = next(k[: -len("perm")] for k in state if k.endswith("perm"))
    state[conv + "lower_mask"], state[conv + "eye"] = torch.ones(4, 4), torch.eye(4)
    model.load_state_dict(state)


def test_source_prior_trains_a_flow_on_toy_crops(monkeypatch):
    from priors.data import ToyDataModule
    from priors.module import SourcePrior

    pl.seed_everything(0)
    flow = Flow(n_blocks=2, n_flows=2, channels=8, n_layers=2)
    module = SourcePrior(model=flow, source="sin", warmup_steps=1)
    dm = ToyDataModule(mode="source", source="sin", crop_length=256, batch_size=4, train_crops=8, val_crops=4)
    losses = []
    original = SourcePrior.training_step

    def spy(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        losses.append(loss.detach())
        return loss

    monkeypatch.setattr(SourcePrior, "training_step", spy)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=1,
                         val_check_interval=3, check_val_every_n_epoch=None, num_sanity_val_steps=0)
    trainer.fit(module, dm)
    assert len(losses) == 3 and all(torch.isfinite(l) for l in losses)
    assert torch.isfinite(trainer.callback_metrics["val/nll"])
    assert all(float(a.initialized) == 1.0 for a in flow.modules() if isinstance(a, ActNorm))


def test_mixture_cdf_inverts_far_from_its_components_in_float32():
    """The logit of a mixture CDF saturates in float32 unless it is computed in log space: values
    60 scales from every component still map to finite outputs and invert."""
    torch.manual_seed(0)
    mix = MixtureLogisticCDF(3, 4)
    x = torch.tensor([-60.0, -5.0, 0.0, 0.3, 5.0, 60.0]).repeat(2, 3, 1)
    y, logdet = mix(x)
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    assert (y.diff(dim=-1) > 0).all(), "monotone in x"
    assert (mix.reverse(y) - x).abs().max() < 1e-4


def test_probit_link_maps_the_fitted_marginal_to_a_standard_normal():
    """MixtureLogisticCDF.fit fits each channel's mixture to its values alone; with the probit link
    the map then sends those values to N(0, 1) (a spike plus a long tail, like a mel bin), far
    closer than the logit link's logistic, and stays finite and invertible in the tails."""
    g = torch.Generator().manual_seed(0)
    spike = torch.rand(4, 2, 2000, generator=g) < 0.7
    x = torch.where(spike, -9.2 + 0.05 * torch.randn(4, 2, 2000, generator=g),
                    -9.2 + 5 * torch.rand(4, 2, 2000, generator=g).pow(2))
    probit = MixtureLogisticCDF(2, 4, link="probit")
    assert probit.fit(x, steps=300) > probit.marginal_log_density(x + 1.0).mean().item()
    y, _ = probit(x)
    assert y.mean((0, 2)).abs().max() < 0.1 and (y.std((0, 2)) - 1).abs().max() < 0.1
    normal = torch.distributions.Normal(0.0, 1.0)
    share_above = (y > 1.645).float().mean().item()  # 5 % of N(0, 1)
    assert 0.03 < share_above < 0.07, share_above
    assert (probit.reverse(y) - x).abs().max() < 1e-3
    far = torch.tensor([-200.0, -20.0, 20.0, 200.0]).repeat(1, 2, 1)
    yf, ldf = probit(far)
    assert torch.isfinite(yf).all() and torch.isfinite(ldf).all() and (yf.diff(dim=-1) >= 0).all()
    assert normal.cdf(y).mean().item() == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="link"):
        MixtureLogisticCDF(2, link="tanh")


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_mixture_cdf_inverse_carries_the_implicit_function_gradient(link):
    """The bisection has no graph; the zero-valued Newton step gives dx/dy and dx/dθ of the
    inverse, checked against finite differences (gradcheck, float64). Without autograd the
    inverse is the bisection alone."""
    from priors.flow import invert_mixture_logit_cdf

    torch.manual_seed(0)
    mix = MixtureLogisticCDF(2, 3, link=link).double()
    with torch.no_grad():
        mix.mean.add_(0.3 * torch.randn_like(mix.mean))
        mix.log_scale.add_(0.2 * torch.randn_like(mix.log_scale))
        mix.logits.add_(torch.randn_like(mix.logits))
    y = torch.randn(1, 2, 3, dtype=torch.float64)

    def inverse(y, mean, log_scale, logits):
        return invert_mixture_logit_cdf(y, mean, log_scale, logits.log_softmax(1), link=link)

    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (y, mix.mean, mix.log_scale, mix.logits))
    assert torch.autograd.gradcheck(inverse, inputs, eps=1e-6, atol=1e-5)
    x = mix.reverse(y)
    assert not x.requires_grad or torch.is_grad_enabled()
    with torch.no_grad():
        assert not mix.reverse(y).requires_grad
    torch.testing.assert_close(mix(x)[0], y)
