//! The ridge router: linear regression of the strong model's *gain* on a prompt (strong −
//! weak quality, in −1 … 1) with an L2 penalty, solved in closed form.
//!
//! Why a gain regression rather than "does the strong model win": APGR and CPT reward sending
//! the prompts where the strong model gains most, and penalise sending those where only the
//! weak model is right; a win/lose classifier treats "only weak right" like "both right". On
//! the GSM8K outcomes this one change moves out-of-fold APGR from 0.62–0.63 (logistic, MLP)
//! to about 0.66 (docs/benchmarks.md).
//!
//! Inputs: the prompt's vector is used as it is (its dimensions are already on one scale, and
//! standardising each would blow up the noisy low-variance ones); the other
//! features (tags, length, system prompt) are centred and scaled to the vector's typical
//! per-dimension spread, so one penalty treats every input alike. The penalty is chosen by
//! inner 3-fold cross-validation (squared error) from [`ALPHA_GRID`].

use super::model::{Learner, RouterModel, FORMAT};
use super::MlError;

/// Penalties tried (on the sum of squared errors, as `sklearn.linear_model.Ridge`'s alpha).
pub const ALPHA_GRID: [f64; 11] = [0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0];

/// Fits on feature rows `x` (the first `dense` columns are the prompt vector) and gains `y`.
/// `offset`: a column added to the score with weight 1 and not fitted (the per-tag prior):
/// the rest is fitted on what it leaves. `alpha`: a fixed penalty, or `None` to choose one
/// by inner cross-validation.
pub fn train(
    x: &[Vec<f32>],
    y: &[f64],
    dense: usize,
    offset: Option<usize>,
    alpha: Option<f64>,
) -> Result<RouterModel, MlError> {
    if x.len() < 10 || x.len() != y.len() {
        return Err(MlError::Train(format!(
            "{} examples are too few to train on",
            x.len()
        )));
    }
    // What the offset leaves to explain.
    let y: Vec<f64> = match offset {
        Some(j) => x.iter().zip(y).map(|(r, t)| t - r[j] as f64).collect(),
        None => y.to_vec(),
    };
    let alpha = match alpha {
        Some(a) => a,
        None => select_alpha(x, &y, dense, offset)?,
    };
    let (mean, scale) = transform(x, dense, offset);
    let (mut w, b) = Normal::of(x, &y, &mean, &scale, offset).solve(alpha)?;
    if let Some(j) = offset {
        w[j] = 1.0;
    }
    if !(w.iter().all(|v| v.is_finite()) && b.is_finite()) {
        return Err(MlError::Train(
            "training diverged (a weight is not finite)".into(),
        ));
    }
    Ok(RouterModel {
        format: FORMAT.into(),
        learner: Learner::Ridge,
        weak: String::new(),
        strong: String::new(),
        embedding: String::new(),
        representation: Default::default(),
        embedding_dims: 0,
        tag_features: Vec::new(),
        system_buckets: 0,
        tag_prior: None,
        mean,
        scale,
        hidden: 0,
        w1: Vec::new(),
        b1: Vec::new(),
        w2: w.iter().map(|v| *v as f32).collect(),
        b2: b as f32,
        l2: alpha as f32,
        threshold: 0.0,
        threshold_note: String::new(),
        trained_examples: x.len(),
    })
}

/// Per feature: the mean (every column is centred) and the scale (1 for the prompt vector's
/// columns; the others scaled to the vector's mean per-dimension standard deviation). The
/// offset column is left as it is (mean 0, scale 1).
fn transform(x: &[Vec<f32>], dense: usize, offset: Option<usize>) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() as f64;
    let d = x[0].len();
    let mut mean = vec![0f64; d];
    for r in x {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n;
        }
    }
    let mut var = vec![0f64; d];
    for r in x {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (*v as f64 - m).powi(2) / n;
        }
    }
    let sd: Vec<f64> = var.iter().map(|v| v.sqrt()).collect();
    let dense = dense.min(d);
    let dense_sd = if dense > 0 {
        sd[..dense].iter().sum::<f64>() / dense as f64
    } else {
        1.0
    };
    let scale = sd
        .iter()
        .enumerate()
        .map(|(j, s)| {
            if j < dense || *s < 1e-12 || dense_sd < 1e-12 || Some(j) == offset {
                1.0
            } else {
                (s / dense_sd) as f32
            }
        })
        .collect();
    if let Some(j) = offset.filter(|j| *j < d) {
        mean[j] = 0.0;
    }
    (mean.into_iter().map(|m| m as f32).collect(), scale)
}

/// The normal equations over centred, scaled inputs: ZᵀZ (row-major d×d), Zᵀ(y − ȳ), ȳ.
struct Normal {
    g: Vec<f64>,
    r: Vec<f64>,
    ybar: f64,
    d: usize,
}

impl Normal {
    /// `offset`: a column left out of the fit (its weight is fixed).
    fn of(x: &[Vec<f32>], y: &[f64], mean: &[f32], scale: &[f32], offset: Option<usize>) -> Self {
        let d = mean.len();
        let ybar = y.iter().sum::<f64>() / y.len() as f64;
        let mut g = vec![0f64; d * d];
        let mut r = vec![0f64; d];
        let mut z = vec![0f64; d];
        for (row, t) in x.iter().zip(y) {
            for j in 0..d {
                z[j] = ((row[j] - mean[j]) / scale[j]) as f64;
            }
            if let Some(j) = offset {
                z[j] = 0.0;
            }
            let t = t - ybar;
            for j in 0..d {
                let zj = z[j];
                if zj == 0.0 {
                    continue;
                }
                r[j] += zj * t;
                let gj = &mut g[j * d..j * d + d];
                for k in j..d {
                    gj[k] += zj * z[k];
                }
            }
        }
        for j in 0..d {
            for k in 0..j {
                g[j * d + k] = g[k * d + j];
            }
        }
        Self { g, r, ybar, d }
    }

    /// Weights (in the transformed space) and intercept minimising
    /// Σ (y − b − w·z)² + alpha·|w|².
    fn solve(&self, alpha: f64) -> Result<(Vec<f64>, f64), MlError> {
        let d = self.d;
        let mut a = self.g.clone();
        for j in 0..d {
            a[j * d + j] += alpha;
        }
        Ok((solve_spd(&mut a, &self.r, d)?, self.ybar))
    }
}

/// Solves `a x = b` for a symmetric positive-definite `a` (row-major d×d; overwritten by its
/// Cholesky factor).
fn solve_spd(a: &mut [f64], b: &[f64], d: usize) -> Result<Vec<f64>, MlError> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return Err(MlError::Train(
                "the features are degenerate (matrix not positive definite)".into(),
            ));
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut y = vec![0f64; d];
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * d + k] * y[k];
        }
        y[i] = s / a[i * d + i];
    }
    let mut x = vec![0f64; d];
    for i in (0..d).rev() {
        let mut s = y[i];
        for k in i + 1..d {
            s -= a[k * d + i] * x[k];
        }
        x[i] = s / a[i * d + i];
    }
    Ok(x)
}

/// Inner 3-fold cross-validation over [`ALPHA_GRID`] by validation squared error (of what
/// the offset leaves: `y` is already net of it).
fn select_alpha(
    x: &[Vec<f32>],
    y: &[f64],
    dense: usize,
    offset: Option<usize>,
) -> Result<f64, MlError> {
    let k = 3;
    let mut err = vec![0f64; ALPHA_GRID.len()];
    for f in 0..k {
        let (mut tx, mut ty, mut vx, mut vy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (r, t)) in x.iter().zip(y).enumerate() {
            if i % k == f {
                vx.push(r);
                vy.push(*t);
            } else {
                tx.push(r.clone());
                ty.push(*t);
            }
        }
        let (mean, scale) = transform(&tx, dense, offset);
        let normal = Normal::of(&tx, &ty, &mean, &scale, offset);
        for (a, e) in ALPHA_GRID.iter().zip(err.iter_mut()) {
            let (w, b) = normal.solve(*a)?;
            for (r, t) in vx.iter().zip(&vy) {
                let p: f64 = b + r
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| Some(*j) != offset)
                    .map(|(j, v)| ((v - mean[j]) / scale[j]) as f64 * w[j])
                    .sum::<f64>();
                *e += (p - t).powi(2);
            }
        }
    }
    let best = err
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    Ok(ALPHA_GRID[best])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn recovers_a_linear_rule_and_scores_by_expected_gain() {
        // gain = 0.8·x0 − 0.5·x1 + noise; x2 is noise.
        let mut rng = StdRng::seed_from_u64(3);
        let x: Vec<Vec<f32>> = (0..400)
            .map(|_| (0..3).map(|_| rng.random::<f32>() - 0.5).collect())
            .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|r| 0.8 * r[0] as f64 - 0.5 * r[1] as f64 + 0.05 * (rng.random::<f64>() - 0.5))
            .collect();
        let m = train(&x, &y, 3, None, None).unwrap();
        assert_eq!(m.learner, Learner::Ridge);
        assert!((m.w2[0] - 0.8).abs() < 0.05, "{:?}", m.w2);
        assert!((m.w2[1] + 0.5).abs() < 0.05, "{:?}", m.w2);
        assert!(m.w2[2].abs() < 0.05, "{:?}", m.w2);
        // The score is the predicted gain, not a probability.
        let s = m.score(&[0.5, -0.5, 0.0]);
        assert!((s - 0.65).abs() < 0.05, "{s}");
    }

    #[test]
    fn an_offset_column_keeps_weight_one_and_the_rest_fits_what_it_leaves() {
        // gain = prior + 0.5·x0: the prior column (x1) is given, x0 is learned.
        let mut rng = StdRng::seed_from_u64(4);
        let x: Vec<Vec<f32>> = (0..300)
            .map(|i| {
                vec![
                    rng.random::<f32>() - 0.5,
                    if i % 2 == 0 { 0.3 } else { -0.3 },
                ]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| r[1] as f64 + 0.5 * r[0] as f64).collect();
        let m = train(&x, &y, 1, Some(1), Some(0.1)).unwrap();
        assert_eq!(m.w2[1], 1.0);
        assert_eq!((m.mean[1], m.scale[1]), (0.0, 1.0));
        assert!((m.w2[0] - 0.5).abs() < 0.01, "{:?}", m.w2);
        assert!((m.score(&[0.2, 0.3]) - 0.4).abs() < 0.01);
    }

    #[test]
    fn the_cholesky_solve_matches_a_known_system() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
    }

    #[test]
    fn extra_features_are_scaled_to_the_vector_spread_and_constant_ones_left_alone() {
        let x: Vec<Vec<f32>> = (0..20)
            .map(|i| vec![(i % 2) as f32 * 0.1, 0.0, i as f32, 7.0])
            .collect();
        let (mean, scale) = transform(&x, 2, None);
        assert_eq!(scale[0], 1.0);
        assert_eq!(scale[1], 1.0);
        assert_eq!(scale[3], 1.0, "a constant feature");
        // dense sd = (0.05 + 0) / 2; the third column's sd is 5.77 → scale 5.77 / 0.025.
        assert!((scale[2] - 5.766 / 0.025).abs() < 1.0, "{}", scale[2]);
        assert!((mean[2] - 9.5).abs() < 1e-6);
    }
}
