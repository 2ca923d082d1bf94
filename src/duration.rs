//! Durations as users write them (SPEC §9): `5`, `0.2`, `200ms`, `5s`, `1m`.
//! (skeleton — to be implemented)

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {}

pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let _ = text;
    todo!()
}
