//! Training with candle: full-batch AdamW on binary cross-entropy plus an L2 penalty. The L2
//! strength is chosen by inner cross-validation on the training data (validation log-loss), so
//! nothing is tuned by hand to one dataset.

use candle_core::{Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::model::{Learner, RouterModel, FORMAT};
use super::MlError;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub learner: Learner,
    /// Hidden units of the MLP.
    pub hidden: usize,
    pub epochs: usize,
    pub lr: f64,
    /// Fixed L2 strength; `None` picks one from `L2_GRID` by inner 3-fold cross-validation.
    pub l2: Option<f32>,
    pub seed: u64,
}

impl TrainOptions {
    pub fn new(learner: Learner) -> Self {
        let (epochs, lr) = match learner {
            Learner::Logistic => (300, 0.02),
            Learner::Mlp => (200, 0.01),
            Learner::Ridge => (0, 0.0),
        };
        Self {
            learner,
            hidden: 32,
            epochs,
            lr,
            l2: None,
            seed: 7,
        }
    }
}

pub const L2_GRID: [f32; 4] = [1e-4, 1e-3, 1e-2, 1e-1];

/// Weights of one fitted network over standardised inputs.
struct Fitted {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: f32,
}

fn ce(e: candle_core::Error) -> MlError {
    MlError::Train(e.to_string())
}

/// Mean and scale per feature (scale 1 for constant features).
fn standardise(x: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let n = x.len() as f32;
    let d = x[0].len();
    let mut mean = vec![0f32; d];
    for r in x {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let mut var = vec![0f32; d];
    for r in x {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    let scale = var
        .iter()
        .map(|v| if *v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mean, scale)
}

fn matrix(x: &[Vec<f32>], mean: &[f32], scale: &[f32]) -> Result<Tensor, MlError> {
    let d = mean.len();
    let flat: Vec<f32> = x
        .iter()
        .flat_map(|r| r.iter().zip(mean).zip(scale).map(|((v, m), s)| (v - m) / s))
        .collect();
    Tensor::from_vec(flat, (x.len(), d), &Device::Cpu).map_err(ce)
}

fn fit(x: &Tensor, y: &Tensor, opts: &TrainOptions, l2: f32) -> Result<Fitted, MlError> {
    let (_, d) = x.dims2().map_err(ce)?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut init = |rows: usize, cols: usize, std: f32| -> Result<Var, MlError> {
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * std * 1.732)
            .collect();
        Var::from_tensor(&Tensor::from_vec(v, (rows, cols), &Device::Cpu).map_err(ce)?).map_err(ce)
    };
    let hidden = if opts.learner == Learner::Mlp {
        opts.hidden
    } else {
        0
    };
    let (w1, b1) = if hidden > 0 {
        (
            Some(init(d, hidden, (2.0 / d as f32).sqrt())?),
            Some(init(1, hidden, 0.0)?),
        )
    } else {
        (None, None)
    };
    let w2 = init(
        if hidden > 0 { hidden } else { d },
        1,
        if hidden > 0 {
            (1.0 / hidden as f32).sqrt()
        } else {
            0.0
        },
    )?;
    let b2 = init(1, 1, 0.0)?;
    let mut vars = vec![w2.clone(), b2.clone()];
    vars.extend(w1.iter().cloned());
    vars.extend(b1.iter().cloned());
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .map_err(ce)?;
    let forward = |x: &Tensor| -> candle_core::Result<Tensor> {
        let h = match (&w1, &b1) {
            (Some(w1), Some(b1)) => x
                .matmul(w1.as_tensor())?
                .broadcast_add(b1.as_tensor())?
                .relu()?,
            _ => x.clone(),
        };
        h.matmul(w2.as_tensor())?.broadcast_add(b2.as_tensor())
    };
    for _ in 0..opts.epochs {
        let logits = forward(x).map_err(ce)?;
        let mut loss = stable_bce(&logits, y).map_err(ce)?;
        let mut penalty = w2.as_tensor().sqr().map_err(ce)?.sum_all().map_err(ce)?;
        if let Some(w1) = &w1 {
            penalty =
                (penalty + w1.as_tensor().sqr().map_err(ce)?.sum_all().map_err(ce)?).map_err(ce)?;
        }
        loss = (loss + (penalty * l2 as f64).map_err(ce)?).map_err(ce)?;
        opt.backward_step(&loss).map_err(ce)?;
    }
    let flat = |v: &Var| -> Result<Vec<f32>, MlError> {
        v.as_tensor()
            .flatten_all()
            .map_err(ce)?
            .to_vec1()
            .map_err(ce)
    };
    Ok(Fitted {
        // Stored row-major per hidden unit: transpose (d, h) → (h, d).
        w1: match &w1 {
            Some(w) => w
                .as_tensor()
                .t()
                .map_err(ce)?
                .contiguous()
                .map_err(ce)?
                .flatten_all()
                .map_err(ce)?
                .to_vec1()
                .map_err(ce)?,
            None => Vec::new(),
        },
        b1: match &b1 {
            Some(b) => flat(b)?,
            None => Vec::new(),
        },
        w2: flat(&w2)?,
        b2: flat(&b2)?[0],
    })
}

/// Mean binary cross-entropy on logits, `max(z, 0) − z·y + ln(1 + e^−|z|)`: finite for any
/// logit. (candle's `binary_cross_entropy_with_logit` takes the log of a sigmoid, which is 0
/// in f32 once a logit passes ~17: on separable data the loss became infinite and every
/// weight NaN.)
fn stable_bce(z: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (z.relu()? - (z * y)?)?.add(&softplus)?.mean_all()
}

fn labels(y: &[bool]) -> Result<Tensor, MlError> {
    let v: Vec<f32> = y.iter().map(|b| if *b { 1.0 } else { 0.0 }).collect();
    Tensor::from_vec(v, (y.len(), 1), &Device::Cpu).map_err(ce)
}

fn model_from(
    fitted: Fitted,
    mean: Vec<f32>,
    scale: Vec<f32>,
    hidden: usize,
    l2: f32,
    learner: Learner,
) -> RouterModel {
    RouterModel {
        format: FORMAT.into(),
        learner,
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
        hidden,
        w1: fitted.w1,
        b1: fitted.b1,
        w2: fitted.w2,
        b2: fitted.b2,
        l2,
        threshold: 0.5,
        threshold_note: String::new(),
        trained_examples: 0,
    }
}

/// Mean binary log-loss of a model on examples.
fn log_loss(m: &RouterModel, x: &[Vec<f32>], y: &[bool]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(r, &t)| {
            let p = (m.score(r) as f64).clamp(1e-6, 1.0 - 1e-6);
            if t {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / x.len().max(1) as f64
}

fn fit_model(
    x: &[Vec<f32>],
    y: &[bool],
    opts: &TrainOptions,
    l2: f32,
) -> Result<RouterModel, MlError> {
    let (mean, scale) = standardise(x);
    let xt = matrix(x, &mean, &scale)?;
    let fitted = fit(&xt, &labels(y)?, opts, l2)?;
    let hidden = if opts.learner == Learner::Mlp {
        opts.hidden
    } else {
        0
    };
    Ok(model_from(fitted, mean, scale, hidden, l2, opts.learner))
}

/// Trains on feature rows `x` with labels `y` (strong model answers better). The returned
/// model's naming fields (weak, strong, embedding, tags) are for the caller to fill in.
pub fn train(x: &[Vec<f32>], y: &[bool], opts: &TrainOptions) -> Result<RouterModel, MlError> {
    if x.len() < 10 {
        return Err(MlError::Train(format!(
            "{} examples are too few to train on",
            x.len()
        )));
    }
    if opts.learner == Learner::Ridge {
        // A linear probability model: ridge on the 0/1 labels (every input standardised).
        let t: Vec<f64> = y.iter().map(|b| if *b { 1.0 } else { 0.0 }).collect();
        return super::ridge::train(x, &t, 0, None, opts.l2.map(f64::from));
    }
    let l2 = match opts.l2 {
        Some(l) => l,
        None => select_l2(x, y, opts)?,
    };
    let mut m = fit_model(x, y, opts, l2)?;
    m.trained_examples = x.len();
    let finite = |v: &[f32]| v.iter().all(|w| w.is_finite());
    if !(finite(&m.w1) && finite(&m.b1) && finite(&m.w2) && m.b2.is_finite()) {
        return Err(MlError::Train(
            "training diverged (a weight is not finite)".into(),
        ));
    }
    Ok(m)
}

/// Inner 3-fold cross-validation over `L2_GRID` by validation log-loss.
fn select_l2(x: &[Vec<f32>], y: &[bool], opts: &TrainOptions) -> Result<f32, MlError> {
    let k = 3;
    let mut best = (f64::INFINITY, L2_GRID[0]);
    for &l2 in &L2_GRID {
        let mut total = 0.0;
        for f in 0..k {
            let (mut tx, mut ty, mut vx, mut vy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, (r, t)) in x.iter().zip(y).enumerate() {
                if i % k == f {
                    vx.push(r.clone());
                    vy.push(*t);
                } else {
                    tx.push(r.clone());
                    ty.push(*t);
                }
            }
            let m = fit_model(&tx, &ty, opts, l2)?;
            total += log_loss(&m, &vx, &vy);
        }
        if total < best.0 {
            best = (total, l2);
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_rule_and_its_weights_score_it() {
        // Label = first feature positive; second feature is noise.
        let mut rng = StdRng::seed_from_u64(1);
        let x: Vec<Vec<f32>> = (0..200)
            .map(|_| vec![rng.random::<f32>() - 0.5, rng.random::<f32>()])
            .collect();
        let y: Vec<bool> = x.iter().map(|r| r[0] > 0.0).collect();
        for learner in [Learner::Logistic, Learner::Mlp] {
            let m = train(&x, &y, &TrainOptions::new(learner)).unwrap();
            let right = x
                .iter()
                .zip(&y)
                .filter(|(r, t)| (m.score(r) >= 0.5) == **t)
                .count();
            assert!(right >= 185, "{learner:?}: {right}/200");
        }
    }

    #[test]
    fn perfectly_separable_data_trains_to_finite_weights() {
        // 40 rows far apart in 385 dimensions (like two prompt templates): logits saturate.
        let mut rng = StdRng::seed_from_u64(2);
        let x: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                (0..385)
                    .map(|_| sign + 0.01 * (rng.random::<f32>() - 0.5))
                    .collect()
            })
            .collect();
        let y: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        for learner in [Learner::Logistic, Learner::Mlp] {
            let m = train(&x, &y, &TrainOptions::new(learner)).unwrap();
            assert!(
                m.w2.iter().all(|w| w.is_finite()) && m.b2.is_finite(),
                "{learner:?}"
            );
            for (r, t) in x.iter().zip(&y) {
                assert_eq!(m.score(r) >= 0.5, *t, "{learner:?}");
            }
        }
    }
}
