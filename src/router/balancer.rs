//! What the supervisor tells the router: which `web` instances are `up`, and, when none
//! is, whether one is on its way (hold the request) or the app crashed (H10) or there
//! are no web processes at all (H14). And the routing decision made from it: which
//! instance a request goes to, waiting while instances are starting (H20 after the
//! request timeout).
//!
//! Connections to the chosen instance are `conn_pool`'s concern; this file only picks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::options::Balance;

use super::codes::Code;

/// One `up` web instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `web.1`, for the `dyno=` field.
    pub name: Arc<str>,
    /// Where it listens (IPv4 or IPv6 loopback, as detected when it bound).
    pub addr: SocketAddr,
    /// Distinguishes two runs of the same instance (a restart, or preboot's overlap), so
    /// pooled connections to an old run are not reused for a new one.
    pub generation: u64,
}

/// Snapshot published by the supervisor on every change of a web instance's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    /// Instances ready for traffic, in instance order.
    pub up: Vec<Backend>,
    /// Some web instance is starting or waiting to restart: hold requests (then H20).
    pub starting: bool,
    /// Every web instance crashed and none will restart: H10.
    pub crashed: bool,
    /// A web instance is up but listens on another port than its `PORT`: what hlocal
    /// said of it, for the page of the H21 the router answers when nothing else is up.
    pub elsewhere: Option<Arc<str>>,
}

/// A backend run that refused a connection for this request: its address and generation
/// (a restarted instance on the same port is a new run, worth trying).
pub(crate) type Tried = (SocketAddr, u64);

/// After every up instance refused, how long to wait for the supervisor's next snapshot
/// before giving H21: a process that just died is seen (SIGCHLD) within milliseconds,
/// and a restarting instance then makes the request wait instead of fail.
const SETTLE: Duration = Duration::from_secs(1);

/// What to do with a request, given a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Forward(Backend),
    /// Nothing is up but something is starting: wait for the next snapshot.
    Wait,
    /// Every up instance refused: wait briefly for news (a crash being noticed), then H21.
    Refused,
    Fail(Code),
}

/// Picks instances. Shared by every connection, so the round-robin counter is atomic.
#[derive(Debug)]
pub(crate) struct Picker {
    balance: Balance,
    next: AtomicUsize,
}

impl Picker {
    pub(crate) fn new(balance: Balance) -> Picker {
        Picker {
            balance,
            next: AtomicUsize::new(0),
        }
    }

    /// The routing decision for one snapshot, skipping instances in `tried` (those that
    /// refused a connection for this request: Heroku retries other dynos before H21).
    pub(crate) fn decide(&self, backends: &Backends, tried: &[Tried]) -> Decision {
        let candidates = backends.up.len() - tried_count(backends, tried);
        if candidates > 0 {
            let mut n = self.index(candidates);
            for b in &backends.up {
                if tried.contains(&(b.addr, b.generation)) {
                    continue;
                }
                if n == 0 {
                    return Decision::Forward(b.clone());
                }
                n -= 1;
            }
        }
        if tried_count(backends, tried) > 0 {
            Decision::Refused
        } else if backends.starting {
            Decision::Wait
        } else if backends.elsewhere.is_some() {
            Decision::Fail(Code::H21)
        } else if backends.crashed {
            Decision::Fail(Code::H10)
        } else {
            Decision::Fail(Code::H14)
        }
    }

    fn index(&self, len: usize) -> usize {
        match self.balance {
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % len,
            Balance::Random => fastrand::usize(..len),
        }
    }

    /// Decides on the latest snapshot, waiting for new ones while instances are starting,
    /// up to `deadline` (then H20). A closed channel means the supervisor is gone: H14.
    pub(crate) async fn choose(
        &self,
        backends: &watch::Receiver<Backends>,
        tried: &[Tried],
        deadline: Instant,
    ) -> Result<Backend, Code> {
        let first = self.decide(&backends.borrow(), tried);
        let mut rx = match first {
            Decision::Forward(b) => return Ok(b),
            Decision::Fail(code) => return Err(code),
            Decision::Wait | Decision::Refused => backends.clone(),
        };
        loop {
            let decision = self.decide(&rx.borrow_and_update(), tried);
            let (until, timed_out) = match decision {
                Decision::Forward(b) => return Ok(b),
                Decision::Fail(code) => return Err(code),
                Decision::Wait => (deadline, Code::H20),
                Decision::Refused => ((Instant::now() + SETTLE).min(deadline), Code::H21),
            };
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_closed)) => return Err(Code::H14),
                Err(_elapsed) => return Err(timed_out),
            }
        }
    }
}

fn tried_count(backends: &Backends, tried: &[Tried]) -> usize {
    if tried.is_empty() {
        return 0;
    }
    backends
        .up
        .iter()
        .filter(|b| tried.contains(&(b.addr, b.generation)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(n: u16) -> Backend {
        Backend {
            name: format!("web.{n}").into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 5000 + n)),
            generation: 0,
        }
    }

    fn up(n: u16) -> Backends {
        Backends {
            up: (1..=n).map(backend).collect(),
            ..Backends::default()
        }
    }

    fn name(d: Decision) -> String {
        match d {
            Decision::Forward(b) => b.name.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn round_robin_cycles_in_instance_order() {
        let p = Picker::new(Balance::RoundRobin);
        let names: Vec<String> = (0..4).map(|_| name(p.decide(&up(3), &[]))).collect();
        assert_eq!(names, ["web.1", "web.2", "web.3", "web.1"]);
    }

    #[test]
    fn random_stays_within_the_up_instances() {
        let p = Picker::new(Balance::Random);
        for _ in 0..100 {
            let n = name(p.decide(&up(2), &[]));
            assert!(n == "web.1" || n == "web.2", "{n}");
        }
    }

    #[test]
    fn nothing_up_waits_fails_h10_or_h14() {
        let p = Picker::new(Balance::RoundRobin);
        let starting = Backends {
            starting: true,
            crashed: true,
            ..Backends::default()
        };
        assert_eq!(p.decide(&starting, &[]), Decision::Wait);
        let crashed = Backends {
            crashed: true,
            ..Backends::default()
        };
        assert_eq!(p.decide(&crashed, &[]), Decision::Fail(Code::H10));
        assert_eq!(
            p.decide(&Backends::default(), &[]),
            Decision::Fail(Code::H14)
        );
    }

    #[test]
    fn an_instance_listening_elsewhere_is_h21_at_once() {
        let p = Picker::new(Balance::RoundRobin);
        let elsewhere = Backends {
            elsewhere: Some("web.1: listening on 5173".into()),
            ..Backends::default()
        };
        assert_eq!(p.decide(&elsewhere, &[]), Decision::Fail(Code::H21));
    }

    #[test]
    fn refused_instances_are_skipped_then_h21() {
        let p = Picker::new(Balance::RoundRobin);
        let tried = [(backend(1).addr, 0)];
        for _ in 0..3 {
            assert_eq!(name(p.decide(&up(2), &tried)), "web.2");
        }
        let all = [(backend(1).addr, 0), (backend(2).addr, 0)];
        assert_eq!(p.decide(&up(2), &all), Decision::Refused);
    }

    #[test]
    fn a_new_run_on_the_same_port_is_worth_trying() {
        let p = Picker::new(Balance::RoundRobin);
        let mut restarted = up(1);
        restarted.up[0].generation = 1;
        assert_eq!(name(p.decide(&restarted, &[(backend(1).addr, 0)])), "web.1");
    }

    #[tokio::test]
    async fn refused_waits_for_news_then_h21() {
        let (tx, rx) = watch::channel(up(1));
        let p = Picker::new(Balance::RoundRobin);
        let deadline = Instant::now() + Duration::from_secs(30);
        let tried = [(backend(1).addr, 0)];
        assert_eq!(p.choose(&rx, &tried, deadline).await, Err(Code::H21));
        let mut restarted = up(1);
        restarted.up[0].generation = 1;
        let publish = async {
            tokio::task::yield_now().await;
            tx.send_replace(restarted);
        };
        let (chosen, ()) = tokio::join!(p.choose(&rx, &tried, deadline), publish);
        assert_eq!(chosen.map(|b| b.generation), Ok(1));
    }

    #[tokio::test]
    async fn choose_waits_for_a_starting_instance() {
        let (tx, rx) = watch::channel(Backends {
            starting: true,
            ..Backends::default()
        });
        let p = Picker::new(Balance::RoundRobin);
        let deadline = Instant::now() + Duration::from_secs(30);
        let publish = async {
            tokio::task::yield_now().await;
            tx.send_replace(up(1));
        };
        let (chosen, ()) = tokio::join!(p.choose(&rx, &[], deadline), publish);
        assert_eq!(chosen.map(|b| b.name), Ok("web.1".into()));
    }

    #[tokio::test]
    async fn choose_gives_h20_after_the_deadline() {
        let (_tx, rx) = watch::channel(Backends {
            starting: true,
            ..Backends::default()
        });
        let p = Picker::new(Balance::RoundRobin);
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(p.choose(&rx, &[], deadline).await, Err(Code::H20));
    }

    #[tokio::test]
    async fn choose_gives_h14_when_the_supervisor_is_gone() {
        let (tx, rx) = watch::channel(Backends {
            starting: true,
            ..Backends::default()
        });
        drop(tx);
        let p = Picker::new(Balance::RoundRobin);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(p.choose(&rx, &[], deadline).await, Err(Code::H14));
    }
}
