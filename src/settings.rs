//! hlocal.toml (SPEC §1). (skeleton — to be implemented)
