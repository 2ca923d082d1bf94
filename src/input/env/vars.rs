//! What both env file forms produce (config vars in order), the one limit every
//! variable must fit, and what can be wrong with a file's text: the leaf `dotenv` and
//! `json` share.

/// Config vars in order: `(name, value)`.
pub type Vars = Vec<(String, String)>;

/// Linux's MAX_ARG_STRLEN (32 pages): execve refuses one `NAME=value` string longer than
/// this, NUL included, whatever the total size of the environment.
pub const MAX_VAR_BYTES: usize = 32 * 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("expected NAME=value, found no \"=\"")]
    MissingEquals,
    #[error(
        "invalid variable name {0:?} (use letters, digits, \"_\" and \".\", not starting with a digit)"
    )]
    InvalidKey(String),
    #[error("the value of {0}: {1}")]
    InvalidValue(String, ValueProblem),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid variable name {0:?} (a name cannot be empty or contain \"=\" or NUL)")]
    InvalidName(String),
    #[error("the value of {0:?} contains a NUL byte")]
    NulInValue(String),
    #[error(
        "{0} is {1} bytes long; a process cannot be given a variable over 128 KiB (Linux's MAX_ARG_STRLEN)"
    )]
    TooLong(String, usize),
}

/// What is wrong with a dotenv value, in words that never quote the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("unterminated single quote")]
    UnterminatedSingle,
    #[error("unterminated double quote")]
    UnterminatedDouble,
    #[error("invalid escape in double quotes (use \\\\, \\\", \\', \\$, \\n, \\r or \\t)")]
    InvalidEscape,
    #[error("text after the closing quote (only a # comment may follow)")]
    TextAfterQuote,
    #[error(
        "unterminated \"${{\" (write ${{NAME}} or ${{NAME:-default}}, or \\$ in double quotes)"
    )]
    UnterminatedReference,
    #[error("invalid reference (only ${{NAME}} and ${{NAME:-default}} are expanded)")]
    InvalidReference,
    #[error("a default holds another \"${{\" (references inside a default are not expanded)")]
    NestedReference,
}
