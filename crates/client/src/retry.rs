//! Exponential backoff with jitter, and retrying a call while its error is transient
//! ([`Error::is_transient`]).

use std::time::Duration;

use rand::Rng;

use crate::Error;

/// `first`, doubling per attempt up to `cap`, each delay drawn at random from its upper
/// half: clients that lost the service at the same moment do not all return at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Self {
        Backoff { first, cap }
    }

    /// The delay before retry `attempt` (1 for the first) without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        self.first.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The delay before retry `attempt` (1 for the first): within
    /// `[nominal / 2, nominal]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let nominal = self.nominal(attempt);
        nominal.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// Runs `call` until it succeeds or fails for good. After a transient error,
/// `on_retry(error, delay)` is told (to log or show it), then the call is made again after
/// the delay. When `stop` completes first, the last error is returned.
pub async fn retry<T, F, Fut>(
    backoff: Backoff,
    stop: impl Future<Output = ()>,
    mut call: F,
    mut on_retry: impl FnMut(&Error, Duration),
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut stop = std::pin::pin!(stop);
    let mut attempt = 0u32;
    loop {
        match call().await {
            Err(e) if e.is_transient() => {
                attempt = attempt.saturating_add(1);
                let delay = backoff.delay(attempt);
                on_retry(&e, delay);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = &mut stop => return Err(e),
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use reqwest::StatusCode;

    use super::*;

    fn api(status: StatusCode) -> Error {
        Error::Api {
            status,
            code: status.as_u16().to_string(),
            message: status.to_string(),
        }
    }

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(b.nominal(1), Duration::from_millis(500));
        assert_eq!(b.nominal(2), Duration::from_secs(1));
        assert_eq!(b.nominal(4), Duration::from_secs(4));
        assert_eq!(b.nominal(100), Duration::from_secs(30));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(30));
        for attempt in [1, 3, 7, 100] {
            let nominal = b.nominal(attempt);
            let delays: Vec<_> = (0..200).map(|_| b.delay(attempt)).collect();
            assert!(
                delays.iter().all(|d| *d >= nominal / 2 && *d <= nominal),
                "{attempt}: {delays:?}"
            );
            // Jitter: 200 draws are not all the same.
            assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = Cell::new(0);
        let mut told = Vec::new();
        let got = retry(
            Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
            std::future::pending(),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    match n {
                        1 => Err(api(StatusCode::BAD_GATEWAY)),
                        2 => Err(Error::Unreachable {
                            url: "http://h/".into(),
                            reason: "connection refused".into(),
                        }),
                        _ => Ok(n),
                    }
                }
            },
            |e, delay| told.push((e.to_string(), delay)),
        )
        .await
        .unwrap();
        assert_eq!(got, 3);
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].0.contains("502"), "{told:?}");
        assert!(told.iter().all(|(_, d)| *d <= Duration::from_millis(2)));
    }

    #[tokio::test]
    async fn other_errors_are_returned_at_once() {
        let calls = Cell::new(0);
        let err = retry(
            Backoff::new(Duration::from_millis(1), Duration::from_millis(1)),
            std::future::pending(),
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(api(StatusCode::UNAUTHORIZED)) }
            },
            |e, _| panic!("retried {e}"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn stopping_returns_the_last_error() {
        let calls = Cell::new(0);
        let err = retry(
            // Long enough that only `stop` can end the wait.
            Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600)),
            std::future::ready(()),
            || {
                calls.set(calls.get() + 1);
                async { Err::<(), _>(api(StatusCode::SERVICE_UNAVAILABLE)) }
            },
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(calls.get(), 1);
    }
}
