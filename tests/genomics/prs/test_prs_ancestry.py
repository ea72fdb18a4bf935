"""Ancestry-aware PGS reporting on a simulated Balding–Nichols three-population panel."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

from pmed.errors import ValidationError
from pmed.genomics.prs.ancestry import (
    AncestryReference,
    _augment,
    _procrustes,
    _procrustes_pad,
    adjust_scores,
)
from pmed.genomics.prs.plots import pca_plot, score_distribution_plot
from pmed.io.jsonio import to_json
from pmed.plots._base import save

POPS = ("AFR", "EAS", "EUR")
N_REF, N_TGT, N_SNP, FST = 100, 100, 2000, 0.05


def balding_nichols(seed: int = 1):
    """3 populations drifted from one ancestral frequency (Fst 0.05): reference and targets."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(0.05, 0.95, N_SNP)
    a, b = p0 * (1 - FST) / FST, (1 - p0) * (1 - FST) / FST
    ref, tgt, ref_lab, tgt_lab = [], [], [], []
    for pop in POPS:
        f = rng.beta(a, b)
        ref.append(rng.binomial(2, f, size=(N_REF, N_SNP)))
        tgt.append(rng.binomial(2, f, size=(N_TGT, N_SNP)))
        ref_lab += [pop] * N_REF
        tgt_lab += [pop] * N_TGT
    return (np.vstack(ref).astype(float), np.array(ref_lab),
            np.vstack(tgt).astype(float), np.array(tgt_lab))


@pytest.fixture(scope="module")
def panel():
    G, lab, T, tlab = balding_nichols()
    ref = AncestryReference(n_components=6, seed=0, n_jobs=1).fit(G, lab)
    pred = ref.predict(T)
    return {"G": G, "lab": lab, "T": T, "tlab": tlab, "ref": ref, "pred": pred}


def _scores(labels, seed: int) -> pd.DataFrame:
    """A score whose mean shifts with population, and one whose SD depends on it."""
    rng = np.random.default_rng(seed)
    k = np.searchsorted(POPS, labels)
    shift = np.array([0.0, 2.0, -1.5])[k] + rng.normal(size=len(k))
    var = 3.0 + np.array([1.0, 2.0, 0.5])[k] * rng.normal(size=len(k))
    return pd.DataFrame({"PGS_shift": shift, "PGS_var": var})


@pytest.fixture(scope="module")
def adjusted(panel):
    ref, pred = panel["ref"], panel["pred"]
    ref_scores = _scores(panel["lab"], 11)
    tgt_scores = _scores(panel["tlab"], 12)
    tgt_scores.index = [f"T{i}" for i in range(len(tgt_scores))]
    out = adjust_scores(ref_scores, ref.pcs_, panel["lab"], tgt_scores,
                        pred[list(ref.pcs_.columns)], pred["MostSimilarPop"], n_pcs=4,
                        include_reference=True)
    return out, ref_scores, tgt_scores


# -- PCA, projection, assignment -----------------------------------------------------------

def test_assignment_recovers_the_true_population(panel):
    pred, tlab = panel["pred"], panel["tlab"]
    assert (pred["MostSimilarPop"].to_numpy() == tlab).mean() >= 0.99
    prob = pred[[f"RF_P_{p}" for p in POPS]].to_numpy()
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    # the low-confidence flag is exactly "best probability below pop_threshold = 0.5"
    np.testing.assert_array_equal(pred["MostSimilarPop_LowConfidence"], prob.max(axis=1) < 0.5)
    assert pred["MostSimilarPop_LowConfidence"].mean() < 0.05
    # targets from the reference populations lie inside the reference PC space
    assert pred["Mahalanobis_P_ALL"].min() > 1e-4
    assert list(panel["ref"].classes_) == list(POPS)
    assert set(panel["ref"].reference_assignment_["MostSimilarPop"]) == set(POPS)


def test_threshold_flags_ambiguous_samples(panel):
    ref = panel["ref"]
    # a sample halfway between two population centroids is not confidently either
    pcs = ref.pcs_
    mid = (pcs[panel["lab"] == "AFR"].mean() + pcs[panel["lab"] == "EUR"].mean()) / 2
    out = ref.predict(pcs=mid.to_frame().T)
    assert out["MostSimilarPop"].iloc[0] in POPS  # kept, as pgsc_calc keeps it
    strict = copy.deepcopy(ref).set_params(pop_threshold=1.0)  # the threshold acts at predict
    assert strict.predict(pcs=mid.to_frame().T)["MostSimilarPop_LowConfidence"].iloc[0]


def test_projecting_reference_samples_reproduces_their_pcs(panel):
    ref, G = panel["ref"], panel["G"]
    simple = ref.transform(G, projection="simple")
    np.testing.assert_allclose(simple.to_numpy(), ref.pcs_.to_numpy(), atol=1e-8)
    # OADP adds each sample to the panel once more: close, not identical
    idx = np.arange(0, len(G), 15)
    oadp = ref.transform(G[idx]).to_numpy()
    for j in range(2):
        assert np.corrcoef(oadp[:, j], ref.pcs_.to_numpy()[idx, j])[0, 1] > 0.999


def test_pcs_separate_populations_and_are_orthogonal(panel):
    ref = panel["ref"]
    P = ref.pcs_.to_numpy()
    gram = P.T @ P
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-6 * gram.max())
    # 3 populations: 2 structure PCs well above the noise PCs
    evr = ref.explained_variance_ratio_
    assert evr[1] > 3 * evr[2]
    assert np.all(np.diff(evr) <= 1e-12)


def test_oadp_corrects_the_shrinkage_of_projected_pcs(panel):
    ref, T, tlab, lab = panel["ref"], panel["T"], panel["tlab"], panel["lab"]
    simple = ref.transform(T, projection="simple").to_numpy()[:, :2]
    oadp = panel["pred"][["PC1", "PC2"]].to_numpy()
    P = ref.pcs_.to_numpy()[:, :2]

    def spread(X, labels):  # distance of the population centroids from the panel centre
        return np.array([np.linalg.norm(X[labels == p].mean(axis=0)) for p in POPS])

    ratio_simple = spread(simple, tlab) / spread(P, lab)
    ratio_oadp = spread(oadp, tlab) / spread(P, lab)
    assert np.all(ratio_simple < 0.95)  # out-of-sample scores shrink towards 0
    np.testing.assert_allclose(ratio_oadp, 1.0, atol=0.06)


def test_online_augmentation_is_exact_with_the_full_svd():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 200))
    w = rng.normal(size=200)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    ref_rows, new_row = _augment(U, s, Vt.T, w, 10)
    Ua, sa, _ = np.linalg.svd(np.vstack([X, w]), full_matrices=False)
    direct = Ua[:, :10] * sa[:10]
    got = np.vstack([ref_rows, new_row])
    signs = np.sign(np.sum(got * direct, axis=0))  # singular vectors are defined up to sign
    np.testing.assert_allclose(got * signs, direct, atol=1e-9)


def test_procrustes_recovers_a_known_similarity_transform():
    rng = np.random.default_rng(6)
    Y = rng.normal(size=(50, 4))
    R, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    X = 0.3 * Y @ R.T + np.array([1.0, -2.0, 0.5, 3.0])  # Y = (X − c₀)·R / 0.3
    R_hat, rho, c = _procrustes(Y, X)
    np.testing.assert_allclose(rho * X @ R_hat + c, Y, atol=1e-10)
    assert abs(rho - 1 / 0.3) < 1e-10
    # fewer target dimensions: the 2 missing ones are estimated, Y's 4 still come out exactly
    Z = rng.normal(size=(50, 2))
    R6, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    X6 = 2.0 * np.hstack([Y, Z]) @ R6.T - 1.0
    errors = []
    for tol in (1e-6, 1e-14):  # FRAPOSA's stopping rule, then run to convergence
        R_hat, rho, c = _procrustes_pad(Y, X6, np.zeros((50, 2)), tol=tol, max_iter=100_000)
        errors.append(np.abs((rho * X6 @ R_hat + c)[:, :4] - Y).max())
    assert errors[0] < 0.01 and errors[1] < 1e-5


def test_admixed_samples_are_assigned_to_a_parent_population(panel):
    G, lab = panel["G"], panel["lab"]
    rng = np.random.default_rng(8)
    # each admixed genome takes one allele copy from AFR and one from EAS frequencies
    f_afr = G[lab == "AFR"].mean(axis=0) / 2
    f_eas = G[lab == "EAS"].mean(axis=0) / 2
    mix = (rng.binomial(1, f_afr, size=(20, N_SNP))
           + rng.binomial(1, f_eas, size=(20, N_SNP))).astype(float)
    pred = panel["ref"].predict(mix)
    assert set(pred["MostSimilarPop"]) <= {"AFR", "EAS"}
    assert pred["RF_P_EUR"].max() < 0.5
    # they sit between the two parents on the PCs
    pcs = panel["ref"].pcs_
    mid = (pcs[lab == "AFR"].mean() + pcs[lab == "EAS"].mean()) / 2
    gap = np.linalg.norm(pcs[lab == "AFR"].mean()[:2] - pcs[lab == "EAS"].mean()[:2])
    assert np.linalg.norm(pred[["PC1", "PC2"]].mean() - mid[:2]) < 0.15 * gap


def test_missing_calls_are_set_to_the_reference_mean(panel):
    ref, T = panel["ref"], panel["T"][:5].copy()
    rng = np.random.default_rng(3)
    holes = rng.random(T.shape) < 0.05
    with_nan = T.copy()
    with_nan[holes] = np.nan
    filled = T.copy()
    filled[holes] = np.broadcast_to(2 * ref.allele_freq_, T.shape)[holes]
    for projection in ("simple", "oadp"):
        np.testing.assert_allclose(ref.transform(with_nan, projection=projection),
                                   ref.transform(filled, projection=projection), atol=1e-9)


def test_dataframes_are_matched_by_variant_name(panel):
    G, lab, T = panel["G"][:, :300], panel["lab"], panel["T"][:6, :300]
    names = [f"rs{i}" for i in range(G.shape[1])]
    ref = AncestryReference(n_components=3, n_pcs_assign=3, projection="simple").fit(
        pd.DataFrame(G, columns=names), lab)
    shuffled = pd.DataFrame(T, columns=names).iloc[:, ::-1]
    np.testing.assert_allclose(ref.transform(shuffled), ref.transform(T), atol=1e-10)
    with pytest.raises(ValidationError, match="rs299"):
        ref.transform(pd.DataFrame(T, columns=names).drop(columns="rs299"))


# -- errors ---------------------------------------------------------------------------------

def test_mismatched_variant_count_is_refused(panel):
    with pytest.raises(ValidationError, match="1999 variants, the reference 2000") as e:
        panel["ref"].transform(panel["T"][:, :-1])
    assert e.value.fix


def test_reference_problems_are_refused(panel):
    G, lab = panel["G"][:, :200], panel["lab"]
    with pytest.raises(ValidationError, match="at least 2 are needed"):
        AncestryReference(n_components=3, n_pcs_assign=3).fit(G[:100], lab[:100])
    with pytest.raises(ValidationError, match=r"fewer than 10 reference samples: EUR \(4\)"):
        AncestryReference(n_components=3, n_pcs_assign=3).fit(G[:204], lab[:204])
    holed = G.copy()
    holed[:, [5, 17]] = np.nan
    with pytest.raises(ValidationError, match=r"no called genotype.*columns 6, 18") as e:
        AncestryReference(n_components=3, n_pcs_assign=3).fit(holed, lab)
    assert "drop variants" in e.value.fix
    bad = G.copy()
    bad[2, 3] = 3
    with pytest.raises(ValidationError, match=r"outside \[0, 2\] at \(row, column\) \(3, 4\)"):
        AncestryReference(n_components=3, n_pcs_assign=3).fit(bad, lab)
    with pytest.raises(ValidationError, match="299 labels for 300 samples"):
        AncestryReference(n_components=3, n_pcs_assign=3).fit(G, lab[:-1])
    with pytest.raises(ValidationError, match="projection='pca'"):
        AncestryReference(projection="pca").fit(G, lab)


def test_adjust_scores_input_problems(panel):
    ref, pred, lab = panel["ref"], panel["pred"], panel["lab"]
    s = _scores(lab, 1)
    t = _scores(panel["tlab"], 2)
    with pytest.raises(ValidationError, match="absent from the reference: SAS"):
        adjust_scores(s, ref.pcs_, lab, t, pred, np.full(len(t), "SAS"))
    with pytest.raises(ValidationError, match="score columns differ"):
        adjust_scores(s, ref.pcs_, lab, t.rename(columns={"PGS_var": "other"}), pred,
                      pred["MostSimilarPop"])
    s_nan = s.copy()
    s_nan.iloc[4, 0] = np.nan
    with pytest.raises(ValidationError, match="missing or infinite in rows 5"):
        adjust_scores(s_nan, ref.pcs_, lab, t, pred, pred["MostSimilarPop"])
    with pytest.raises(ValidationError, match="n_pcs=8 are needed"):
        adjust_scores(s, ref.pcs_, lab, t, pred[["PC1", "PC2"]], pred["MostSimilarPop"], n_pcs=8)


# -- score adjustment -------------------------------------------------------------------------

def test_long_form_columns_named_as_pgsc_calc(adjusted):
    out, ref_scores, tgt_scores = adjusted
    assert list(out.columns) == ["IID", "PGS", "REFERENCE", "SUM", "MostSimilarPop",
                                 "percentile_MostSimilarPop", "Z_MostSimilarPop", "Z_norm1",
                                 "Z_norm2"]
    tgt = out[~out["REFERENCE"]]
    assert len(tgt) == 2 * len(tgt_scores) and len(out) == 2 * (len(tgt_scores) + len(ref_scores))
    one = tgt[tgt["PGS"] == "PGS_var"].set_index("IID")
    np.testing.assert_array_equal(one.loc[tgt_scores.index, "SUM"], tgt_scores["PGS_var"])
    models = json.loads(to_json(out.attrs["models"]))
    assert models["scores"]["PGS_var"]["mean+var"]["converged"] is True
    assert len(models["scores"]["PGS_shift"]["empirical"]["EUR"]["percentiles"]) == 101


def test_percentile_and_z_against_the_most_similar_population(adjusted, panel):
    out, ref_scores, _ = adjusted
    tgt = out[(~out["REFERENCE"]) & (out["PGS"] == "PGS_shift")]
    for pop in POPS:
        dist = ref_scores["PGS_shift"].to_numpy()[panel["lab"] == pop]
        rows = tgt[tgt["MostSimilarPop"] == pop]
        v = rows["SUM"].to_numpy()
        below = (dist[None, :] < v[:, None]).mean(axis=1)  # no ties in continuous scores
        np.testing.assert_allclose(rows["percentile_MostSimilarPop"], 100 * below)
        np.testing.assert_allclose(rows["Z_MostSimilarPop"], (v - dist.mean()) / dist.std())


def test_mean_shift_is_removed(adjusted, panel):
    out, ref_scores, _ = adjusted
    tgt = out[(~out["REFERENCE"]) & (out["PGS"] == "PGS_shift")].copy()
    allref = ref_scores["PGS_shift"]
    tgt["Z_raw"] = (tgt["SUM"] - allref.mean()) / allref.std(ddof=0)
    tgt["truth"] = panel["tlab"]
    g = tgt.groupby("truth")
    raw = g["Z_raw"].mean()
    assert raw["EAS"] - raw["EUR"] > 1.5  # the pooled reference misplaces every population
    # bounds of ~3 standard errors (100 targets against 100 reference samples per population)
    for col in ("Z_MostSimilarPop", "Z_norm1"):
        assert g[col].mean().abs().max() < 0.4, col
        assert g[col].std().between(0.7, 1.3).all(), col


def test_ancestry_dependent_variance_is_fixed_by_z_norm2(adjusted, panel):
    out, _, _ = adjusted
    tgt = out[(~out["REFERENCE"]) & (out["PGS"] == "PGS_var")].copy()
    tgt["truth"] = panel["tlab"]
    sd = tgt.groupby("truth")[["Z_norm1", "Z_norm2"]].std()
    assert sd.loc["EAS", "Z_norm1"] / sd.loc["EUR", "Z_norm1"] > 2.5  # SD 2 vs 0.5
    assert sd["Z_norm2"].between(0.7, 1.3).all()
    assert sd.loc["EAS", "Z_norm1"] > 1.15 and sd.loc["EUR", "Z_norm1"] < 0.6  # expected 1.5, 0.4
    assert tgt.groupby("truth")["Z_norm2"].mean().abs().max() < 0.4


def test_reference_adjustment_invariants(adjusted, panel):
    out, _, _ = adjusted
    ref = out[out["REFERENCE"] & (out["PGS"] == "PGS_var")]
    P = panel["ref"].pcs_.to_numpy()[:, :4]
    z1 = ref["Z_norm1"].to_numpy()
    # least-squares residuals: mean 0, SD 1 and uncorrelated with every PC used
    assert abs(z1.mean()) < 1e-10 and abs(z1.std() - 1) < 1e-10
    np.testing.assert_allclose(P.T @ z1, 0, atol=1e-6)
    # at the likelihood optimum the variance intercept's score equation gives mean(Z²) = 1
    assert abs(np.mean(ref["Z_norm2"].to_numpy() ** 2) - 1) < 1e-4
    # reference samples against their own population: empirical Z has mean 0, SD 1 there
    zs = ref.groupby("MostSimilarPop")["Z_MostSimilarPop"].agg(["mean", lambda v: v.std(ddof=0)])
    np.testing.assert_allclose(zs.to_numpy(), [[0, 1]] * 3, atol=1e-10)


def test_long_form_scores_and_id_matching(panel, adjusted):
    ref, pred, lab = panel["ref"], panel["pred"], panel["lab"]
    out, ref_scores, tgt_scores = adjusted
    ids = tgt_scores.index
    long = tgt_scores.rename_axis("IID").reset_index().melt(
        id_vars="IID", var_name="PGS", value_name="SUM")  # as compute_scores writes scores
    pcs = pred[list(ref.pcs_.columns)].set_axis(ids)
    pops = pred["MostSimilarPop"].set_axis(ids)
    perm = np.random.default_rng(2).permutation(len(ids))  # PCs, labels in another order
    again = adjust_scores(ref_scores, ref.pcs_, lab, long, pcs.iloc[perm], pops.iloc[perm],
                          n_pcs=4)
    want = out[~out["REFERENCE"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, want, check_exact=False, rtol=1e-9)
    with pytest.raises(ValidationError, match="lacks 1 of the target samples"):
        adjust_scores(ref_scores, ref.pcs_, lab, long, pcs.iloc[1:], pops, n_pcs=4)
    with pytest.raises(ValidationError, match=r"repeats \(IID, PGS\) pairs in rows 301"):
        adjust_scores(ref_scores, ref.pcs_, lab, pd.concat([long.iloc[:300], long]), pcs, pops)


def test_adjustment_does_not_depend_on_the_units_of_the_score(panel, adjusted):
    ref, pred, lab = panel["ref"], panel["pred"], panel["lab"]
    out, ref_scores, tgt_scores = adjusted
    # e.g. AVG (SUM / number of alleles) instead of SUM: same Z, percentiles
    small = adjust_scores(ref_scores * 1e-4 + 7, ref.pcs_, lab, tgt_scores * 1e-4 + 7, pred,
                          pred["MostSimilarPop"], n_pcs=4)
    want = out[~out["REFERENCE"]].reset_index(drop=True)
    cols = ["percentile_MostSimilarPop", "Z_MostSimilarPop", "Z_norm1", "Z_norm2"]
    np.testing.assert_allclose(small[cols].to_numpy(), want[cols].to_numpy(), atol=1e-5)
    m_small = small.attrs["models"]["scores"]["PGS_var"]["mean+var"]
    m = out.attrs["models"]["scores"]["PGS_var"]["mean+var"]
    assert m_small["var_intercept"] == pytest.approx(m["var_intercept"] + 2 * np.log(1e-4),
                                                     abs=1e-4)


def test_two_step_and_method_selection(panel):
    ref, pred = panel["ref"], panel["pred"]
    s, t = _scores(panel["lab"], 21), _scores(panel["tlab"], 22)
    two = adjust_scores(s, ref.pcs_, panel["lab"], t, pred, pred["MostSimilarPop"],
                        norm2_2step=True, methods=["mean+var"])
    assert "Z_MostSimilarPop" not in two.columns and {"Z_norm1", "Z_norm2"} <= set(two.columns)
    two = two[two["PGS"] == "PGS_var"].assign(truth=panel["tlab"])
    assert two.groupby("truth")["Z_norm2"].std().between(0.7, 1.3).all()
    emp = adjust_scores(s, ref.pcs_, panel["lab"], t, pred, pred["MostSimilarPop"],
                        methods=["empirical"])
    assert "Z_norm1" not in emp.columns


def test_ref_train_restricts_the_fits(panel, adjusted):
    ref, pred, lab = panel["ref"], panel["pred"], panel["lab"]
    out, ref_scores, tgt_scores = adjusted
    train = np.arange(len(lab)) % 3 != 0  # e.g. leave out related reference samples
    got = adjust_scores(ref_scores, ref.pcs_, lab, tgt_scores, pred, pred["MostSimilarPop"],
                        ref_train=train, include_reference=True)
    # the same as fitting on the training samples alone, for targets and all reference rows
    alone = adjust_scores(ref_scores[train], ref.pcs_[train], lab[train],
                          pd.concat([tgt_scores, ref_scores], ignore_index=True),
                          pd.concat([pred[list(ref.pcs_.columns)], ref.pcs_], ignore_index=True),
                          np.r_[pred["MostSimilarPop"], lab])
    cols = ["percentile_MostSimilarPop", "Z_MostSimilarPop", "Z_norm1", "Z_norm2"]
    for score in ("PGS_shift", "PGS_var"):
        a = got[got["PGS"] == score]
        b = alone[alone["PGS"] == score]
        np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(got["Z_norm1"], out["Z_norm1"])
    with pytest.raises(ValidationError, match="fewer than 2 training samples: AFR"):
        adjust_scores(ref_scores, ref.pcs_, lab, tgt_scores, pred, pred["MostSimilarPop"],
                      ref_train=lab != "AFR")


def test_constant_score_gives_nan(panel):
    ref, pred = panel["ref"], panel["pred"]
    s = pd.Series(np.ones(len(panel["lab"])), name="flat")
    out = adjust_scores(s, ref.pcs_, panel["lab"], pd.Series(np.ones(len(pred)), name="flat"), pred,
                        pred["MostSimilarPop"])
    adjusted_cols = ["percentile_MostSimilarPop", "Z_MostSimilarPop", "Z_norm1", "Z_norm2"]
    assert out[adjusted_cols].isna().all().all()  # pgsc_calc skips zero-variance scores
    assert out["SUM"].eq(1).all()


def test_target_pgs_percentile_is_rank_based():
    # a tiny known case: reference values 1..10 in one population, 11..20 in another
    pcs = np.column_stack([np.r_[np.zeros(10), np.ones(10)], np.arange(20) % 3])
    ref_s = np.r_[np.arange(1, 11), np.arange(11, 21)].astype(float)
    labels = ["A"] * 10 + ["B"] * 10
    out = adjust_scores(ref_s, pcs, labels, [5.0, 5.5, 0.5, 30.0], pcs[:4], ["A", "A", "A", "B"],
                        n_pcs=2, methods=["empirical"])
    # kind="rank": a tie counts as the mean of its ranks (5 is the 5th of 10 → 50)
    np.testing.assert_allclose(out["percentile_MostSimilarPop"], [50.0, 50.0, 0.0, 100.0])
    sd = np.arange(1, 11).std()
    np.testing.assert_allclose(out["Z_MostSimilarPop"],
                               [(5 - 5.5) / sd, 0.0, (0.5 - 5.5) / sd, (30 - 15.5) / sd])


# pgscatalog.calc 0.3.1 (pgsc_calc's ancestry step), run once on this small data set:
# pgs_adjust(ref, target, ["S"], "pop", "MostSimilarPop", n_pcs=2,
#            use_method=["empirical", "mean", "mean+var"], norm2_2step=False / True)
TINY_REF_PCS = [
    [-2.695, -2.04], [-2.25, -0.059], [-4.951, -2.302], [-2.872, -1.316], [-3.017, -1.853],
    [-2.121, -0.222], [-2.934, 0.127], [-2.532, -1.859], [-2.631, -1.959], [-2.122, -1.05],
    [-3.185, -1.681], [-1.777, -1.155], [2.572, -1.352], [3.532, -0.635], [3.413, -0.569],
    [5.142, -1.406], [2.488, -1.814], [3.616, 0.129], [2.886, -1.84], [2.176, -0.349],
    [3.743, -0.457], [2.334, -0.768], [3.117, -0.781], [3.871, -0.776], [0.679, 3.068],
    [0.289, 3.631], [-1.457, 2.68], [-0.47, 2.361], [-0.275, 4.495], [-0.866, 3.968],
    [-1.683, 2.665], [0.163, 3.586], [0.711, 3.793], [-0.349, 2.538], [0.858, 2.809],
    [-1.276, 1.867]]
TINY_REF_SCORE = [
    -0.919, 0.497, 0.142, 0.69, -0.427, 0.159, 0.626, -0.309, 0.457, -0.662, -0.363, -0.382,
    -0.892, 2.474, 0.561, 1.525, 2.461, 2.393, 2.831, 1.303, 0.653, 1.341, -1.875, -1.394,
    -1.661, -1.499, -0.8, -1.453, -1.189, -0.35, -1.178, -0.631, -1.467, -1.103, -1.475, -1.17]
TINY_TGT_PCS = [[-2.16, -2.727], [3.434, -0.762], [-0.594, 1.554], [3.072, -1.529],
                [0.233, 3.022]]
TINY_TGT_SCORE = [1.602, 1.021, -1.512, 1.859, -0.89]
TINY_TGT_POP = ["A", "B", "C", "B", "C"]
PGSC_CALC = {
    "percentile_MostSimilarPop": [100.0, 41.66666667, 8.333333333, 66.66666667, 75.0],
    "Z_MostSimilarPop": [3.187728107, 0.0475665367, -0.9187558752, 0.5967388594, 0.7265401547],
    "Z_norm1": [1.075375863, 0.196807861, -0.9117694125, 0.8424176757, 0.02528503495],
    "Z_norm2": [1.444250021, 0.4158928316, -1.47675753, 0.7987641455, -0.008857416305],
}
PGSC_CALC_Z_NORM2_2STEP = [1.254023847, 0.167613496, -1.176503265, 0.7088170238, 0.03306192111]


def test_matches_pgscatalog_calc_outputs():
    labels = [p for p in "ABC" for _ in range(12)]
    args = (pd.Series(TINY_REF_SCORE, name="S"), TINY_REF_PCS, labels,
            pd.Series(TINY_TGT_SCORE, name="S"), TINY_TGT_PCS, TINY_TGT_POP)
    out = adjust_scores(*args, n_pcs=2)
    for col, want in PGSC_CALC.items():
        tol = 1e-6 if col == "Z_norm2" else 1e-8  # Z_norm2: a BFGS optimum
        np.testing.assert_allclose(out[col], want, rtol=0, atol=tol, err_msg=col)
    # the two-step variant with pgsc_calc's penalised gamma GLM (scikit-learn's alpha = 1)
    two = adjust_scores(*args, n_pcs=2, norm2_2step=True, gamma_alpha=1.0)
    np.testing.assert_allclose(two["Z_norm2"], PGSC_CALC_Z_NORM2_2STEP, rtol=0, atol=1e-8)
    unpenalised = adjust_scores(*args, n_pcs=2, norm2_2step=True)
    assert np.abs(unpenalised["Z_norm2"] - PGSC_CALC_Z_NORM2_2STEP).max() > 0.01


# -- plots ------------------------------------------------------------------------------------

def test_plots_are_drawn_and_saved(panel, adjusted, tmp_path):
    ref, pred = panel["ref"], panel["pred"]
    fig = pca_plot(ref.pcs_, panel["lab"], pred, target_populations=pred["MostSimilarPop"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PC1" and ax.get_ylabel() == "PC2"
    assert len(ax.collections) == 3 + len(set(pred["MostSimilarPop"]))
    path = save(fig, tmp_path / "pca.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    out, _, _ = adjusted
    fig = score_distribution_plot(out, pgs="PGS_shift", column="Z_norm1")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Z_norm1"
    assert len(ax.patches) == 3  # one step histogram per reference population
    save(fig, tmp_path / "dist.png")
    assert (tmp_path / "dist.png").stat().st_size > 1000
    with pytest.raises(ValidationError, match="holds 2 scores"):
        score_distribution_plot(out)
    with pytest.raises(ValidationError, match="no reference rows"):
        score_distribution_plot(out[~out["REFERENCE"]], pgs="PGS_var")


def test_estimator_conventions(panel):
    ref = AncestryReference(n_components=4, n_pcs_assign=3)
    assert clone(ref).get_params()["n_pcs_assign"] == 3
    assert not hasattr(ref, "pcs_")
    fitted = ref.fit(panel["G"][:, :300], panel["lab"])
    assert fitted is ref and ref.pcs_.shape == (300, 4) and ref.n_features_in_ == 300
    assert stats.spearmanr(ref.singular_values_, np.arange(len(ref.singular_values_)))[0] < 0
