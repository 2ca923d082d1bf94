//! Config vars from env files (SPEC §1). (skeleton — to be implemented)

use std::path::Path;

use crate::error::Error;

/// Reads the files in order; later files override earlier ones. Keys keep the order in
/// which they were first seen.
pub fn load_files(paths: &[&Path]) -> Result<Vec<(String, String)>, Error> {
    let _ = paths;
    todo!()
}
