//! Order statistics of timing samples, in milliseconds.

use std::time::Duration;

/// Timing samples of one measured quantity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    ms: Vec<f64>,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Samples {
        Samples::default()
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1e3);
    }

    /// Adds one sample given in milliseconds.
    pub fn push_ms(&mut self, ms: f64) {
        self.ms.push(ms);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }

    /// The `q` quantile (0.0 ..= 1.0) by the nearest-rank method; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let q = q.clamp(0.0, 1.0);
        // Nearest rank: ceil(q * n), 1-based, at least 1.
        let n = v.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        v.get(rank - 1).copied().unwrap_or(0.0)
    }

    /// The median (nearest rank).
    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// The 90th percentile.
    pub fn p90(&self) -> f64 {
        self.quantile(0.9)
    }

    /// The smallest sample; 0 when empty.
    pub fn min(&self) -> f64 {
        self.ms.iter().copied().reduce(f64::min).unwrap_or(0.0)
    }

    /// Median, p90 and min as a JSON object (milliseconds).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "median_ms": round3(self.median()),
            "p90_ms": round3(self.p90()),
            "min_ms": round3(self.min()),
            "n": self.len(),
        })
    }
}

/// Rounds to three decimals (microseconds when the unit is milliseconds) for printing.
pub fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let mut s = Samples::new();
        for v in [5.0, 1.0, 3.0] {
            s.push_ms(v);
        }
        assert_eq!(s.median(), 3.0);
        s.push_ms(4.0);
        // Nearest rank: ceil(0.5 * 4) = 2nd smallest.
        assert_eq!(s.median(), 3.0);
        assert_eq!(s.min(), 1.0);
        assert_eq!(s.quantile(1.0), 5.0);
        assert_eq!(s.quantile(0.0), 1.0);
    }

    #[test]
    fn p90_picks_the_nearest_rank() {
        let mut s = Samples::new();
        for v in 1..=10 {
            s.push_ms(f64::from(v));
        }
        assert_eq!(s.p90(), 9.0);
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn empty_samples_are_zero_not_a_panic() {
        let s = Samples::new();
        assert!(s.is_empty());
        assert_eq!(s.median(), 0.0);
        assert_eq!(s.min(), 0.0);
    }

    #[test]
    fn durations_are_recorded_in_milliseconds() {
        let mut s = Samples::new();
        s.push(Duration::from_micros(1500));
        assert!((s.median() - 1.5).abs() < 1e-9);
        assert_eq!(round3(1.23456), 1.235);
    }
}
