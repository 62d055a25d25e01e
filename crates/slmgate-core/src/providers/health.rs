//! Per-deployment health: consecutive failures and a cooldown after too many.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Health {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
}

impl Health {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    pub fn is_cooling(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.cooling_until.is_some_and(|t| Instant::now() < t)
    }

    pub fn record_success(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.consecutive_failures = 0;
        s.cooling_until = None;
    }

    /// Returns true when this failure starts a cooldown.
    pub fn record_failure(&self) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.consecutive_failures += 1;
        if s.consecutive_failures >= self.threshold {
            s.consecutive_failures = 0;
            s.cooling_until = Some(Instant::now() + self.cooldown);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_down_after_threshold_and_recovers() {
        let h = Health::new(2, Duration::from_millis(50));
        assert!(!h.record_failure());
        assert!(!h.is_cooling());
        assert!(h.record_failure());
        assert!(h.is_cooling());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!h.is_cooling());
    }

    #[test]
    fn success_resets_the_count() {
        let h = Health::new(2, Duration::from_secs(10));
        h.record_failure();
        h.record_success();
        assert!(!h.record_failure());
        assert!(!h.is_cooling());
    }
}
