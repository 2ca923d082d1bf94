//! Port layout, pure, and the check that every port is free before anything
//! starts — naming the process that holds a busy one, the commonest pain with every
//! Procfile runner (a leftover server from the last run).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::error::{Error, InputError};
use crate::sys;

/// `heroku local`'s default since it moved off 5000 (macOS AirPlay took it).
pub const DEFAULT_PORT: u16 = 5006;

/// Ports between one type's block and the next (foreman's layout).
const BLOCK: u32 = 100;

/// `PORT` of instance 1 of type `name`, at `type_index`: with the router, blocks start
/// one above the public port (`P + 1 + 100*i`); without it, at the public port
/// (`P + 100*i`).
pub fn first_port(
    public: u16,
    router: bool,
    (name, type_index): (&str, usize),
    count: usize,
) -> Result<u16, Error> {
    let base = u32::from(public) + u32::from(router);
    let index = u32::try_from(type_index).unwrap_or(u32::MAX);
    let first = index.saturating_mul(BLOCK).saturating_add(base);
    let last = first.saturating_add(u32::try_from(count.max(1) - 1).unwrap_or(u32::MAX));
    let no_room = || InputError::NoRoomForFormation {
        public,
        type_name: name.to_string(),
        last,
    };
    if last > u32::from(u16::MAX) {
        return Err(no_room().into());
    }
    // `first` is at most `last`, so this holds; the error is for the compiler's sake.
    Ok(u16::try_from(first).map_err(|_| no_room())?)
}

/// Service discovery for every process: `HLOCAL_<TYPE>_PORT` (the first instance's port
/// of each type; the name upper-cased, anything but letters and digits as `_`) and
/// `HLOCAL_URL` (`url`: the router's, or `web.1`'s without one), so neither a `.env` nor a
/// Procfile line hard-codes the port layout.
pub fn discovery_env<'a>(
    types: impl IntoIterator<Item = (&'a str, u16)>,
    url: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = types
        .into_iter()
        .map(|(name, first)| (format!("HLOCAL_{}_PORT", env_word(name)), first.to_string()))
        .collect();
    if let Some(url) = url {
        env.push(("HLOCAL_URL".to_string(), url.to_string()));
    }
    env
}

/// A warning for each `HLOCAL_<TYPE>_PORT` that two or more of the `types` (in Procfile
/// order) would share (`web-x` and `web_x`, `Web` and `web`): the last one's port is what
/// every process sees.
pub fn shared_discovery_names<'a>(types: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    // By variable, in order of first use: linear in the number of types (a Procfile may
    // have a hundred thousand).
    let mut order = Vec::new();
    let mut sharing: HashMap<String, Vec<&str>> = HashMap::new();
    for name in types {
        match sharing.entry(format!("HLOCAL_{}_PORT", env_word(name))) {
            Entry::Occupied(mut names) => names.get_mut().push(name),
            Entry::Vacant(var) => {
                order.push(var.key().clone());
                var.insert(vec![name]);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|var| sharing.remove(&var).map(|names| (var, names)))
        .filter(|(_, names)| names.len() > 1)
        .map(|(var, names)| {
            let last = names.last().copied().unwrap_or_default();
            format!(
                "process types {} all set {var}; it holds {last}'s port (the last of them)",
                names.join(", ")
            )
        })
        .collect()
}

fn env_word(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `PORT` of instance `n` (1-based) of a type whose first instance has `first`.
pub fn instance_port(first: u16, n: usize) -> u16 {
    let offset = u16::try_from(n.saturating_sub(1)).unwrap_or(u16::MAX);
    first.saturating_add(offset)
}

/// Nothing listens on `port`, on IPv4 or IPv6.
pub fn is_free(port: u16) -> bool {
    !sys::listening_ports().contains(&port)
}

/// A port the OS considers free right now (for preboot's second run).
pub fn free_port() -> Option<u16> {
    let probe = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
    let port = probe.local_addr().ok()?.port();
    drop(probe);
    is_free(port).then_some(port)
}

/// Every `(what, port)` must be free: `port 5007 (web.2) is already in use by pid 4242
/// (python3 -m http.server 5007)`.
pub fn check_free<S: AsRef<str>>(wanted: impl IntoIterator<Item = (S, u16)>) -> Result<(), Error> {
    // One read of the socket tables for every port.
    let listening = sys::listening_ports();
    for (what, port) in wanted {
        if listening.contains(&port) {
            return Err(InputError::PortInUse {
                port,
                what: what.as_ref().to_string(),
                holder: holder(port),
            }
            .into());
        }
    }
    Ok(())
}

/// The holder to name: a visible one if any (a server may listen on IPv4 and IPv6).
fn holder(port: u16) -> String {
    match sys::port_owners(port).into_iter().flatten().next() {
        Some(pid) => match sys::process_command(pid) {
            Some(command) => format!(" by pid {pid} ({command})"),
            None => format!(" by pid {pid}"),
        },
        None => " by another user's process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_that_share_a_discovery_name_are_named() {
        assert_eq!(
            shared_discovery_names(["web-x", "worker", "web_x", "Web-X"]),
            [
                "process types web-x, web_x, Web-X all set HLOCAL_WEB_X_PORT; it holds Web-X's port (the last of them)"
            ]
        );
        assert!(shared_discovery_names(["web", "worker"]).is_empty());
    }

    #[test]
    fn discovery_names_every_type_and_the_url() {
        let env = discovery_env(
            [("web", 5007), ("celery-beat", 5107)],
            Some("http://localhost:5006"),
        );
        let want = [
            ("HLOCAL_WEB_PORT", "5007"),
            ("HLOCAL_CELERY_BEAT_PORT", "5107"),
            ("HLOCAL_URL", "http://localhost:5006"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, want);
        assert_eq!(discovery_env([("worker", 5100)], None).len(), 1);
    }

    #[test]
    fn router_layout_starts_one_above_the_public_port() {
        assert_eq!(first_port(5006, true, ("t", 0), 2).ok(), Some(5007));
        assert_eq!(first_port(5006, true, ("t", 1), 1).ok(), Some(5107));
    }

    #[test]
    fn foreman_layout_without_router() {
        assert_eq!(first_port(5006, false, ("t", 0), 2).ok(), Some(5006));
        assert_eq!(instance_port(5006, 2), 5007);
        assert_eq!(first_port(5006, false, ("t", 1), 1).ok(), Some(5106));
    }

    #[test]
    fn layout_beyond_65535_is_an_error() {
        let error = first_port(65500, true, ("worker", 1), 1).map_err(|e| e.to_string());
        assert_eq!(
            error,
            Err(
                "port 65500 leaves no room for the formation: worker would need port 65601 \
                 (the highest is 65535); choose a lower port with -p"
                    .to_string()
            )
        );
        assert!(first_port(65535, false, ("t", 0), 2).is_err());
        assert_eq!(first_port(65535, false, ("t", 0), 1).ok(), Some(65535));
    }

    #[test]
    fn busy_port_names_its_holder() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let err = check_free([("web.1", port)]).expect_err("busy");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "port {port} (web.1) is already in use by pid {}",
                std::process::id()
            )),
            "{text}"
        );
        drop(listener);
        assert!(check_free([("web.1", port)]).is_ok());
    }
}
