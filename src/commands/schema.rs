//! `hlocal schema`: hlocal.toml's JSON Schema, derived from the types that read the file
//! (`input::settings`), for editors that complete and validate it (docs/editors.md).
//! The repository ships the same text as `hlocal.schema.json`; a test keeps them equal.

use super::print_out;
use crate::error::Error;
use crate::input::settings;

pub fn schema() -> Result<i32, Error> {
    print_out(schema_text().as_bytes())
}

pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&settings::json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
