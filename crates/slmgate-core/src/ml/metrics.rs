//! The field's router metrics (RouteLLM): sweep a threshold over router scores, send prompts
//! scoring at or above it to the strong model, and trace quality against the strong share.
//! Score ties are one step of the curve, interpolated linearly (the expectation over a random
//! order among equals), so a constant router scores exactly 0.5 APGR.

use serde::Serialize;

/// One point of the quality curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub strong_share: f64,
    pub quality: f64,
    pub pgr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub points: Vec<Point>,
    pub weak_quality: f64,
    pub strong_quality: f64,
}

/// `scores[i]` routes prompt i; `weak[i]`, `strong[i]` are the two models' quality on it.
pub fn curve(scores: &[f64], weak: &[f64], strong: &[f64]) -> Curve {
    let n = scores.len();
    assert!(
        n > 0 && weak.len() == n && strong.len() == n,
        "one score and two outcomes per prompt"
    );
    let nf = n as f64;
    let qw = weak.iter().sum::<f64>() / nf;
    let qs = strong.iter().sum::<f64>() / nf;
    let gap = qs - qw;
    let pgr = |q: f64| {
        if gap.abs() < 1e-12 {
            0.0
        } else {
            (q - qw) / gap
        }
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![Point {
        strong_share: 0.0,
        quality: qw,
        pgr: 0.0,
    }];
    let mut total = weak.iter().sum::<f64>();
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && scores[order[j]] == scores[order[i]] {
            let k = order[j];
            total += strong[k] - weak[k];
            j += 1;
        }
        let q = total / nf;
        points.push(Point {
            strong_share: j as f64 / nf,
            quality: q,
            pgr: pgr(q),
        });
        i = j;
    }
    Curve {
        points,
        weak_quality: qw,
        strong_quality: qs,
    }
}

impl Curve {
    /// Area under PGR over the strong share in [0, 1] (trapezoids).
    pub fn apgr(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].strong_share - w[0].strong_share) * (w[0].pgr + w[1].pgr) / 2.0)
            .sum()
    }

    /// Smallest strong share at which PGR reaches `target` (linear between points).
    pub fn cpt(&self, target: f64) -> Option<f64> {
        if self.points[0].pgr >= target {
            return Some(0.0);
        }
        for w in self.points.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b.pgr >= target && a.pgr < target {
                let t = (target - a.pgr) / (b.pgr - a.pgr);
                return Some(a.strong_share + t * (b.strong_share - a.strong_share));
            }
        }
        None
    }

    /// Quality and PGR at a given strong share (linear between points).
    pub fn at(&self, share: f64) -> Point {
        for w in self.points.windows(2) {
            let (a, b) = (w[0], w[1]);
            if share <= b.strong_share {
                let span = b.strong_share - a.strong_share;
                let t = if span > 0.0 {
                    (share - a.strong_share) / span
                } else {
                    1.0
                };
                return Point {
                    strong_share: share,
                    quality: a.quality + t * (b.quality - a.quality),
                    pgr: a.pgr + t * (b.pgr - a.pgr),
                };
            }
        }
        *self.points.last().expect("a curve has points")
    }
}

/// The oracle: strong-only wins first, ties next, weak-only wins last.
pub fn oracle_scores(weak: &[f64], strong: &[f64]) -> Vec<f64> {
    weak.iter().zip(strong).map(|(w, s)| s - w).collect()
}

/// The score threshold that sends `share` of these prompts to the strong model.
pub fn threshold_for_share(scores: &[f64], share: f64) -> f64 {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let k = ((share.clamp(0.0, 1.0)) * s.len() as f64).round() as usize;
    if k == 0 {
        return s[0] + 1e-6;
    }
    s[k - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_router_is_exactly_random() {
        let weak = [1.0, 0.0, 0.0, 1.0, 0.0];
        let strong = [1.0, 1.0, 1.0, 0.0, 0.0];
        let c = curve(&[0.5; 5], &weak, &strong);
        assert!((c.apgr() - 0.5).abs() < 1e-12, "{}", c.apgr());
    }

    #[test]
    fn oracle_by_hand() {
        // weak right on 0 and 3; strong right on 0, 1, 2. qw = 0.4, qs = 0.6, gap 0.2.
        let weak = [1.0, 0.0, 0.0, 1.0, 0.0];
        let strong = [1.0, 1.0, 1.0, 0.0, 0.0];
        let c = curve(&oracle_scores(&weak, &strong), &weak, &strong);
        // Oracle order: {1,2} (+1 each), then ties {0,4} (0), then {3} (-1).
        // PGR: share 0 → 0; 0.4 → (0.8-0.4)/0.2 = 2; 0.8 → 2; 1.0 → 1.
        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.strong_share, p.pgr)).collect();
        assert_eq!(pts.len(), 4);
        for ((s, g), (ws, wg)) in pts
            .iter()
            .zip([(0.0, 0.0), (0.4, 2.0), (0.8, 2.0), (1.0, 1.0)])
        {
            assert!((s - ws).abs() < 1e-9 && (g - wg).abs() < 1e-9, "{pts:?}");
        }
        // Area: 0.4*1 + 0.4*2 + 0.2*1.5 = 1.5
        assert!((c.apgr() - 1.5).abs() < 1e-9, "{}", c.apgr());
        // PGR 0.5 is reached a quarter of the way up the first ramp: share 0.1.
        assert!((c.cpt(0.5).unwrap() - 0.1).abs() < 1e-9);
        assert!((c.at(0.2).quality - 0.6).abs() < 1e-9);
    }

    #[test]
    fn threshold_sends_the_requested_share() {
        let scores = [0.9, 0.1, 0.5, 0.7, 0.3];
        let t = threshold_for_share(&scores, 0.4);
        assert_eq!(scores.iter().filter(|s| **s >= t).count(), 2);
        let t0 = threshold_for_share(&scores, 0.0);
        assert_eq!(scores.iter().filter(|s| **s >= t0).count(), 0);
    }
}
