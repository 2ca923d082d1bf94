//! Formation parsing (SPEC §1): `web=2,worker=1`, `all=N`, positional `web worker`.
//! (skeleton — to be implemented)

use crate::procfile::ProcessType;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Formation {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormationError {}

/// `-m web=2,worker=1` / `all=2` / hlocal.toml `formation = "…"`.
pub fn parse(spec: &str) -> Result<Formation, FormationError> {
    let _ = spec;
    todo!()
}

/// `hlocal start web=2,worker=1` or `hlocal start web worker`.
pub fn from_positional(args: &[String]) -> Result<Formation, FormationError> {
    let _ = args;
    todo!()
}

/// Instance count per type, aligned with `types` (Procfile order, `release` excluded).
pub fn resolve(formation: &Formation, types: &[ProcessType]) -> Result<Vec<usize>, FormationError> {
    let _ = (formation, types);
    todo!()
}
