//! Instance states and the Heroku wording of each change.
//!
//! `starting → up → (crashed | exited) → …` and `stopping → down`. Entering `starting`
//! reads `Starting process with command `CMD``, entering `stopping` reads `Stopping all
//! processes with SIGTERM`, every other change `State changed from A to B`: the lines
//! Heroku's dyno manager prints.

use crate::sys::Signal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Up,
    Crashed,
    Exited,
    Stopping,
    Down,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Up => "up",
            State::Crashed => "crashed",
            State::Exited => "exited",
            State::Stopping => "stopping",
            State::Down => "down",
        }
    }
}

/// What a change of state prints. Entering `starting` from an earlier state prints both
/// Heroku lines (`State changed from crashed to starting`, then `Starting process …`);
/// the first is the state change, the second a plain message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    pub change: String,
    pub then: Option<String>,
}

pub fn describe(from: Option<State>, to: State, command: &str, stop_signal: Signal) -> Wording {
    let starting = format!("Starting process with command `{command}`");
    match (from, to) {
        (None, State::Starting) => Wording {
            change: starting,
            then: None,
        },
        (_, State::Stopping) => Wording {
            change: format!("Stopping all processes with {stop_signal}"),
            then: None,
        },
        (Some(from), State::Starting) => Wording {
            change: changed(from.name(), "starting"),
            then: Some(starting),
        },
        (from, to) => Wording {
            change: changed(from.map_or("none", State::name), to.name()),
            then: None,
        },
    }
}

/// `5 seconds`, `0.5 seconds`, `1 second`, as in Heroku's R10 and R12 messages.
pub fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if (s - 1.0).abs() < f64::EPSILON {
        "1 second".into()
    } else {
        format!("{s} seconds")
    }
}

fn changed(from: &str, to: &str) -> String {
    format!("State changed from {from} to {to}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(from: Option<State>, to: State) -> Wording {
        describe(from, to, "python app.py", Signal::Term)
    }

    #[test]
    fn first_start_names_the_command() {
        assert_eq!(
            text(None, State::Starting).change,
            "Starting process with command `python app.py`"
        );
        assert_eq!(text(None, State::Starting).then, None);
    }

    #[test]
    fn restart_prints_the_change_then_the_command() {
        let w = text(Some(State::Crashed), State::Starting);
        assert_eq!(w.change, "State changed from crashed to starting");
        assert_eq!(
            w.then.as_deref(),
            Some("Starting process with command `python app.py`")
        );
    }

    #[test]
    fn stopping_names_the_signal() {
        assert_eq!(
            describe(Some(State::Up), State::Stopping, "x", Signal::Int).change,
            "Stopping all processes with SIGINT"
        );
    }

    #[test]
    fn seconds_are_spelled_as_heroku_does() {
        use std::time::Duration;
        assert_eq!(seconds(Duration::from_secs(5)), "5 seconds");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 seconds");
        assert_eq!(seconds(Duration::from_secs(1)), "1 second");
    }

    #[test]
    fn other_changes() {
        assert_eq!(
            text(Some(State::Starting), State::Up).change,
            "State changed from starting to up"
        );
        assert_eq!(
            text(Some(State::Up), State::Crashed).change,
            "State changed from up to crashed"
        );
        assert_eq!(
            text(Some(State::Stopping), State::Down).change,
            "State changed from stopping to down"
        );
    }
}
