//! A token-bucket rate limiter per destination, so campaignd paces itself under each platform's documented
//! request rate instead of discovering it through throttling.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Token bucket: `rate` tokens per second, bursts up to `max(1, rate)`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Option<f64>,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter allowing `requests_per_second` on average; `None` or a non-positive rate disables it.
    pub fn new(requests_per_second: Option<f64>) -> Self {
        let rate = requests_per_second.filter(|r| r.is_finite() && *r > 0.0);
        let burst = rate.map_or(1.0, |r| r.max(1.0));
        RateLimiter {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits for a token; returns whether it had to wait (counted as a throttle wait).
    pub async fn acquire(&self) -> bool {
        let Some(rate) = self.rate else { return false };
        let mut waited = false;
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(state.1).as_secs_f64();
                state.0 = (state.0 + elapsed * rate).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return waited;
                }
                Duration::from_secs_f64((1.0 - state.0) / rate)
            };
            waited = true;
            tokio::time::sleep(wait).await;
        }
    }
}
