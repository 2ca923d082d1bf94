//! JSON env files, as `heroku local` (node-foreman) reads them.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::vars::{EnvError, Vars};
use crate::input::textfile::excerpt;

/// A JSON env file as `heroku local` (node-foreman) reads it: nested keys joined with `_`
/// and upper-cased, array items keyed by index (`{"a":["x"]}` → `A_0=x`), numbers and
/// booleans as their JSON text, `null` sets nothing.
pub(super) fn parse(text: &str) -> Result<Vars, (usize, EnvError)> {
    let mut sink = Sink::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let flatten = Flatten {
        path: None,
        sink: &mut sink,
    };
    let result = flatten
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    match result {
        Ok(()) => Ok(sink.vars),
        Err(e) => {
            let error = sink.error.take().unwrap_or_else(|| {
                let full = e.to_string();
                let position = format!(" at line {} column {}", e.line(), e.column());
                let message = full.strip_suffix(&position).unwrap_or(&full);
                EnvError::Json(format!("{message} (column {})", e.column()))
            });
            Err((e.line().max(1), error))
        }
    }
}

#[derive(Default)]
struct Sink {
    vars: Vars,
    /// Our own error, kept typed: serde only carries a message (and serde_json the line).
    error: Option<EnvError>,
}

struct Flatten<'a> {
    /// The key so far; `None` at the top-level object.
    path: Option<String>,
    sink: &'a mut Sink,
}

impl Flatten<'_> {
    fn child(&mut self, key: &str) -> Flatten<'_> {
        let path = match &self.path {
            None => key.to_string(),
            Some(path) => format!("{path}_{key}"),
        };
        Flatten {
            path: Some(path),
            sink: &mut *self.sink,
        }
    }

    fn leaf<E: de::Error>(self, value: String) -> Result<(), E> {
        let name = self.path.unwrap_or_default().to_uppercase();
        let error = if name.is_empty() || name.contains(['=', '\0']) {
            EnvError::InvalidName(excerpt(&name))
        } else if value.contains('\0') {
            EnvError::NulInValue(name)
        } else {
            self.sink.vars.push((name, value));
            return Ok(());
        };
        let message = error.to_string();
        self.sink.error = Some(error);
        Err(E::custom(message))
    }
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of config vars")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(self.child(&key))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(&index.to_string()))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}
