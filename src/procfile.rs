//! Procfile parsing (SPEC §1): `name: command` per line, in file order.
//! (skeleton — to be implemented)

use std::path::Path;

use crate::error::Error;

/// One `name: command` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
    /// 1-based line in the Procfile (0 for `--start-cmd`).
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {}

/// Parses Procfile text. Errors carry the 1-based line.
pub fn parse(text: &str) -> Result<Vec<ProcessType>, (usize, ProcfileError)> {
    let _ = text;
    todo!()
}

/// Reads and parses the file at `path`; errors read `Procfile:3: …`.
pub fn load(path: &Path) -> Result<Vec<ProcessType>, Error> {
    let _ = path;
    todo!()
}
