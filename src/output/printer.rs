//! The printer thread.
pub struct Printer;
