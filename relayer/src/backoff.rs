//! Hyperlane's retry schedule (`pending_message.rs`), by persisted retry count.

use std::time::Duration;

use rand::Rng;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// The pause before attempt `retries + 1`, given `retries` failed attempts
/// and the maximum after which a message is parked.
///
/// 1 → 5 s, 2 → 10 s, 3 → 30 s, 4 → 60 s, 5–24 → 3 min,
/// 25–39 → 5 min + (n − 25)·90 s, 40–44 → 30 min, 45–49 → 60 min,
/// 50 … max − 1 → max(2 h, (n − 49)·2 h) + uniform [0, 6 h),
/// ≥ max → 10 weeks (parked). `scale` multiplies the result: 1.0 in
/// production, smaller on devnets and in tests.
pub fn backoff(retries: u32, max_retries: u32, scale: f64) -> Duration {
    let seconds = match retries {
        n if n >= max_retries => 10 * 7 * 24 * HOUR,
        0 => 0,
        1 => 5,
        2 => 10,
        3 => 30,
        4 => MINUTE,
        5..=24 => 3 * MINUTE,
        n @ 25..=39 => 5 * MINUTE + u64::from(n - 25) * 90,
        40..=44 => 30 * MINUTE,
        45..=49 => HOUR,
        n => (u64::from(n - 49) * 2 * HOUR).max(2 * HOUR) + rand::rng().random_range(0..6 * HOUR),
    };
    Duration::from_secs_f64(seconds as f64 * scale.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule() {
        let s = |n| backoff(n, 66, 1.0).as_secs();
        assert_eq!([s(1), s(2), s(3), s(4), s(5), s(24)], [5, 10, 30, 60, 180, 180]);
        assert_eq!(s(25), 300);
        assert_eq!(s(39), 300 + 14 * 90);
        assert_eq!([s(40), s(44), s(45), s(49)], [1800, 1800, 3600, 3600]);
        let late = s(51);
        assert!((4 * 3600..10 * 3600).contains(&late), "{late}");
        assert_eq!(s(66), 10 * 7 * 24 * 3600);
        assert_eq!(backoff(2, 66, 0.01), Duration::from_millis(100));
    }
}
