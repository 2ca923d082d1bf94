//! Formation parsing: `web=2,worker=1`, `all=N`, positional `web worker`.
//!
//! A [`Formation`] is what the user asked for, before the Procfile is consulted; [`resolve`]
//! checks it against the Procfile's types and turns it into one count per type. Port
//! layout, and what a count of 0 means at run time, belong to `ports` and the supervisor.
//!
//! Semantics, as foreman and `heroku local` have them: naming types runs only those
//! (`web=2` alone starts no worker); `all=N` gives every type not named its count, and a
//! named type beats `all` wherever it is written; no formation at all is
//! [`Formation::default`], one of each. `release` is never part of a formation.

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::input::procfile::{ProcessType, RELEASE};
use crate::input::textfile::excerpt;

/// Each type has 100 ports in the layout (`P + 100*i + (n-1)`): a larger count
/// would take the next type's ports.
pub const MAX_COUNT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    /// The count for every type not in `counts` (`all=N`); `None` means those do not run.
    pub all: Option<usize>,
    /// Counts of the types named, in the order written.
    pub counts: Vec<(String, usize)>,
}

impl Default for Formation {
    /// One of each type: what runs when no formation is given.
    fn default() -> Self {
        Formation {
            all: Some(1),
            counts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormationError {
    #[error("empty formation (use web=2,worker=1 or all=N)")]
    Empty,
    #[error("empty item in formation {formation:?}")]
    EmptyItem { formation: String },
    #[error("invalid count {count:?} for {name:?} in formation {formation:?}")]
    InvalidCount {
        name: String,
        count: String,
        formation: String,
    },
    #[error(
        "count {count} for {name:?} is more than {MAX_COUNT} (each type has {MAX_COUNT} ports)"
    )]
    TooMany { name: String, count: String },
    #[error("process type {name:?} appears twice in formation {formation:?}")]
    Duplicate { name: String, formation: String },
    #[error(
        "\"release\" runs once before the formation and cannot be scaled (--no-release skips it)"
    )]
    Release,
    #[error("unknown process type {name:?} in formation (the Procfile has: {known})")]
    UnknownType { name: String, known: String },
}

/// `-m web=2,worker=1` / `all=2` / hlocal.toml `formation = "…"`. An item may also be a
/// bare name, count 1, as on the `start` command line.
pub fn parse(spec: &str) -> Result<Formation, FormationError> {
    from_positional(&[spec.to_string()])
}

/// `hlocal start web=2,worker=1` or `hlocal start web worker`: one or more arguments,
/// each a comma-separated list of `name=count` or bare `name` (count 1). No argument at
/// all is [`FormationError::Empty`]; the caller uses [`Formation::default`] then.
pub fn from_positional(args: &[String]) -> Result<Formation, FormationError> {
    let mut formation = Formation {
        all: None,
        counts: Vec::new(),
    };
    let mut named = HashSet::new();
    for arg in args {
        if arg.trim().is_empty() {
            return Err(FormationError::Empty);
        }
        for item in arg.split(',') {
            add_item(&mut formation, &mut named, item, arg)?;
        }
    }
    if formation.all.is_none() && formation.counts.is_empty() {
        return Err(FormationError::Empty);
    }
    Ok(formation)
}

/// Adds one `name=count` or `name` item; `spec` is the text it came from, for messages.
/// `named` holds the names in `formation.counts`, for a duplicate check in constant time.
fn add_item<'a>(
    formation: &mut Formation,
    named: &mut HashSet<&'a str>,
    item: &'a str,
    spec: &str,
) -> Result<(), FormationError> {
    let (name, count) = match item.split_once('=') {
        Some((name, count)) => (name.trim(), Some(count.trim())),
        None => (item.trim(), None),
    };
    if name.is_empty() {
        return Err(FormationError::EmptyItem {
            formation: excerpt(spec),
        });
    }
    if name == RELEASE {
        return Err(FormationError::Release);
    }
    let count = match count {
        None => 1,
        Some(count) => parse_count(name, count, spec)?,
    };
    let duplicate = || FormationError::Duplicate {
        name: excerpt(name),
        formation: excerpt(spec),
    };
    if name == "all" {
        if formation.all.replace(count).is_some() {
            return Err(duplicate());
        }
    } else if !named.insert(name) {
        return Err(duplicate());
    } else {
        formation.counts.push((name.to_string(), count));
    }
    Ok(())
}

fn parse_count(name: &str, count: &str, spec: &str) -> Result<usize, FormationError> {
    let invalid = || FormationError::InvalidCount {
        name: excerpt(name),
        count: excerpt(count),
        formation: excerpt(spec),
    };
    // `usize::from_str` would also take `+2`.
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match count.parse::<usize>() {
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(FormationError::TooMany {
            name: excerpt(name),
            count: excerpt(count),
        }),
    }
}

/// Checks that every type the formation names is one of `type_names` (the Procfile's
/// types; `release`, if given, is left out of the message).
pub fn check(formation: &Formation, type_names: &[&str]) -> Result<(), FormationError> {
    let known: HashSet<&str> = type_names.iter().copied().collect();
    match formation
        .counts
        .iter()
        .find(|(name, _)| !known.contains(name.as_str()))
    {
        Some((name, _)) => Err(FormationError::UnknownType {
            name: excerpt(name),
            known: known_list(type_names),
        }),
        None => Ok(()),
    }
}

fn known_list(type_names: &[&str]) -> String {
    let known: Vec<&str> = type_names
        .iter()
        .copied()
        .filter(|name| *name != RELEASE)
        .collect();
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

/// Instance count per type, aligned with `types` (Procfile order, `release` excluded).
pub fn resolve(formation: &Formation, types: &[ProcessType]) -> Result<Vec<usize>, FormationError> {
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    check(formation, &names)?;
    let counts: HashMap<&str, usize> = formation
        .counts
        .iter()
        .map(|(name, count)| (name.as_str(), *count))
        .collect();
    let others = formation.all.unwrap_or(0);
    Ok(names
        .iter()
        .map(|name| counts.get(name).copied().unwrap_or(others))
        .collect())
}

impl From<FormationError> for Error {
    fn from(error: FormationError) -> Self {
        Error::named("formation", error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn procfile(names: &[&str]) -> Vec<ProcessType> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| ProcessType {
                name: name.to_string(),
                command: "true".into(),
                line: i + 1,
            })
            .collect()
    }

    fn counts(spec: &str, names: &[&str]) -> Vec<usize> {
        resolve(&parse(spec).unwrap(), &procfile(names)).unwrap()
    }

    fn positional(args: &[&str]) -> Result<Formation, FormationError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        from_positional(&args)
    }

    fn parse_error(spec: &str) -> String {
        parse(spec).unwrap_err().to_string()
    }

    const APP: &[&str] = &["web", "worker", "clock"];

    #[test]
    fn default_is_one_of_each() {
        assert_eq!(
            resolve(&Formation::default(), &procfile(APP)).unwrap(),
            [1, 1, 1]
        );
    }

    #[test]
    fn named_counts_run_only_the_named_types() {
        assert_eq!(counts("web=2,worker=1", APP), [2, 1, 0]);
        assert_eq!(counts("worker=3", APP), [0, 3, 0]);
    }

    #[test]
    fn all_sets_every_type() {
        assert_eq!(counts("all=2", APP), [2, 2, 2]);
    }

    #[test]
    fn specific_beats_all_in_any_order() {
        assert_eq!(counts("all=1,web=3", APP), [3, 1, 1]);
        assert_eq!(counts("web=3,all=1", APP), [3, 1, 1]);
        assert_eq!(counts("all=0,clock=1", APP), [0, 0, 1]);
    }

    #[test]
    fn zero_is_allowed() {
        assert_eq!(counts("web=0,worker=2", APP), [0, 2, 0]);
    }

    #[test]
    fn whitespace_around_items_is_tolerated() {
        assert_eq!(counts(" web = 2 ,\tworker=1 ", APP), [2, 1, 0]);
    }

    #[test]
    fn bare_names_count_one() {
        assert_eq!(counts("web,clock", APP), [1, 0, 1]);
    }

    #[test]
    fn resolve_follows_procfile_order_not_spec_order() {
        assert_eq!(counts("clock=1,web=2", APP), [2, 0, 1]);
    }

    #[test]
    fn positional_names_run_only_those_types() {
        let f = positional(&["web", "worker"]).unwrap();
        assert_eq!(resolve(&f, &procfile(APP)).unwrap(), [1, 1, 0]);
    }

    #[test]
    fn positional_counts_and_lists_combine() {
        let f = positional(&["web=2,worker=1", "clock"]).unwrap();
        assert_eq!(resolve(&f, &procfile(APP)).unwrap(), [2, 1, 1]);
        assert_eq!(
            f.counts,
            [("web".into(), 2), ("worker".into(), 1), ("clock".into(), 1)]
        );
    }

    #[test]
    fn positional_without_arguments_is_empty() {
        assert_eq!(positional(&[]), Err(FormationError::Empty));
    }

    #[test]
    fn positional_duplicate_across_arguments_is_an_error() {
        assert_eq!(
            positional(&["web", "web=2"]),
            Err(FormationError::Duplicate {
                name: "web".into(),
                formation: "web=2".into()
            })
        );
    }

    #[test]
    fn empty_spec_is_an_error() {
        assert_eq!(parse(""), Err(FormationError::Empty));
        assert_eq!(parse("  "), Err(FormationError::Empty));
        assert_eq!(
            parse_error(""),
            "empty formation (use web=2,worker=1 or all=N)"
        );
    }

    #[test]
    fn empty_items_are_errors() {
        for spec in ["web=1,", ",web=1", "web=1,,worker=1", "=2", ","] {
            assert_eq!(
                parse(spec),
                Err(FormationError::EmptyItem {
                    formation: spec.into()
                }),
                "{spec}"
            );
        }
        assert_eq!(parse_error("web=1,"), r#"empty item in formation "web=1,""#);
    }

    #[test]
    fn invalid_counts_are_errors() {
        for (spec, count) in [
            ("web=x", "x"),
            ("web=", ""),
            ("web=-1", "-1"),
            ("web=+1", "+1"),
            ("web=1.5", "1.5"),
            ("web==2", "=2"),
        ] {
            assert_eq!(
                parse(spec),
                Err(FormationError::InvalidCount {
                    name: "web".into(),
                    count: count.into(),
                    formation: spec.into()
                }),
                "{spec}"
            );
        }
        assert_eq!(
            parse_error("web=x"),
            r#"invalid count "x" for "web" in formation "web=x""#
        );
    }

    #[test]
    fn counts_above_the_port_block_are_errors() {
        assert_eq!(counts("web=100", APP), [100, 0, 0]);
        assert_eq!(
            parse("web=101"),
            Err(FormationError::TooMany {
                name: "web".into(),
                count: "101".into()
            })
        );
        assert_eq!(
            parse_error("all=99999999999999999999999"),
            r#"count 99999999999999999999999 for "all" is more than 100 (each type has 100 ports)"#
        );
    }

    #[test]
    fn duplicate_type_in_one_spec_is_an_error() {
        assert_eq!(
            parse_error("web=1,worker=2,web=3"),
            r#"process type "web" appears twice in formation "web=1,worker=2,web=3""#
        );
        assert!(matches!(
            parse("all=1,all=2"),
            Err(FormationError::Duplicate { name, .. }) if name == "all"
        ));
    }

    #[test]
    fn release_cannot_be_scaled() {
        assert_eq!(parse("release=1"), Err(FormationError::Release));
        assert_eq!(
            positional(&["web", "release"]),
            Err(FormationError::Release)
        );
        assert_eq!(
            parse_error("release=0"),
            r#""release" runs once before the formation and cannot be scaled (--no-release skips it)"#
        );
    }

    #[test]
    fn unknown_type_names_the_procfile_types() {
        let e = resolve(&parse("wrk=1").unwrap(), &procfile(&["web", "worker"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown process type "wrk" in formation (the Procfile has: web, worker)"#
        );
    }

    #[test]
    fn check_leaves_release_out_of_the_known_list() {
        let e = check(&parse("wrk").unwrap(), &["release", "web"]).unwrap_err();
        assert_eq!(
            e,
            FormationError::UnknownType {
                name: "wrk".into(),
                known: "web".into()
            }
        );
        assert!(check(&parse("web=2").unwrap(), &["release", "web"]).is_ok());
    }

    #[test]
    fn unknown_type_with_an_empty_procfile() {
        let e = resolve(&parse("web").unwrap(), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown process type "web" in formation (the Procfile has: none)"#
        );
    }

    #[test]
    fn long_input_is_shortened_in_messages() {
        let spec = format!("web=x,{}", "w".repeat(500));
        assert!(parse_error(&spec).len() < 150);
        let unknown = resolve(&parse(&"w".repeat(500)).unwrap(), &procfile(APP)).unwrap_err();
        assert!(unknown.to_string().len() < 150, "{unknown}");
    }

    #[test]
    fn all_does_not_need_any_type() {
        assert_eq!(
            resolve(&parse("all=3").unwrap(), &[]).unwrap(),
            Vec::<usize>::new()
        );
    }
}

/// Property tests (the repo's fuzzing): no spec panics the parser; a formation written out
/// as `name=count,…` parses back to the same counts.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_spec_is_a_formation_or_an_error(
            spec in "\\PC{0,100}|[a-z=,0-9 ]{0,40}",
            args in prop::collection::vec("[a-z=,0-9]{0,12}", 0..4),
        ) {
            let _ = parse(&spec);
            let _ = from_positional(&args);
        }

        #[test]
        fn written_counts_read_back(
            counts in prop::collection::btree_map("[a-z][a-z0-9_-]{0,10}", 0..=MAX_COUNT, 1..6),
            all in prop::option::of(0..=MAX_COUNT),
        ) {
            let counts: Vec<(String, usize)> =
                counts.into_iter().filter(|(name, _)| name != "all" && name != RELEASE).collect();
            let mut items: Vec<String> = counts.iter().map(|(n, c)| format!("{n}={c}")).collect();
            items.extend(all.map(|n| format!("all={n}")));
            prop_assume!(!items.is_empty());
            let formation = parse(&items.join(",")).expect("a valid formation");
            prop_assert_eq!(formation, Formation { all, counts });
        }
    }
}
