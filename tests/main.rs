//! Integration tests: each module drives the real `hlocal` binary.
