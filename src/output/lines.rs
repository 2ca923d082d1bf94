//! Line framing of a pipe.
