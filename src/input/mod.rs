//! What the user wrote: the Procfile, env files, the formation, durations and
//! hlocal.toml. Each parser is pure over text and returns a small error with a line
//! number; `textfile` reads the files (regular files only, capped) and quotes input in
//! messages. Nothing here knows about processes, ports or the terminal.

pub mod duration;
pub mod env;
pub mod formation;
pub mod procfile;
pub mod settings;
pub mod textfile;
