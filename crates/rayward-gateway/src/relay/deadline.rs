//! A deadline timer re-armed lazily, as nginx's are: a connection keeps one armed timer
//! per kind of deadline, and a request moves only the deadline it checks, not the timer.
//! When the timer fires before the current deadline (it was armed for an earlier request)
//! it is re-armed then: one timer-wheel insertion per timeout period and connection
//! instead of an insertion and a removal per request (~1.4k instructions, docs/benchmarks.md).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio::time::{Instant, Sleep};

/// One kind of deadline of one connection (its timeout is the same every time, so each
/// deadline is later than the one before).
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    /// When `sleep` fires; `None` until first armed.
    armed: Option<Instant>,
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

impl Deadline {
    pub fn new() -> Deadline {
        // Not in the timer wheel until first polled.
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
        }
    }

    /// `f`'s output, or `None` when `deadline` passes first.
    pub async fn run<F: Future>(&mut self, deadline: Instant, f: F) -> Option<F::Output> {
        let mut f = std::pin::pin!(f);
        if self.armed.is_none_or(|a| a > deadline) {
            self.sleep.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            loop {
                match self.sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) if Instant::now() >= deadline => return Poll::Ready(None),
                    Poll::Ready(()) => {
                        // Armed for an earlier deadline: now for this one.
                        self.sleep.as_mut().reset(deadline);
                        self.armed = Some(deadline);
                    }
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_outlives_the_timer_armed_for_an_earlier_one() {
        let mut d = Deadline::new();
        let t0 = Instant::now();
        // Done in time: the output.
        assert_eq!(
            d.run(t0 + Duration::from_secs(10), async { 7 }).await,
            Some(7)
        );
        // The timer stays armed for t0+10; a deadline of t0+15 must not end at t0+10.
        let started = Instant::now();
        let r = d
            .run(
                t0 + Duration::from_secs(15),
                tokio::time::sleep(Duration::from_secs(12)),
            )
            .await;
        assert_eq!(r, Some(()));
        assert_eq!(started.elapsed(), Duration::from_secs(12));
        // And a deadline that passes first ends the wait at it.
        let t1 = Instant::now();
        let r = d
            .run(
                t1 + Duration::from_secs(3),
                tokio::time::sleep(Duration::from_secs(60)),
            )
            .await;
        assert_eq!(r, None);
        assert!(t1.elapsed() >= Duration::from_secs(3) && t1.elapsed() < Duration::from_secs(4));
    }
}
