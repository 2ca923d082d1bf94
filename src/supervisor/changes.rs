//! Restarts for new code: which instances a batch of changed files concerns, and how
//! each is restarted (stop then start, or Heroku's preboot for `web`).

use std::path::PathBuf;
use std::sync::Arc;

use super::life::Then;
use super::spec::TypeWatch;
use super::state::State;
use super::{Phase, Supervisor, policy};

impl Supervisor {
    pub(super) async fn on_files_changed(&mut self, paths: &[PathBuf]) {
        if self.phase != Phase::Running {
            return;
        }
        let mut reloading = false;
        for idx in 0..self.slots.len() {
            let type_index = self.slots[idx].type_index;
            if !self.config.watches(type_index) {
                continue;
            }
            let changed = match &self.config.types[type_index].watch {
                TypeWatch::Only(filter) => filter.first_match(paths),
                _ => paths.first().map(PathBuf::as_path),
            };
            let Some(path) = changed else { continue };
            // Saves that come while the old run is still stopping join that restart
            // cycle (one `reloading:` marker for it), rather than announce another.
            if self.slots[idx].stopping_to_restart() {
                continue;
            }
            if !reloading {
                reloading = true;
                let reason = format!("{} changed", path.display());
                self.announce_reloading(&reason).await;
            }
            let text = format!(
                "Restarting {}: {} changed",
                self.slots[idx].name,
                path.display()
            );
            self.log.message(None, text).await;
            self.restart_for_change(idx).await;
        }
    }

    /// New code: restart now, whatever the back-off said.
    pub(super) async fn restart_for_change(&mut self, idx: usize) {
        let preboot = self.config.preboot && self.slots[idx].is_web(&self.config);
        let s = &mut self.slots[idx];
        s.backoff = policy::Backoff::default();
        match s.state() {
            Some(State::Up) if preboot => self.preboot(idx).await,
            Some(State::Starting | State::Up) => self.stop_slot(idx, Then::Restart).await,
            _ => s.restart_soon(),
        }
    }

    /// Heroku's preboot: the new run starts on another port while the old one keeps
    /// serving; the old one gets its stop signal only once the new one is up.
    async fn preboot(&mut self, idx: usize) {
        let s = &self.slots[idx];
        let (current, home, name) = (s.port, s.home_port, Arc::clone(&s.name));
        let port = self.host.preboot_port(current, home).await;
        let text = format!(
            "Preboot: starting a new process on port {port}; the old one serves until it is up"
        );
        self.log.message(Some(&name), text).await;
        self.start_run_on(idx, port).await;
    }
}
