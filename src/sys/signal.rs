//! The portable `Signal` enum: names as users write them (`SIGINT`, `INT`, `int`),
//! mapped to the platform's numbers in `sys::process`. One list drives both.

use std::fmt;
use std::str::FromStr;

macro_rules! signals {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A signal hlocal can send or receive, independent of platform numbering.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Signal { $($variant),* }

        impl Signal {
            pub const ALL: &'static [Signal] = &[$(Signal::$variant),*];

            /// The conventional name, `SIGTERM`.
            pub fn name(self) -> &'static str {
                match self { $(Signal::$variant => $name),* }
            }
        }
    };
}

signals! {
    Hup => "SIGHUP",
    Int => "SIGINT",
    Quit => "SIGQUIT",
    Kill => "SIGKILL",
    Usr1 => "SIGUSR1",
    Usr2 => "SIGUSR2",
    Term => "SIGTERM",
    Winch => "SIGWINCH",
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signal {0:?} (expected one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1, SIGUSR2, SIGWINCH)"
)]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Accepts `SIGINT`, `INT` and `sigint`, as `kill -s` does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL
            .iter()
            .copied()
            .find(|sig| &sig.name()[3..] == bare)
            .ok_or_else(|| UnknownSignal(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_spellings() {
        assert_eq!("SIGINT".parse(), Ok(Signal::Int));
        assert_eq!("int".parse(), Ok(Signal::Int));
        assert_eq!(" TERM ".parse(), Ok(Signal::Term));
        assert!("SIGFOO".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
    }

    #[test]
    fn every_name_round_trips() {
        for sig in Signal::ALL {
            assert_eq!(sig.name().parse(), Ok(*sig));
        }
    }
}
