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

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// (router score, weak outcome, strong outcome) per prompt; outcomes as in the field's
    /// data: 0/1 correctness, or a graded score.
    fn rows() -> impl Strategy<Value = Vec<(f64, f64, f64)>> {
        proptest::collection::vec(
            (
                prop_oneof![(0u8..5).prop_map(f64::from), 0.0f64..1.0],
                prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0],
                prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0],
            ),
            1..80,
        )
    }

    fn split(r: &[(f64, f64, f64)]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        (
            r.iter().map(|x| x.0).collect(),
            r.iter().map(|x| x.1).collect(),
            r.iter().map(|x| x.2).collect(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_oracle_is_never_beaten(r in rows()) {
            let (s, mut w, mut st) = split(&r);
            // PGR is the share of the strong model's gain recovered: it means something only
            // when there is a gain (a weaker "strong" model inverts it).
            if st.iter().sum::<f64>() < w.iter().sum::<f64>() {
                std::mem::swap(&mut w, &mut st);
            }
            let any = curve(&s, &w, &st);
            prop_assume!(any.strong_quality > any.weak_quality + 1e-9);
            let best = curve(&oracle_scores(&w, &st), &w, &st);
            prop_assert!(best.apgr() >= any.apgr() - 1e-9, "oracle {} < router {}", best.apgr(), any.apgr());
        }

        #[test]
        fn only_the_order_of_scores_matters(r in rows()) {
            let (s, w, st) = split(&r);
            // A strictly increasing transform keeps every comparison and tie (scaling by a
            // power of two and negating twice are exact in floating point; adding a
            // constant is not: 7 + 4e-6³ == 7).
            let t: Vec<f64> = s.iter().map(|x| -(-x * 4.0)).collect();
            let a = curve(&s, &w, &st).apgr();
            let b = curve(&t, &w, &st).apgr();
            prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
        }

        #[test]
        fn the_curve_runs_from_all_weak_to_all_strong(r in rows()) {
            let (s, w, st) = split(&r);
            let c = curve(&s, &w, &st);
            let (first, last) = (c.points[0], *c.points.last().unwrap());
            prop_assert_eq!((first.strong_share, first.pgr), (0.0, 0.0));
            prop_assert!((last.strong_share - 1.0).abs() < 1e-12);
            prop_assert!((last.quality - c.strong_quality).abs() < 1e-9);
            if (c.strong_quality - c.weak_quality).abs() > 1e-9 {
                prop_assert!((last.pgr - 1.0).abs() < 1e-9);
            }
            prop_assert!(c.points.windows(2).all(|p| p[1].strong_share > p[0].strong_share));
        }

        #[test]
        fn a_constant_router_scores_one_half(r in rows()) {
            let (_, w, st) = split(&r);
            let c = curve(&vec![0.3; w.len()], &w, &st);
            if (c.strong_quality - c.weak_quality).abs() > 1e-9 {
                prop_assert!((c.apgr() - 0.5).abs() < 1e-9, "{}", c.apgr());
            }
        }

        #[test]
        fn the_threshold_sends_the_asked_share_when_scores_differ(
            mut s in proptest::collection::vec(-1e6f64..1e6, 1..200),
            share in 0.0f64..=1.0,
        ) {
            s.sort_by(|a, b| a.total_cmp(b));
            s.dedup();
            let th = threshold_for_share(&s, share);
            let sent = s.iter().filter(|x| **x >= th).count();
            prop_assert_eq!(sent, (share * s.len() as f64).round() as usize);
        }
    }
}
