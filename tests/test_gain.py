"""GAIN (Yoon et al. 2018): its loss terms against their formulas, the hint, tabular data, `ganforge impute`."""

from __future__ import annotations

import copy
import csv
import math

import numpy as np
import pytest
import torch
from conftest import assert_same_state
from torch.testing import assert_close

from ganforge import objectives
from ganforge.cli import main
from ganforge.config import load_config
from ganforge.data.tabular import (
    MinMaxScaler,
    Table,
    mcar_mask,
    mean_impute,
    read_csv,
    scaled_rmse,
    table_dataset,
    tabular,
)
from ganforge.errors import ConfigError
from ganforge.games.gain import (
    DEFAULT_RECIPE,
    GAIN,
    d_entry_loss,
    g_adversarial_loss,
    make_hint,
    reconstruction_loss,
)
from ganforge.training import checkpoint as ckpt
from ganforge.training.trainer import Trainer

# fixed logits (B=2, d=3) and a mask with both kinds of entry in each row
LOGITS = torch.tensor([[-2.0, 0.5, 3.0], [1.5, -0.7, 0.0]], dtype=torch.float64)
MASK = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
NET = {"name": "mlp", "hidden": 8, "depth": 1}


def log_d(v):
    return torch.log(torch.sigmoid(v))


def log_1md(v):
    return torch.log(1 - torch.sigmoid(v))


def correlated_table(n: int = 600, seed: int = 0) -> Table:
    """x1 ~ U(0, 1); x2 = 2 x1 + noise; x3 = 1 - x1 + noise; x4 = x1^2 + noise: each column predicts the others."""
    r = np.random.default_rng(seed)
    x1 = r.random(n)
    vals = np.stack([x1, 2 * x1 + 0.05 * r.standard_normal(n), 1 - x1 + 0.03 * r.standard_normal(n),
                     x1 ** 2 + 0.02 * r.standard_normal(n)], 1)
    return Table(["x1", "x2", "x3", "x4"], vals, "correlated")


def tiny_raw(**data) -> dict:
    return {"name": "gain-test", "game": {"name": "gain"},
            "data": {"name": "tabular", "table": "iris", "missing_rate": 0.3, **data},
            "nets": {"g": {**NET, "out_activation": "sigmoid"}, "d": NET},
            "train": {"steps": 4, "batch_size": 16, "threads": 1, "device": "cpu", "log_every": 1,
                      "tensorboard": False},
            "eval": {"every": 0, "n": 150, "samples": False}, "checkpoint": {"every": 2, "keep": 5}}


# ------------------------------------------------------------------------------------- losses
def test_d_loss_is_the_per_entry_cross_entropy():
    want = -(MASK * log_d(LOGITS) + (1 - MASK) * log_1md(LOGITS)).sum() / 6
    assert_close(d_entry_loss(LOGITS, MASK), want)


def test_g_adversarial_term_counts_missing_entries_only():
    missing = [(0, 1), (1, 0), (1, 1)]
    want = -sum(log_d(LOGITS[i, j]) for i, j in missing) / 3
    assert_close(g_adversarial_loss(LOGITS, MASK), want)
    moved = LOGITS.clone()
    moved[MASK.bool()] += 5.0  # what D says about observed entries does not matter to G
    assert_close(g_adversarial_loss(moved, MASK), want)
    assert float(g_adversarial_loss(LOGITS, torch.ones_like(MASK))) == 0.0  # nothing missing: no term


def test_reconstruction_counts_observed_entries_only():
    x = torch.tensor([[0.2, 0.9, 0.4], [0.5, 0.1, 1.0]], dtype=torch.float64)
    g = torch.tensor([[0.3, 0.0, 0.1], [0.9, 0.8, 0.6]], dtype=torch.float64)
    want = ((0.3 - 0.2) ** 2 + (0.1 - 0.4) ** 2 + (0.6 - 1.0) ** 2) / 3
    assert_close(reconstruction_loss(g, x, MASK), torch.tensor(want, dtype=torch.float64))
    g2 = g.clone()
    g2[~MASK.bool()] = 7.0  # G's guesses at missing entries are not reconstruction errors
    assert_close(reconstruction_loss(g2, x, MASK), torch.tensor(want, dtype=torch.float64))


def test_unrevealed_variant_counts_only_entries_with_hint_one_half():
    h = torch.tensor([[0.5, 0.0, 1.0], [0.5, 0.5, 1.0]], dtype=torch.float64)  # unrevealed: (0,0), (1,0), (1,1)
    game = GAIN(loss_on="unrevealed")
    w = game.counted(h)
    d_want = (-log_d(LOGITS[0, 0]) - log_1md(LOGITS[1, 0]) - log_1md(LOGITS[1, 1])) / 3
    assert_close(d_entry_loss(LOGITS, MASK, w), d_want)
    g_want = (-log_d(LOGITS[1, 0]) - log_d(LOGITS[1, 1])) / 2  # missing and unrevealed
    assert_close(g_adversarial_loss(LOGITS, MASK, w), g_want)
    assert GAIN().counted(h) is None
    with pytest.raises(ConfigError, match="loss_on must be one of all, unrevealed"):
        GAIN(loss_on="hidden")


def test_impute_default_recipe_is_the_committed_recipe():
    import yaml

    from ganforge.bench.gain_bench import RECIPE

    rec = yaml.safe_load(RECIPE.read_text())
    for sec in ("game", "objective", "nets", "optim"):
        assert rec[sec] == DEFAULT_RECIPE[sec], sec
    assert {k: rec["train"][k] for k in DEFAULT_RECIPE["train"]} == DEFAULT_RECIPE["train"]


def _game(alpha: float = 100.0) -> GAIN:
    torch.manual_seed(0)
    data = table_dataset(correlated_table(40), missing_rate=0.3, seed=1)
    game = GAIN(alpha=alpha)
    game.build(data, {"g": {**NET, "out_activation": "sigmoid"}, "d": NET}, objectives.get("ns"), [])
    return game.double()


def test_phase_losses_equal_the_paper_formulas_at_fixed_draws():
    game = _game(alpha=7.0)
    x = game.data.x[:6].double()
    m = game.data.info["paired"]["m"][:6].double()
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.01
    h = make_hint(m, 0.9, torch.Generator().manual_seed(4))
    game.corrupt = lambda x_, m_, generator=None: m_ * x_ + (1 - m_) * u
    game.hint = lambda m_: h
    phases = {p.name: p for p in game.phases()}
    g, d = game.nets["g"], game.nets["d"]
    g_out = g(m * x + (1 - m) * u, m)
    x_hat = m * x + (1 - m) * g_out
    v = d(x_hat, h)
    d_want = -(m * log_d(v) + (1 - m) * log_1md(v)).mean()
    adv = -((1 - m) * log_d(v)).sum() / (1 - m).sum()
    rec = (m * (g_out - x) ** 2).sum() / m.sum()
    batch = {"x": x, "m": m}
    d_loss, _ = phases["d"].loss(batch)
    g_loss, logs = phases["g"].loss(batch)
    assert_close(d_loss, d_want)
    assert_close(g_loss, adv + 7.0 * rec)
    assert logs["g_adv"] == pytest.approx(adv.item()) and logs["mse_observed"] == pytest.approx(rec.item())
    assert (1 - m).sum() > 0 and m.sum() > 0


def test_hint_reveals_the_mask_at_the_hint_rate_and_half_elsewhere():
    gen = torch.Generator().manual_seed(0)
    m = (torch.rand(400, 500, generator=gen) < 0.7).float()
    h = make_hint(m, 0.9, gen)
    assert set(h.unique().tolist()) == {0.0, 0.5, 1.0}
    revealed = h != 0.5
    assert torch.equal(h[revealed], m[revealed])  # a revealed entry is the mask itself
    n = m.numel()
    frac = float(revealed.float().mean())
    assert abs(frac - 0.9) < 4 * math.sqrt(0.09 / n)  # Bernoulli(0.9) per entry, 4 standard errors
    # independent of the mask: the revealed fraction is the same among observed and missing entries
    for part in (m == 1, m == 0):
        k = int(part.sum())
        assert abs(float(revealed[part].float().mean()) - 0.9) < 4 * math.sqrt(0.09 / k)
    assert torch.equal(make_hint(m, 1.0, gen), m)
    assert torch.equal(make_hint(m, 0.0, gen), torch.full_like(m, 0.5))


def test_corrupt_keeps_observed_entries_and_fills_missing_with_small_noise():
    game = _game()
    x, m = game.data.x.double(), game.data.info["paired"]["m"].double()
    xt = game.corrupt(x, m)
    assert torch.equal(xt[m.bool()], x[m.bool()])
    miss = xt[~m.bool()]
    assert miss.min() >= 0 and miss.max() < 0.01 and miss.std() > 0


def test_each_phase_moves_only_its_own_net(tmp_path):
    tr = Trainer(load_config(None, base=tiny_raw()), tmp_path / "r", quiet=True)
    for ph in tr.phases:
        before = {r: [p.detach().clone() for p in net.parameters()] for r, net in tr.game.nets.items()}
        logs = tr._run_phase(ph)
        assert logs and all(math.isfinite(v) for v in logs.values())
        for role, net in tr.game.nets.items():
            same = [torch.equal(a, b) for a, b in zip(before[role], net.parameters(), strict=True)]
            assert all(same) if role != ph.group else not any(same), (ph.name, role)


def test_resume_is_exact(tmp_path):
    raw = tiny_raw()
    Trainer(load_config(None, base=raw), tmp_path / "whole", quiet=True).fit()
    half = copy.deepcopy(raw)
    half["train"]["steps"] = 2
    Trainer(load_config(None, base=half), tmp_path / "split", quiet=True).fit()
    Trainer.resume(tmp_path / "split", {"train.steps": 4}, quiet=True).fit()
    a, _ = ckpt.load_latest(tmp_path / "whole")
    b, _ = ckpt.load_latest(tmp_path / "split")
    assert_same_state(a["game"], b["game"])


def test_gain_refuses_data_without_a_mask_and_other_objectives(tmp_path):
    with pytest.raises(ConfigError, match="needs data with a missing-value mask"):
        Trainer(load_config(None, base={**tiny_raw(), "data": {"name": "ring", "n": 64}}), tmp_path / "a")
    with pytest.raises(ConfigError, match="objective ns"):
        Trainer(load_config(None, base={**tiny_raw(), "objective": {"name": "hinge"}}), tmp_path / "b")
    with pytest.raises(ConfigError, match="hint_rate"):
        GAIN(hint_rate=1.5)


# ------------------------------------------------------------------------------------- data
def test_scaling_is_fitted_on_observed_values_and_round_trips():
    vals = np.array([[1.0, 5.0, 2.0], [3.0, np.nan, 2.0], [np.nan, -5.0, 2.0], [2.0, 0.0, 2.0]])
    s = MinMaxScaler.fit(vals)
    np.testing.assert_array_equal(s.lo, [1.0, -5.0, 2.0])
    np.testing.assert_array_equal(s.span, [2.0, 10.0, 1.0])  # a constant column keeps span 1
    scaled = s.scale(vals)
    np.testing.assert_allclose(np.nanmin(scaled, 0), [0, 0, 0])
    np.testing.assert_allclose(np.nanmax(scaled, 0), [1, 1, 0])
    np.testing.assert_allclose(s.unscale(scaled), vals, rtol=1e-15, atol=1e-15)
    # the dataset's scaler never sees the entries it hides
    t = correlated_table(200)
    data = table_dataset(t, missing_rate=0.5, seed=3)
    kept = np.where(data.info["hidden"], np.nan, t.values)
    np.testing.assert_array_equal(data.info["scaler"].lo, np.nanmin(kept, 0))
    m = data.info["paired"]["m"].bool()
    assert float(data.x[m].min()) == 0.0 and float(data.x[m].max()) == 1.0 and not data.x[~m].any()


def test_mcar_mask_rate_and_seed():
    a = mcar_mask((300, 40), 0.2, seed=5)
    assert abs(a.mean() - 0.2) < 4 * math.sqrt(0.16 / a.size)
    assert np.array_equal(a, mcar_mask((300, 40), 0.2, seed=5)) and not np.array_equal(a, mcar_mask((300, 40), 0.2, 6))
    d = tabular(table="wine", missing_rate=0.5, seed=0)
    m = d.info["paired"]["m"].numpy()
    assert np.array_equal(m == 0, d.info["hidden"]) and abs(1 - m.mean() - 0.5) < 0.02
    assert d.x.shape == (178, 13) and d.info["columns"][0] == "alcohol"


def write(path, text: str):
    path.write_text(text)
    return str(path)


def test_csv_reading_missing_tokens_and_headerless_files(tmp_path):
    t = read_csv(write(tmp_path / "a.csv", "a, b ,c\n1,,3\n4,NA,?\n7.5,8,nan\n"))
    assert t.columns == ["a", "b", "c"] and t.header
    np.testing.assert_array_equal(t.missing, [[0, 1, 0], [0, 1, 1], [0, 0, 1]])
    t = read_csv(write(tmp_path / "b.csv", "1,2\n3,\n"))
    assert not t.header and t.columns == ["c0", "c1"] and t.values.shape == (2, 2)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("a,b\n", "has a header but no data rows"),
    ("a,b\n1,2\n3,x\n", r"column 'b' holds a non-numeric value 'x' on line 3; imputation needs numeric columns"),
    ("a,b\n1,2\n3\n", r"line 3: 1 fields, but the header has 2"),
    ("a,b\n1,\n2,NA\n", r"column\(s\) 'b' have no observed values"),
    ("a,b\n1,inf\n", "non-numeric value 'inf'"),
])
def test_csv_errors_are_clear(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        read_csv(write(tmp_path / "bad.csv", text))


def test_csv_errors_for_missing_files_and_unknown_tables(tmp_path):
    with pytest.raises(ConfigError, match="CSV file not found"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="unknown table 'wines'.*breast_cancer"):
        tabular(table="wines")
    with pytest.raises(ConfigError, match="no observed values once 90% of the entries are hidden"):
        table_dataset(Table(["a", "b"], np.array([[1.0, 2.0], [3.0, 4.0]]), "t"), missing_rate=0.9, seed=2)


def test_rmse_uses_the_truths_scale():
    truth = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    hidden = np.array([[False, True], [True, False], [False, False]])
    imputed = truth + np.array([[0, 5.0], [1.0, 0], [0, 0]])
    want = math.sqrt(((5 / 20) ** 2 + (1 / 4) ** 2) / 2)
    assert scaled_rmse(imputed, truth, hidden) == pytest.approx(want, rel=1e-12)
    assert scaled_rmse(mean_impute(np.where(hidden, np.nan, truth)), truth, hidden) == pytest.approx(
        math.sqrt(((25 - 10) ** 2 / 400 + (2 - 2) ** 2 / 16) / 2), rel=1e-12)


# ----------------------------------------------------------------------------------- behaviour
def test_imputation_keeps_observed_values_exactly():
    game = _game().float()
    t = correlated_table(40)
    vals = np.where(mcar_mask(t.values.shape, 0.3, 9), np.nan, t.values)
    out = game.impute_values(vals, generator=torch.Generator().manual_seed(0))
    obs = ~np.isnan(vals)
    assert np.array_equal(out[obs], vals[obs]) and np.isfinite(out).all()


def test_short_run_imputes_a_correlated_table_far_better_than_the_mean(tmp_path):
    t = correlated_table(600)
    path = tmp_path / "corr.csv"
    np.savetxt(path, t.values, delimiter=",", header=",".join(t.columns), comments="")
    raw = {**DEFAULT_RECIPE, "name": "corr", "data": {"name": "tabular", "table": str(path), "missing_rate": 0.2},
           "train": {"steps": 600, "batch_size": 128, "threads": 1, "device": "cpu", "tensorboard": False},
           "eval": {"every": 0, "n": 600, "samples": False}, "checkpoint": {"every": 0}}
    metrics = Trainer(load_config(None, base=raw), tmp_path / "r", quiet=True).fit()
    assert metrics["rmse"] < 0.5 * metrics["rmse_mean"], metrics


# ----------------------------------------------------------------------------------------- CLI
CSV_TEXT = "height,weight,score\n" + "1.50,50.0,007\n1.62,,8e0\n1.80,81.25,?\n,70,6\n1.71,66.0,NA\n1.55,52.5,5.5\n" * 5


def test_impute_command_writes_the_table_completed_and_never_overwrites(tmp_path, capsys):
    src = write(tmp_path / "in.csv", CSV_TEXT)
    out = tmp_path / "out.csv"
    args = ["impute", src, "--out", str(out), "--steps", "5", "--train.threads=1", "--train.batch_size=8", "--quiet"]
    assert main(args) == 0
    assert "imputed 20 missing cells" in capsys.readouterr().out
    rows_in = list(csv.reader(open(src)))
    rows_out = list(csv.reader(open(out)))
    assert rows_out[0] == rows_in[0] and len(rows_out) == len(rows_in)
    for a, b in zip(rows_in[1:], rows_out[1:], strict=True):
        for cell_in, cell_out in zip(a, b, strict=True):
            if cell_in.strip().lower() in ("", "na", "?"):
                assert math.isfinite(float(cell_out))
            else:
                assert cell_out == cell_in  # verbatim: "007" stays "007", "8e0" stays "8e0"
    before = out.read_text()
    assert main(args) == 2
    assert "exists; give another --out or add --overwrite" in capsys.readouterr().err
    assert out.read_text() == before
    assert main([*args, "--overwrite"]) == 0


def test_impute_with_a_saved_run_and_its_errors(tmp_path, capsys):
    src = write(tmp_path / "in.csv", CSV_TEXT)
    run = tmp_path / "run"
    base = ["--train.threads=1", "--train.batch_size=8", "--quiet"]
    assert main(["impute", src, "--out", str(tmp_path / "a.csv"), "--steps", "3", "--save-run", str(run), *base]) == 0
    assert main(["impute", src, "--out", str(tmp_path / "b.csv"), "--run", str(run)]) == 0
    capsys.readouterr()
    other = write(tmp_path / "other.csv", "a,b\n1,\n2,3\n")
    assert main(["impute", other, "--out", str(tmp_path / "c.csv"), "--run", str(run)]) == 2
    assert "trained on 3 columns" in capsys.readouterr().err
    full = write(tmp_path / "full.csv", "a,b\n1,2\n")
    assert main(["impute", full, "--out", str(tmp_path / "d.csv")]) == 2
    assert "has no missing cells" in capsys.readouterr().err
    bad = write(tmp_path / "bad.csv", "a,b\n1,x\n")
    assert main(["impute", bad, "--out", str(tmp_path / "e.csv")]) == 2
    assert "non-numeric value 'x'" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()
