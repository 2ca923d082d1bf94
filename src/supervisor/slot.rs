//! The process table's rows and the pure questions the supervisor asks of them: has
//! this instance ended for good, are its dependencies up, which web instances may the
//! router use, is everything up.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::instance::Run;
use super::policy::Backoff;
use super::ready::Readiness;
use super::spec::{StartConfig, TypeSpec};
use super::state::{State, seconds};
use crate::output::Source;
use crate::ports;
use crate::router::{Backend, Backends};
use crate::sys::PortHolder;

/// One instance of the formation (`web.1`).
#[derive(Debug)]
pub(super) struct Slot {
    pub name: Arc<str>,
    pub source: Arc<Source>,
    pub type_index: usize,
    /// The port the layout gives this instance.
    pub home_port: u16,
    /// The port of the current (or last) run: differs from `home_port` after a preboot.
    pub port: u16,
    /// `None` until first started (waiting for dependencies).
    pub state: Option<State>,
    pub run: Option<Run>,
    /// The pid of the current (or last) run, for state events.
    pub pid: Option<u32>,
    /// Where the current run listens, once up.
    pub up_addr: Option<SocketAddr>,
    /// Up, but listening on this port instead of `PORT`: out of the router's reach.
    pub elsewhere: Option<u16>,
    /// Preboot: older runs, serving (`addr` set) until the new run is up, then stopping.
    pub retiring: Vec<Retiring>,
    pub generation: u64,
    pub backoff: Backoff,
    pub restart_at: Option<Instant>,
    /// A stop that is a restart (file change): start again once down.
    pub restart_after_stop: bool,
    pub run_started: Instant,
    pub boot_timed_out: bool,
    /// The current run got far enough to count as having run (see `Supervisor::mark_ran`):
    /// an exit 126/127 after that is a crash like any other, not a command that cannot run.
    pub ran: bool,
    pub exit_code: Option<i32>,
}

#[derive(Debug)]
pub(super) struct Retiring {
    pub run: Run,
    pub addr: Option<SocketAddr>,
}

pub(super) fn formation_slots(config: &StartConfig) -> Vec<Slot> {
    let mut slots = Vec::new();
    for spec in &config.types {
        for n in 1..=spec.count {
            let name = format!("{}.{n}", spec.name);
            let port = ports::instance_port(spec.first_port, n);
            slots.push(Slot {
                source: Source::app(&name, spec.index),
                name: name.into(),
                type_index: spec.index,
                home_port: port,
                port,
                state: None,
                run: None,
                pid: None,
                up_addr: None,
                elsewhere: None,
                retiring: Vec::new(),
                generation: 0,
                backoff: Backoff::default(),
                restart_at: None,
                restart_after_stop: false,
                run_started: Instant::now(),
                boot_timed_out: false,
                ran: false,
                exit_code: None,
            });
        }
    }
    slots
}

impl Slot {
    /// No process of this instance is running.
    pub fn is_idle(&self) -> bool {
        self.run.is_none() && self.retiring.is_empty()
    }

    pub fn is_web(&self, config: &StartConfig) -> bool {
        config.types[self.type_index].name == "web"
    }

    pub fn default_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn is_pending(&self) -> bool {
        self.restart_at.is_some() || self.restart_after_stop
    }

    /// Ended for good: nothing running, nothing scheduled, and (if never started) its
    /// dependencies ended without coming up, so it never will start.
    pub fn has_ended(&self, slots: &[Slot], config: &StartConfig) -> bool {
        if !self.is_idle() || self.is_pending() {
            return false;
        }
        match self.state {
            Some(State::Exited | State::Crashed | State::Down) => true,
            Some(State::Starting | State::Up | State::Stopping) => false,
            None => config.types[self.type_index].depends_on.iter().any(|&dep| {
                slots
                    .iter()
                    .filter(|s| s.type_index == dep)
                    .all(|s| s.state != Some(State::Up) && s.has_ended(slots, config))
            }),
        }
    }
}

/// Every instance of the dependency types is `up`.
pub(super) fn dependencies_up(slots: &[Slot], idx: usize, config: &StartConfig) -> bool {
    let deps = &config.types[slots[idx].type_index].depends_on;
    slots
        .iter()
        .filter(|s| deps.contains(&s.type_index))
        .all(|s| s.state == Some(State::Up))
}

/// The router's view of the `web` instances.
pub(super) fn backends(slots: &[Slot], config: &StartConfig, running: bool) -> Backends {
    let web: Vec<&Slot> = slots.iter().filter(|s| s.is_web(config)).collect();
    let mut up = Vec::new();
    for s in &web {
        if let (Some(State::Up), Some(addr), Some(run)) = (s.state, s.up_addr, &s.run) {
            up.push(backend(s, addr, run.id.generation));
        }
        for old in &s.retiring {
            if let Some(addr) = old.addr {
                up.push(backend(s, addr, old.run.id.generation));
            }
        }
    }
    // A crash whose process group is still being cleared has not had its restart
    // decided yet: hold requests rather than answer H10 for that moment.
    let starting = running
        && web.iter().any(|s| {
            matches!(s.state, None | Some(State::Starting))
                || s.is_pending()
                || (s.run.is_some() && matches!(s.state, Some(State::Crashed | State::Exited)))
        });
    let crashed = !starting
        && !web.is_empty()
        && web
            .iter()
            .all(|s| matches!(s.state, Some(State::Crashed | State::Exited)));
    let elsewhere = web.iter().find_map(|s| {
        let port = s.elsewhere.filter(|_| s.state == Some(State::Up))?;
        Some(format!("{}: {}", s.name, elsewhere_text(port, s.port)).into())
    });
    Backends {
        up,
        starting,
        crashed,
        elsewhere,
    }
}

fn backend(s: &Slot, addr: SocketAddr, generation: u64) -> Backend {
    Backend {
        name: Arc::clone(&s.name),
        addr,
        generation,
    }
}

/// The `ready` marker's condition: everything up, one-shot tasks done.
pub(super) fn all_up(slots: &[Slot]) -> bool {
    let settled = |s: &Slot| match s.state {
        Some(State::Up) => true,
        Some(State::Exited) => s.exit_code == Some(0) && !s.is_pending(),
        _ => false,
    };
    slots.iter().any(|s| s.state == Some(State::Up)) && slots.iter().all(settled)
}

/// Where the app answers: the router, else `web.1` itself; `None` without a web process.
pub(super) fn public_url(slots: &[Slot], config: &StartConfig) -> Option<String> {
    let port = match &config.router {
        Some(router) => Some(router.port),
        None => slots.iter().find(|s| s.is_web(config)).map(|s| s.home_port),
    };
    port.map(|p| format!("http://localhost:{p}"))
}

/// `PORT`, foreman's `PS`, node-foreman's `FOREMAN_WORKER_NAME`, and `DYNO` on request.
pub(super) fn instance_env(name: &str, port: Option<u16>, dyno: bool) -> Vec<(String, String)> {
    let mut env = Vec::with_capacity(4);
    if let Some(port) = port {
        env.push(("PORT".to_string(), port.to_string()));
    }
    env.push(("PS".to_string(), name.to_string()));
    env.push(("FOREMAN_WORKER_NAME".to_string(), name.to_string()));
    if dyno {
        env.push(("DYNO".to_string(), name.to_string()));
    }
    env
}

/// What hlocal says, once, of a web process that listens elsewhere (and the router's
/// error page too).
pub(super) fn elsewhere_text(listening: u16, port: u16) -> String {
    format!(
        "listening on {listening}, not on PORT={port}: the router cannot reach it; pass $PORT to the server"
    )
}

/// What holds a web instance's `PORT` after its process group ended.
pub(super) fn port_holder_text(port: u16, holder: Option<&PortHolder>) -> String {
    let Some(holder) = holder else {
        return format!("PORT={port} is still held by another user's process");
    };
    let who = match &holder.command {
        Some(command) => format!("pid {} ({command})", holder.pid),
        None => format!("pid {}", holder.pid),
    };
    if holder.ours {
        format!("{who} left the process group and still holds PORT={port}: stopping it")
    } else {
        format!("PORT={port} is held by {who}, outside hlocal: stop it so the instance can bind")
    }
}

/// Heroku's R10, in its words for a port check, adapted for the other checks.
pub(super) fn boot_timeout_text(spec: &TypeSpec, timeout: Duration) -> String {
    let within = format!("within {} of launch", seconds(timeout));
    let what = match &spec.ready {
        Readiness::Log(regex) => format!("Process did not log a line matching /{regex}/"),
        Readiness::Http(path) => format!("Process did not answer GET {path}"),
        Readiness::Port | Readiness::Spawned => "Web process failed to bind to $PORT".to_string(),
    };
    format!("Error R10 (Boot timeout) -> {what} {within}")
}

/// The port for preboot's new run: back to the layout's port when it is free (so ports
/// stay predictable across successive changes), else any free port.
pub(super) fn preboot_port(current: u16, home: u16) -> u16 {
    if current != home && ports::is_free(home) {
        home
    } else {
        ports::free_port().unwrap_or(home)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_holder_is_named_with_what_happens_to_it() {
        let holder = |ours| PortHolder {
            pid: 42,
            command: Some("node server.js".into()),
            ours,
        };
        assert_eq!(
            port_holder_text(5007, Some(&holder(true))),
            "pid 42 (node server.js) left the process group and still holds PORT=5007: stopping it"
        );
        assert_eq!(
            port_holder_text(5007, Some(&holder(false))),
            "PORT=5007 is held by pid 42 (node server.js), outside hlocal: stop it so the instance can bind"
        );
        assert_eq!(
            port_holder_text(5007, None),
            "PORT=5007 is still held by another user's process"
        );
    }

    #[test]
    fn instance_env_sets_port_ps_and_worker_name_but_no_dyno_by_default() {
        let env = instance_env("web.1", Some(5007), false);
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["PORT", "PS", "FOREMAN_WORKER_NAME"]);
        assert!(instance_env("web.1", None, true).contains(&("DYNO".into(), "web.1".into())));
    }
}
