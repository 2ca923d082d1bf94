//! The process table's rows, their transitions (each returns the state change to
//! print) and the pure questions the supervisor asks of them: has this instance ended
//! for good, are its dependencies up, which web instances may the router use, is
//! everything up.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::instance::{Run, RunId};
use super::life::{AfterRun, Change, Current, Ended, Life, Serving, Then};
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
    /// `n` of `web.n`.
    pub number: usize,
    /// Stopped through the control socket (`hlocal stop web.1`): it stays down, is not
    /// restarted, and counts neither against "everything up" nor "everything ended".
    pub held: bool,
    /// Scaled away (`hlocal scale web=1`): out of the formation once its run is gone. The
    /// row stays, so the indexes in run ids stay valid; scaling up again reuses it.
    pub retired: bool,
    /// The port the layout gives this instance.
    pub home_port: u16,
    /// The port of the current (or last) run: differs from `home_port` after a preboot.
    pub port: u16,
    life: Life,
    /// Preboot: older runs, serving (`addr` set) until the new run is up, then stopping.
    pub retiring: Vec<Retiring>,
    pub generation: u64,
    pub backoff: Backoff,
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
            slots.push(Slot::new(spec, n));
        }
    }
    slots
}

impl Slot {
    /// Instance `n` of `spec`, on its port of the layout, not started yet.
    pub fn new(spec: &TypeSpec, n: usize) -> Slot {
        let name = format!("{}.{n}", spec.name);
        let port = ports::instance_port(spec.first_port, n);
        Slot {
            source: Source::app(&name, spec.index),
            name: name.into(),
            type_index: spec.index,
            number: n,
            held: false,
            retired: false,
            home_port: port,
            port,
            life: Life::NEW,
            retiring: Vec::new(),
            generation: 0,
            backoff: Backoff::default(),
        }
    }
}

/// Queries.
impl Slot {
    pub fn state(&self) -> Option<State> {
        self.life.state()
    }

    pub fn life(&self) -> &Life {
        &self.life
    }

    /// The run whose reports count: the live one, or the one being cleared.
    pub fn run(&self) -> Option<&Run> {
        self.life.run()
    }

    pub fn current_mut(&mut self) -> Option<&mut Current> {
        self.life.current_mut()
    }

    /// No process of this instance is running.
    pub fn is_idle(&self) -> bool {
        self.run().is_none() && self.retiring.is_empty()
    }

    pub fn is_web(&self, config: &StartConfig) -> bool {
        config.types[self.type_index].name == "web"
    }

    pub fn default_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Ended for good: nothing running, nothing scheduled, not waiting for a file change
    /// to run again, and (if never started) its dependencies ended without coming up, so
    /// it never will start.
    pub fn has_ended(&self, slots: &[Slot], config: &StartConfig) -> bool {
        if !self.is_idle() || self.life.is_pending() || self.held {
            return false;
        }
        if self.retired {
            return true;
        }
        match self.state() {
            Some(State::Exited | State::Crashed) => !config.watches(self.type_index),
            Some(State::Down) => true,
            Some(State::Starting | State::Up | State::Stopping) => false,
            None => config.types[self.type_index].depends_on.iter().any(|&dep| {
                slots
                    .iter()
                    .filter(|s| s.type_index == dep)
                    .all(|s| s.state() != Some(State::Up) && s.has_ended(slots, config))
            }),
        }
    }

    /// The id of the next run.
    pub fn next_run(&mut self, idx: usize) -> RunId {
        self.generation += 1;
        RunId {
            slot: idx,
            generation: self.generation,
        }
    }
}

/// Transitions: each returns the change of state to print.
impl Slot {
    fn change(&self, from: Option<State>, to: State) -> Change {
        Change {
            from,
            to,
            pid: self.life.pid(),
            code: self.life.code(),
        }
    }

    /// The state a change from here leaves: the current one, or, put back in line by
    /// `hlocal start`, the one it was taken from.
    fn leaving(&self) -> Option<State> {
        match self.life {
            Life::Waiting { before } => before,
            _ => self.state(),
        }
    }

    /// Leaves the current stage for a new run's. An up run being replaced (preboot) keeps
    /// serving until its successor is up.
    fn leave(&mut self) -> Option<State> {
        let from = self.leaving();
        if let Life::Up(old, serving) = std::mem::replace(&mut self.life, Life::NEW) {
            let addr = match serving {
                Serving::At(addr) => Some(addr),
                Serving::Elsewhere(_) => None,
            };
            self.retiring.push(Retiring { run: old.run, addr });
        }
        from
    }

    pub fn start(&mut self, current: Current, port: u16) -> Change {
        let from = self.leave();
        self.port = port;
        self.life = Life::Starting(current);
        self.change(from, State::Starting)
    }

    /// `sh` could not be started: `starting` (no pid), then `crashed` with `code`, or
    /// with no code when the spawn is retried.
    pub fn spawn_failed(
        &mut self,
        port: u16,
        code: Option<i32>,
        restart_at: Option<Instant>,
    ) -> [Change; 2] {
        let from = self.leave();
        self.port = port;
        self.life = Life::Ended(Ended {
            crashed: true,
            code,
            pid: None,
            started: Instant::now(),
            ran: false,
            clearing: None,
            restart_at,
        });
        let starting = Change {
            from,
            to: State::Starting,
            pid: None,
            code: None,
        };
        [starting, self.change(Some(State::Starting), State::Crashed)]
    }

    pub fn up(&mut self, serving: Serving) -> Option<Change> {
        match std::mem::replace(&mut self.life, Life::NEW) {
            Life::Starting(current) => {
                self.life = Life::Up(current, serving);
                Some(self.change(Some(State::Starting), State::Up))
            }
            other => {
                self.life = other;
                None
            }
        }
    }

    /// A web process that listened elsewhere now listens on `PORT` too.
    pub fn bound_late(&mut self, addr: SocketAddr) -> bool {
        match &mut self.life {
            Life::Up(_, serving @ Serving::Elsewhere(_)) => {
                *serving = Serving::At(addr);
                true
            }
            _ => false,
        }
    }

    /// The starting run's R10: the run to kill.
    pub fn boot_timed_out(&mut self) -> Option<&Run> {
        match &mut self.life {
            Life::Starting(current) => {
                current.boot_timed_out = true;
                Some(&current.run)
            }
            _ => None,
        }
    }

    /// The main process exited: `crashed` or `exited`, unless it was being stopped.
    pub fn exited(&mut self, code: i32) -> Option<Change> {
        let from = self.state();
        match std::mem::replace(&mut self.life, Life::NEW) {
            Life::Stopping { current, then, .. } => {
                self.life = Life::Stopping {
                    current,
                    then,
                    code: Some(code),
                };
                None
            }
            Life::Starting(current) | Life::Up(current, _) => {
                self.life = Life::Ended(Ended {
                    crashed: current.boot_timed_out || code != 0,
                    code: Some(code),
                    pid: Some(current.pid),
                    started: current.started,
                    ran: current.ran,
                    clearing: Some(current.run),
                    restart_at: None,
                });
                let to = self.state().unwrap_or(State::Crashed);
                Some(self.change(from, to))
            }
            other => {
                self.life = other;
                None
            }
        }
    }

    /// The run's process group is gone.
    pub fn finished(&mut self) -> AfterRun {
        match std::mem::replace(&mut self.life, Life::NEW) {
            Life::Stopping {
                current,
                then,
                code,
            } => {
                self.life = Life::Down {
                    pid: Some(current.pid),
                    code,
                };
                AfterRun::Down(self.change(Some(State::Stopping), State::Down), then)
            }
            Life::Ended(ended) => {
                self.life = Life::Ended(Ended {
                    clearing: None,
                    ..ended
                });
                AfterRun::Ended
            }
            other => {
                self.life = other;
                AfterRun::Nothing
            }
        }
    }

    /// Tells a starting or up run to stop; `then` follows once it is gone.
    pub fn stop(&mut self, then: Then) -> Option<Change> {
        let from = self.state();
        match std::mem::replace(&mut self.life, Life::NEW) {
            Life::Starting(current) | Life::Up(current, _) => {
                self.life = Life::Stopping {
                    current,
                    then,
                    code: None,
                };
                Some(self.change(from, State::Stopping))
            }
            other => {
                self.life = other;
                None
            }
        }
    }

    /// Stopping so as to start again: newer code changes nothing for it, as the next run
    /// starts from whatever is on disk once this one is gone.
    pub fn stopping_to_restart(&self) -> bool {
        matches!(
            self.life,
            Life::Stopping {
                then: Then::Restart,
                ..
            }
        )
    }

    /// New code: whatever stage it is in, it starts again as soon as it can.
    pub fn restart_soon(&mut self) {
        match &mut self.life {
            Life::Stopping { then, .. } => *then = Then::Restart,
            Life::Ended(ended) => ended.restart_at = Some(Instant::now()),
            _ => {}
        }
    }

    /// `hlocal start NAME`: a stopped or ended instance starts again (at the next
    /// `settle`, once its dependencies are up); a stopping one once it is gone. `false`
    /// when it is already starting or up.
    pub fn resume(&mut self) -> bool {
        self.held = false;
        self.retired = false;
        self.backoff = Backoff::default();
        match &mut self.life {
            Life::Starting(_) | Life::Up(..) => false,
            Life::Stopping { then, .. } => {
                *then = Then::Restart;
                true
            }
            Life::Ended(ended) if ended.clearing.is_some() => {
                ended.restart_at = Some(Instant::now());
                true
            }
            Life::Waiting { .. } | Life::Ended(_) | Life::Down { .. } => {
                let before = self.leaving();
                self.life = Life::Waiting { before };
                true
            }
        }
    }

    /// Schedules the restart of an ended run.
    pub fn schedule(&mut self, at: Instant) {
        if let Life::Ended(ended) = &mut self.life {
            ended.restart_at = Some(at);
        }
    }

    /// Takes a restart that is due by `now`.
    pub fn take_due(&mut self, now: Instant) -> bool {
        let due = self.life.restart_due().is_some_and(|at| at <= now);
        if let (true, Life::Ended(ended)) = (due, &mut self.life) {
            ended.restart_at = None;
        }
        due
    }

    /// hlocal's shutdown: no restart follows any more. A crash waiting out its back-off
    /// is `down` now; a crash for good stays `crashed`, as the last word on it.
    pub fn no_more_restarts(&mut self) -> Option<Change> {
        self.shut_down(false)
    }

    /// `hlocal stop NAME`: as [`Self::no_more_restarts`], and any ended run is `down`
    /// too: a stopped instance is `down`, whatever it was.
    pub fn stop_for_good(&mut self) -> Option<Change> {
        self.shut_down(true)
    }

    fn shut_down(&mut self, ended_too: bool) -> Option<Change> {
        match &mut self.life {
            Life::Stopping { then, .. } => *then = Then::Down,
            Life::Ended(ended) => {
                let waiting = ended.restart_at.take().is_some();
                if (waiting || ended_too) && ended.clearing.is_none() {
                    let from = self.state();
                    self.life = Life::Down {
                        pid: self.life.pid(),
                        code: self.life.code(),
                    };
                    return Some(self.change(from, State::Down));
                }
            }
            _ => {}
        }
        None
    }

    /// The run `id` was killed and is gone (a second Ctrl-C) without being the current
    /// run's stop: an old run preboot kept, or what was left of an ended run's group.
    pub fn forget(&mut self, id: RunId) {
        if self.run().is_some_and(|r| r.id == id) {
            let (pid, code) = (self.life.pid(), self.life.code());
            self.life = match std::mem::replace(&mut self.life, Life::NEW) {
                Life::Ended(ended) => Life::Ended(Ended {
                    clearing: None,
                    ..ended
                }),
                _ => Life::Down { pid, code },
            };
        }
        self.retiring.retain(|r| r.run.id != id);
    }
}

/// Every instance of the dependency types is `up`.
pub(super) fn dependencies_up(slots: &[Slot], idx: usize, config: &StartConfig) -> bool {
    let deps = &config.types[slots[idx].type_index].depends_on;
    slots
        .iter()
        .filter(|s| !s.retired && deps.contains(&s.type_index))
        .all(|s| s.state() == Some(State::Up))
}

/// The router's view of the `web` instances.
pub(super) fn backends(slots: &[Slot], config: &StartConfig, running: bool) -> Backends {
    let web: Vec<&Slot> = slots
        .iter()
        .filter(|s| s.is_web(config) && !s.retired)
        .collect();
    let mut up = Vec::new();
    for s in &web {
        if let Life::Up(current, Serving::At(addr)) = &s.life {
            up.push(backend(s, *addr, current.run.id.generation));
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
        && web.iter().any(|s| match &s.life {
            Life::Waiting { .. } | Life::Starting(_) => true,
            Life::Ended(ended) => ended.clearing.is_some() || ended.restart_at.is_some(),
            life => life.is_pending(),
        });
    let crashed =
        !starting && !web.is_empty() && web.iter().all(|s| matches!(s.life, Life::Ended(_)));
    let elsewhere = web.iter().find_map(|s| {
        let Life::Up(_, Serving::Elsewhere(port)) = s.life else {
            return None;
        };
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
    let settled = |s: &Slot| match &s.life {
        Life::Up(..) => true,
        Life::Ended(ended) => !ended.crashed && ended.code == Some(0) && ended.restart_at.is_none(),
        _ => false,
    };
    // Instances stopped or scaled away through the control socket are down on purpose.
    let running: Vec<&Slot> = slots.iter().filter(|s| !s.held && !s.retired).collect();
    running.iter().any(|s| s.state() == Some(State::Up)) && running.iter().all(|s| settled(s))
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

/// What hlocal says halfway to the boot timeout of a web process that listens elsewhere.
pub(super) fn not_yet_text(listening: u16, port: u16) -> String {
    format!(
        "listening on {listening} but not yet on PORT={port}: unless it binds PORT, the router cannot reach it; pass $PORT to the server"
    )
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
