//! Requests from the control socket (`hlocal ps`, `restart`, `stop`, `start`, `scale`,
//! `wait`): the supervisor answers them between its other events, so it stays the only
//! writer of the process table.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::life::{Life, Then};
use super::slot::{self, Slot};
use super::state::State;
use super::{Event, Phase, Supervisor};
use crate::control::protocol::{Command, ErrorKind, Problem};
use crate::control::{ControlRequest, check_names};
use crate::output::Marker;
use crate::sys::Signal;

/// Instances of one type at most: the type's block of ports (section "port layout").
const MAX_PER_TYPE: usize = 100;

pub(super) type Reply = oneshot::Sender<Result<Value, Problem>>;

/// Where `hlocal wait` stands.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    pending: Vec<Reply>,
    /// Why the app cannot become ready, since the last time it was or the last restart
    /// cycle began: a crash, an R10 or a failed release phase before `ready`.
    trouble: Option<String>,
    /// `ready` was printed in this restart cycle: what fails afterwards is in the log, and
    /// no `error` marker follows until the next `reloading`.
    ready_in_cycle: bool,
}

impl Supervisor {
    pub(super) async fn on_control(&mut self, request: ControlRequest) {
        let ControlRequest { command, reply } = request;
        let result = match command {
            Command::Ps => Ok(self.ps()),
            Command::Wait => return self.wait(reply),
            _ if matches!(
                self.phase,
                Phase::Stopping { .. } | Phase::Killing { .. } | Phase::Done(_)
            ) =>
            {
                Err(Problem::new(
                    ErrorKind::ShuttingDown,
                    "hlocal is shutting down",
                ))
            }
            Command::Stop { names } if names.is_empty() => Ok(self.stop_all().await),
            _ if self.phase == Phase::Release => Err(Problem::new(
                ErrorKind::Invalid,
                "the release phase is running: try again once the app has started",
            )),
            Command::Restart { names } => self.restart_named(&names).await,
            Command::Stop { names } => self.stop_named(&names).await,
            Command::Start { names } => self.start_named(&names).await,
            Command::Scale { formation } => self.scale(&formation).await,
            Command::Hello
            | Command::Logs { .. }
            | Command::Subscribe
            | Command::Attach { .. }
            | Command::Resize { .. } => Err(Problem::new(
                ErrorKind::Invalid,
                "answered by the control server, not the supervisor",
            )),
        };
        let _ = reply.send(result);
    }

    /// Every instance of the formation, in Procfile order, and where the app answers.
    fn ps(&self) -> Value {
        // Scaled away, an instance stays listed until it has stopped.
        let shown = self.slots.iter().filter(|s| !s.retired || !s.is_idle());
        let mut shown: Vec<&Slot> = shown.collect();
        shown.sort_by_key(|s| (s.type_index, s.number));
        let instances: Vec<Value> = shown.iter().map(|s| self.ps_row(s)).collect();
        json!({
            "instances": instances,
            "url": slot::public_url(&self.slots, &self.config),
        })
    }

    fn ps_row(&self, s: &Slot) -> Value {
        let uptime = match s.life() {
            Life::Starting(current) | Life::Up(current, _) => {
                u64::try_from(current.started.elapsed().as_millis()).ok()
            }
            _ => None,
        };
        json!({
            "name": &*s.name,
            "type": self.config.types[s.type_index].name,
            "state": s.state().map_or("waiting", State::name),
            "pid": s.life().running_pid(),
            "port": s.port,
            "uptime_ms": uptime,
            "restarts": s.generation.saturating_sub(1),
            "exit_code": s.life().code(),
        })
    }

    /// Every type (the release phase's excepted) followed by its instances: what a NAME
    /// may be.
    pub(super) fn known_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for spec in &self.config.types {
            names.push(spec.name.clone());
            let mut numbers: Vec<usize> = self
                .slots
                .iter()
                .filter(|s| s.type_index == spec.index && !s.retired)
                .map(|s| s.number)
                .collect();
            numbers.sort_unstable();
            names.extend(numbers.iter().map(|n| format!("{}.{n}", spec.name)));
        }
        names
    }

    /// The slots `names` select (none: every instance of the formation).
    fn select(&self, names: &[String]) -> Result<Vec<usize>, Problem> {
        check_names(names, &self.known_names())?;
        let wanted = |s: &Slot| {
            names.is_empty()
                || names
                    .iter()
                    .any(|name| *name == *s.name || *name == self.config.types[s.type_index].name)
        };
        let selected: Vec<usize> = (0..self.slots.len())
            .filter(|&idx| !self.slots[idx].retired && wanted(&self.slots[idx]))
            .collect();
        if selected.is_empty() && !names.is_empty() {
            let message = format!(
                "{} has no instances (scaled to 0): hlocal scale TYPE=N runs some",
                names.join(", ")
            );
            return Err(Problem::new(ErrorKind::Invalid, message));
        }
        Ok(selected)
    }

    async fn restart_named(&mut self, names: &[String]) -> Result<Value, Problem> {
        let selected = self.select(names)?;
        if !selected.is_empty() {
            let reason = format!("hlocal restart {}", names.join(" "));
            self.announce_reloading(reason.trim_end()).await;
        }
        for &idx in &selected {
            let name = Arc::clone(&self.slots[idx].name);
            self.log
                .message(
                    None,
                    format!("Restarting {name}: requested by hlocal restart"),
                )
                .await;
            if self.slots[idx].held {
                self.slots[idx].resume();
            } else {
                self.restart_for_change(idx).await;
            }
        }
        Ok(json!({ "text": format!("restarting {}", self.listed(&selected)) }))
    }

    async fn stop_named(&mut self, names: &[String]) -> Result<Value, Problem> {
        let selected = self.select(names)?;
        for &idx in &selected {
            self.slots[idx].held = true;
            self.stop_for_good(idx).await;
        }
        Ok(json!({ "text": format!("stopping {}", self.listed(&selected)) }))
    }

    async fn start_named(&mut self, names: &[String]) -> Result<Value, Problem> {
        let selected = self.select(names)?;
        let mut started = Vec::new();
        for &idx in &selected {
            if self.slots[idx].resume() {
                started.push(idx);
            }
        }
        let text = match started.len() {
            0 => format!("{} already running", self.listed(&selected)),
            _ => format!("starting {}", self.listed(&started)),
        };
        Ok(json!({ "text": text }))
    }

    /// `hlocal stop` without names: as Ctrl-C.
    async fn stop_all(&mut self) -> Value {
        match self.phase {
            Phase::Release => self.interrupt_release(Event::Signal(Signal::Term)).await,
            _ => {
                self.log
                    .message(None, "hlocal stop: stopping all processes")
                    .await;
                self.begin_shutdown(0).await;
            }
        }
        json!({ "text": "stopping the app" })
    }

    /// A running instance stops and stays down; a pending restart is cancelled.
    async fn stop_for_good(&mut self, idx: usize) {
        if let Some(down) = self.slots[idx].stop_for_good() {
            self.print(idx, down).await;
        }
        self.stop_slot(idx, Then::Down).await;
    }

    async fn scale(&mut self, formation: &BTreeMap<String, usize>) -> Result<Value, Problem> {
        let changes = self.check_scale(formation)?;
        self.check_new_ports(&changes).await?;
        let mut said = Vec::new();
        for (type_index, count) in changes {
            let name = self.config.types[type_index].name.clone();
            self.scale_type(type_index, count).await;
            said.push(format!("{name}={count}"));
        }
        self.publish_names();
        Ok(json!({ "text": format!("scaled to {}", said.join(", ")) }))
    }

    /// Each type named must be in the Procfile (not `release`) and fit its port block.
    fn check_scale(
        &self,
        formation: &BTreeMap<String, usize>,
    ) -> Result<Vec<(usize, usize)>, Problem> {
        let types: Vec<String> = self.config.types.iter().map(|t| t.name.clone()).collect();
        let mut changes = Vec::new();
        for (name, &count) in formation {
            if name == crate::input::procfile::RELEASE {
                return Err(Problem::new(
                    ErrorKind::Invalid,
                    "release runs once before the app; it cannot be scaled",
                ));
            }
            let Some(type_index) = types.iter().position(|t| t == name) else {
                let mut problem = Problem::new(
                    ErrorKind::UnknownName,
                    format!(
                        "no process type named \"{name}\"; known: {}",
                        types.join(", ")
                    ),
                );
                problem.known = types.clone();
                return Err(problem);
            };
            if count > MAX_PER_TYPE {
                let message = format!(
                    "{name}={count}: at most {MAX_PER_TYPE} instances per process type (its block of ports)"
                );
                return Err(Problem::new(ErrorKind::Invalid, message));
            }
            changes.push((type_index, count));
        }
        Ok(changes)
    }

    /// Every instance a scale adds needs its port free, as `hlocal start` checks them all:
    /// a taken one refuses the whole request, rather than that instance failing to bind
    /// (a crash, an R10) after the others changed.
    async fn check_new_ports(&self, changes: &[(usize, usize)]) -> Result<(), Problem> {
        let wanted: Vec<(String, u16)> = changes
            .iter()
            .flat_map(|&(type_index, count)| self.new_instances(type_index, count))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        self.host.check_free(wanted).await.map_err(|taken| {
            let message = format!("cannot scale: {taken}; nothing was started or stopped");
            Problem::new(ErrorKind::Invalid, message)
        })
    }

    /// `(name, port)` of each instance scaling `type_index` to `count` starts: a new row
    /// on its port of the layout, or a row scaled away before on the port it had. A row
    /// scaled away whose run is still stopping is left out: its own process holds the
    /// port until it is gone, and it starts again after, as a restart does.
    fn new_instances(&self, type_index: usize, count: usize) -> Vec<(String, u16)> {
        let spec = &self.config.types[type_index];
        (1..=count)
            .filter_map(|n| match self.row(type_index, n) {
                None => {
                    let fresh = Slot::new(spec, n);
                    Some((fresh.name.to_string(), fresh.port))
                }
                Some(idx) => {
                    let s = &self.slots[idx];
                    (s.retired && s.is_idle()).then(|| (s.name.to_string(), s.port))
                }
            })
            .collect()
    }

    /// The row of instance `number` of the type, if it ever existed.
    fn row(&self, type_index: usize, number: usize) -> Option<usize> {
        (0..self.slots.len()).find(|&idx| {
            let s = &self.slots[idx];
            s.type_index == type_index && s.number == number
        })
    }

    /// New instances take the next ports of the type's block; removed ones go highest
    /// number first. Rows scaled away stay (run ids index the table) and come back when
    /// scaled up again.
    async fn scale_type(&mut self, type_index: usize, count: usize) {
        let mut rows: Vec<usize> = (0..self.slots.len())
            .filter(|&idx| self.slots[idx].type_index == type_index)
            .collect();
        rows.sort_by_key(|&idx| self.slots[idx].number);
        for &idx in rows.iter().rev() {
            let s = &self.slots[idx];
            if s.number > count && !s.retired {
                self.slots[idx].retired = true;
                self.stop_for_good(idx).await;
            }
        }
        for n in 1..=count {
            match self.row(type_index, n) {
                Some(idx) if self.slots[idx].retired => {
                    self.slots[idx].resume();
                }
                Some(_) => {}
                None => {
                    let spec = &self.config.types[type_index];
                    self.slots.push(Slot::new(spec, n));
                }
            }
        }
    }

    fn listed(&self, selected: &[usize]) -> String {
        let names: Vec<&str> = selected.iter().map(|&idx| &*self.slots[idx].name).collect();
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    }

    /// Tells the control server which names exist (after start and every scale).
    pub(super) fn publish_names(&self) {
        if let Some(tx) = &self.names {
            let names = self.known_names();
            tx.send_if_modified(|current| {
                let changed = *current != names;
                if changed {
                    *current = names;
                }
                changed
            });
        }
    }

    /// `hlocal wait`: answered now if the app is ready or in trouble, else when it is.
    fn wait(&mut self, reply: Reply) {
        if self.ready_announced {
            let _ = reply.send(Ok(self.ready_answer()));
        } else if let Some(trouble) = &self.waiters.trouble {
            let _ = reply.send(Err(Problem::new(ErrorKind::Failed, trouble.clone())));
        } else {
            self.waiters.pending.push(reply);
        }
    }

    fn ready_answer(&self) -> Value {
        json!({ "ready": true, "url": slot::public_url(&self.slots, &self.config) })
    }

    /// The app is ready: every waiter hears it, and past trouble is forgotten.
    pub(super) fn answer_waiters_ready(&mut self) {
        self.waiters.trouble = None;
        self.waiters.ready_in_cycle = true;
        let answer = self.ready_answer();
        for reply in self.waiters.pending.drain(..) {
            let _ = reply.send(Ok(answer.clone()));
        }
    }

    /// The app cannot become ready (until something changes): every waiter hears why
    /// (also once it was ready: a crash ends that), and the `error` marker says it once
    /// per restart cycle, unless that cycle's `ready` came first (an editor's task has
    /// ended then; a later `error` would only contradict it).
    pub(super) async fn answer_waiters_failed(&mut self, why: String) {
        for reply in self.waiters.pending.drain(..) {
            let _ = reply.send(Err(Problem::new(ErrorKind::Failed, why.clone())));
        }
        if self.waiters.trouble.is_none() && !self.waiters.ready_in_cycle {
            let reason = why.clone();
            self.log.marker(Marker::Error { reason }).await;
        }
        self.waiters.trouble = Some(why);
    }

    /// A restart cycle begins (files changed, `hlocal restart`): the `reloading` marker,
    /// and past trouble no longer answers `hlocal wait`, the new runs will.
    pub(super) async fn announce_reloading(&mut self, reason: &str) {
        self.waiters.trouble = None;
        self.waiters.ready_in_cycle = false;
        let reason = reason.to_string();
        self.log.marker(Marker::Reloading { reason }).await;
    }
}
