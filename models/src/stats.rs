//! The statistical model beside the rules: per pair and window, a feature vector; features
//! standardized, a PCA (smartcore) fitted on the learning windows, and the squared
//! reconstruction error as the anomaly score. The threshold starts from a high quantile of
//! the learning windows' errors and is never below the largest of them times a margin, so a
//! capture scored against its own baseline raises nothing. Deterministic: SVD has no random
//! start, and samples are kept in window order.

use ndarray::{Array1, Array2, Axis};
use smartcore::decomposition::pca::{PCAParameters, PCA};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::baseline::round6;
use crate::baseline::StatModel;
use crate::WINDOW_SECS;

/// Feature names, in vector order.
pub const FEATURES: [&str; NF] = [
    "requests",
    "responses",
    "bytes",
    "reads",
    "writes",
    "controls",
    "other_functions",
    "distinct_points",
    "distinct_functions",
    "write_ratio",
    "exception_ratio",
    "interarrival_mean",
    "interarrival_cv",
];

/// Number of features.
pub const NF: usize = 13;

/// Learning windows kept in the baseline (decimated by two whenever full), so that learning
/// can continue and refit.
pub const MAX_SAMPLES: usize = 2048;
/// Fewest learning windows to fit a model; fewer and the model is left out.
pub const MIN_SAMPLES: usize = 30;
/// Share of the variance the kept components explain.
pub const VARIANCE_KEPT: f64 = 0.9;
/// The learning quantile the threshold starts from.
pub const QUANTILE: f64 = 0.99;
/// Margin over the quantile (and over the largest learning error).
pub const MARGIN: f64 = 1.5;

/// Floor of a feature's standard deviation: this plus this share of its mean.
pub const STD_FLOOR: f64 = 0.1;

/// Adds a learning window, decimating when full.
pub(crate) fn push_sample(samples: &mut Vec<Vec<f64>>, f: &[f64; NF]) {
    if samples.len() >= MAX_SAMPLES {
        let mut i = 0;
        samples.retain(|_| {
            i += 1;
            i % 2 == 0
        });
    }
    samples.push(f.iter().map(|&x| round6(x)).collect());
}

/// Learning windows of one run held in memory (not in the baseline) so that the threshold
/// covers every window, not only the kept sample.
pub const MAX_THRESHOLD_WINDOWS: usize = 1 << 18;

/// Fits the model on the kept learning windows `samples`; the threshold also covers
/// `all` (every window of the current run). `None` with fewer than [`MIN_SAMPLES`].
pub(crate) fn fit(samples: &[Vec<f64>], all: &[[f64; NF]]) -> Option<StatModel> {
    let m = samples.len();
    if m < MIN_SAMPLES {
        return None;
    }
    let mut x = Array2::<f64>::zeros((m, NF));
    for (i, s) in samples.iter().enumerate() {
        for (j, v) in s.iter().take(NF).enumerate() {
            if let Some(c) = x.get_mut((i, j)) {
                *c = *v;
            }
        }
    }
    let mean: Array1<f64> = x.mean_axis(Axis(0))?;
    // A feature that barely moved while learning must not turn every small wobble into a
    // huge z-score: its deviation is floored at a share of its typical value.
    let raw_std: Array1<f64> = x.std_axis(Axis(0), 0.0);
    let std: Array1<f64> =
        ndarray::Zip::from(&raw_std).and(&mean).map_collect(|&s, &m| s.max(STD_FLOOR + STD_FLOOR * m.abs()));
    let z = (&x - &mean) / &std;
    let rows: Vec<Vec<f64>> = z.outer_iter().map(|r| r.to_vec()).collect();
    let dm = DenseMatrix::from_2d_vec(&rows).ok()?;
    let pca = PCA::fit(&dm, PCAParameters::default().with_n_components(NF)).ok()?;
    let proj = pca.components();
    let at = |r: usize, c: usize| -> f64 {
        use smartcore::linalg::basic::arrays::Array;
        *proj.get((r, c))
    };
    // Columns of the projection are the components; order them by the variance they carry.
    let mut comps: Vec<(f64, Vec<f64>)> = (0..NF)
        .map(|c| {
            let v: Vec<f64> = (0..NF).map(|r| at(r, c)).collect();
            let var = rows.iter().map(|row| dot(row, &v).powi(2)).sum::<f64>() / m as f64;
            (var, v)
        })
        .collect();
    comps.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = comps.iter().map(|c| c.0).sum();
    let mut kept = Vec::new();
    let mut acc = 0.0;
    for (var, v) in comps {
        if total <= 0.0 || acc / total >= VARIANCE_KEPT {
            break;
        }
        acc += var;
        kept.push(v.into_iter().map(round6).collect::<Vec<f64>>());
    }
    let mut model = StatModel {
        window_secs: WINDOW_SECS as u32,
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        mean: mean.iter().map(|&v| round6(v)).collect(),
        std: std.iter().map(|&v| round6(v).max(1e-6)).collect(),
        components: kept,
        threshold: 0.0,
        quantile: QUANTILE,
        samples: samples.to_vec(),
    };
    let mut errs: Vec<f64> = samples
        .iter()
        .map(|s| {
            let mut f = [0.0; NF];
            for (d, v) in f.iter_mut().zip(s) {
                *d = *v;
            }
            error(&model, &f).0
        })
        .chain(all.iter().map(|f| error(&model, f).0))
        .collect();
    errs.sort_by(f64::total_cmp);
    let q = errs.get(((errs.len() as f64 - 1.0) * QUANTILE) as usize).copied().unwrap_or(0.0);
    let max = errs.last().copied().unwrap_or(0.0);
    model.threshold = round6((q * MARGIN).max(max * 1.1).max(NF as f64) + 1e-6);
    Some(model)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Squared reconstruction error of a window, and the per-feature squared residuals
/// (standardized), for naming what moved.
pub(crate) fn error(model: &StatModel, f: &[f64; NF]) -> (f64, [f64; NF]) {
    let mut z = [0.0; NF];
    for (i, zi) in z.iter_mut().enumerate() {
        let (Some(&x), Some(&m), Some(&s)) = (f.get(i), model.mean.get(i), model.std.get(i)) else { continue };
        *zi = (x - m) / s;
    }
    let mut recon = [0.0; NF];
    for c in &model.components {
        let p = dot(&z, c);
        for (r, ci) in recon.iter_mut().zip(c) {
            *r += p * ci;
        }
    }
    let mut res = [0.0; NF];
    let mut total = 0.0;
    for i in 0..NF {
        let d = z.get(i).copied().unwrap_or(0.0) - recon.get(i).copied().unwrap_or(0.0);
        if let Some(r) = res.get_mut(i) {
            *r = d * d;
        }
        total += d * d;
    }
    (total, res)
}

/// The three features that moved most, as `name observed (learned mean)`.
pub(crate) fn top_features(model: &StatModel, f: &[f64; NF], res: &[f64; NF]) -> Vec<String> {
    let mut idx: Vec<usize> = (0..NF).collect();
    idx.sort_by(|&a, &b| {
        res.get(b).copied().unwrap_or(0.0).total_cmp(&res.get(a).copied().unwrap_or(0.0)).then(a.cmp(&b))
    });
    idx.into_iter()
        .take(3)
        .map(|i| {
            let name = FEATURES.get(i).copied().unwrap_or("?");
            let seen = natural(i, f.get(i).copied().unwrap_or(0.0));
            let mean = natural(i, model.mean.get(i).copied().unwrap_or(0.0));
            format!("{name} {seen:.3} (learned mean {mean:.3})")
        })
        .collect()
}

/// Undoes the log transform of count features, for people.
fn natural(i: usize, v: f64) -> f64 {
    match i {
        0..=7 => v.exp_m1(),
        11 => v.exp_m1() / 1000.0,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: usize) -> [f64; NF] {
        let t = i as f64;
        let mut f = [0.0; NF];
        f[0] = 4.0 + (t * 0.7).sin() * 0.1;
        f[1] = f[0];
        f[2] = f[0] + 2.0;
        f[3] = f[0];
        f[11] = 6.0 + (t * 1.3).cos() * 0.05;
        f
    }

    #[test]
    fn identical_windows_fit_without_trouble() {
        let samples: Vec<Vec<f64>> = (0..50).map(|_| sample(0).to_vec()).collect();
        let m = fit(&samples, &[]).expect("model");
        assert!(error(&m, &sample(0)).0 < m.threshold);
        assert!(m.threshold.is_finite());
    }

    #[test]
    fn learning_windows_stay_under_the_threshold_and_a_flood_does_not() {
        let mut samples = Vec::new();
        for i in 0..100 {
            push_sample(&mut samples, &sample(i));
        }
        let m = fit(&samples, &[]).expect("model");
        for i in 0..100 {
            assert!(error(&m, &sample(i)).0 < m.threshold);
        }
        let mut flood = sample(0);
        flood[0] = 9.0;
        flood[4] = 9.0;
        flood[9] = 1.0;
        flood[11] = 0.1;
        let (e, res) = error(&m, &flood);
        assert!(e > m.threshold, "{e} {}", m.threshold);
        let top = top_features(&m, &flood, &res);
        assert_eq!(top.len(), 3);
        assert_eq!(fit(&samples, &[]), Some(m), "fitting is deterministic");
    }
}
