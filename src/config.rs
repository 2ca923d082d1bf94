//! Resolves the command line, hlocal.toml, env files and defaults into one validated
//! configuration. Every setting goes through one rule, [`layer`]: the flag, else the
//! file, else (for `PORT`) the env files and the shell, else the default. A boolean the
//! file can turn on has a flag and its negation ([`toggle`]), so a flag can always undo
//! what hlocal.toml says.
//! Everything here is synchronous: bad input is reported before anything starts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AppArgs, StartArgs};
use crate::error::{self, Error, InputError};
use crate::input::formation::{self, Formation};
use crate::input::procfile::{self, ProcessType};
use crate::input::settings::{
    self, EnvFile, Lined, ProcessSettings, ProcessWatch, Ready, Settings, WatchSetting,
};
use crate::input::{duration, env};
use crate::options::{Balance, ColorChoice, LogFormat, RestartPolicy};
use crate::output::OutputStyle;
use crate::ports;
use crate::router::RouterConfig;
use crate::supervisor::ready::Readiness;
use crate::supervisor::spec::{ReleaseSpec, StartConfig, TypeSpec, TypeWatch};
use crate::sys::Signal;
use crate::watch::{ProcessFilter, WatchConfig};

// ---------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------

/// What every command reads: where the app is, its Procfile, config vars and hlocal.toml.
#[derive(Debug)]
pub struct App {
    pub root: PathBuf,
    /// Procfile types in file order, `release` included.
    pub types: Vec<ProcessType>,
    pub env: Vec<(String, String)>,
    /// Where each of `env` was set (`.env:3`).
    pub env_places: Vec<error::Place>,
    /// `path:line: ${NAME} is not set…` for each unset reference in the env files.
    pub env_warnings: Vec<String>,
    pub settings: Option<Settings>,
}

/// Whether the command needs a Procfile: `hlocal run CMD` does not (as `foreman run`),
/// `start` and `check` do unless `--start-cmd` gives the web command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procfile {
    Required,
    Optional,
}

const PROCFILE: &str = "Procfile";
const DEFAULT_ENV_FILE: &str = ".env";

/// Loads the app as `-f`, `-d`, `-e` and `--start-cmd` describe it.
pub fn load_app(args: &AppArgs, need: Procfile) -> Result<App, Error> {
    let root = app_root(args);
    let settings = settings::load(&root)?;
    let procfile_path = procfile_path(args, &root, settings.as_ref());
    // hlocal.toml's empty `start_cmd` is refused at its line; the flag's here.
    if args.start_cmd.as_ref().is_some_and(|c| c.trim().is_empty()) {
        return Err(Error::named(
            "--start-cmd",
            "expected a command, found an empty string",
        ));
    }
    let start_cmd = args
        .start_cmd
        .clone()
        .or_else(|| settings.as_ref().and_then(|s| s.start_cmd.clone()));
    // A Procfile named with `-f` or in hlocal.toml must exist, even for `run`.
    let named = args.procfile.is_some() || settings.as_ref().is_some_and(|s| s.procfile.is_some());
    let need = if named { Procfile::Required } else { need };
    let types = load_types(&procfile_path, start_cmd, need)?;
    let env_paths = env_paths(args, &root, settings.as_ref())?;
    let env_refs: Vec<&Path> = env_paths.iter().map(PathBuf::as_path).collect();
    let env = env::load_files(&env_refs)?;
    if let Some(s) = &settings {
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        settings::validate(s, &root.join(settings::FILE_NAME), &names)?;
    }
    check_command_lengths(&types, &procfile_path)?;
    check_exec_size(&env.vars, &types)?;
    Ok(App {
        root,
        types,
        env: env.vars,
        env_places: env.places,
        env_warnings: env.warnings,
        settings,
    })
}

/// A warning for each `HLOCAL_<TYPE>_PORT` (set by `start` only) that two of `types`
/// would share.
pub fn discovery_warnings(types: &[ProcessType]) -> Vec<String> {
    let with_port = types.iter().filter(|t| t.name != procfile::RELEASE);
    ports::shared_discovery_names(with_port.map(|t| t.name.as_str()))
}

/// `-d`, else the Procfile's directory (foreman), else the current directory.
fn app_root(args: &AppArgs) -> PathBuf {
    root_from(args.root.as_deref(), args.procfile.as_deref())
}

/// The app root from `-d` and `-f`: `-d`, else the Procfile's directory (foreman's rule),
/// else `.`. The control commands find a running app's socket the same way.
pub fn root_from(root: Option<&Path>, procfile: Option<&Path>) -> PathBuf {
    if let Some(root) = root {
        return root.to_path_buf();
    }
    match procfile.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The process types of the app in `root`, found as `start` finds them (hlocal.toml's
/// `procfile` and `start_cmd` included); `None` when it has no Procfile.
pub fn types_in(root: &Path) -> Result<Option<Vec<ProcessType>>, Error> {
    let settings = settings::load(root)?;
    let args = AppArgs {
        root: Some(root.to_path_buf()),
        ..AppArgs::default()
    };
    let path = procfile_path(&args, root, settings.as_ref());
    let start_cmd = settings.and_then(|s| s.start_cmd);
    if !path.exists() && start_cmd.is_none() {
        return Ok(None);
    }
    load_types(&path, start_cmd, Procfile::Optional).map(Some)
}

fn procfile_path(args: &AppArgs, root: &Path, settings: Option<&Settings>) -> PathBuf {
    if let Some(path) = &args.procfile {
        return path.clone();
    }
    match settings.and_then(|s| s.procfile.as_ref()) {
        Some(path) => root.join(path),
        None => root.join(PROCFILE),
    }
}

/// The Procfile's types; without a Procfile, `--start-cmd` is the `web` type (as in
/// `heroku local`). With both, `--start-cmd` replaces (or adds) `web`.
fn load_types(
    path: &Path,
    start_cmd: Option<String>,
    need: Procfile,
) -> Result<Vec<ProcessType>, Error> {
    let mut types = match (path.exists(), &start_cmd, need) {
        (true, _, _) => procfile::load(path)?,
        (false, Some(_), _) | (false, None, Procfile::Optional) => Vec::new(),
        (false, None, Procfile::Required) => return Err(missing_procfile(path)),
    };
    // No NUL check here: a flag cannot carry one, and hlocal.toml's is checked at its line.
    if let Some(command) = start_cmd {
        let web = ProcessType {
            name: "web".to_string(),
            command,
            line: 0,
        };
        match types.iter_mut().find(|t| t.name == "web") {
            Some(existing) => *existing = web,
            None => types.insert(0, web),
        }
    }
    Ok(types)
}

/// `no Procfile in /the/app (…)`, naming the directory searched as an absolute path.
fn missing_procfile(path: &Path) -> Error {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let place = match absolute.file_name() {
        Some(name) if name == PROCFILE => {
            absolute.parent().map(|dir| format!("in {}", dir.display()))
        }
        _ => None,
    }
    .unwrap_or_else(|| format!("at {}", absolute.display()));
    InputError::NoProcfile { place }.into()
}

/// Room left in the exec size limit for what hlocal adds per instance (`PORT`, `DYNO`,
/// its session marker) and for `sh -c`.
const EXEC_MARGIN: usize = 8 * 1024;

/// Room in one argument for what wraps a command (`exec `, `hlocal run`'s ` "$@"`).
const COMMAND_MARGIN: usize = 64;

/// A command longer than the kernel takes in one argument (`sh -c CMD`) can never be
/// started: refuse it at its line.
fn check_command_lengths(types: &[ProcessType], procfile: &Path) -> Result<(), Error> {
    let Some(limit) = crate::sys::max_arg_bytes() else {
        return Ok(());
    };
    let Some(long) = types
        .iter()
        .find(|t| t.command.len() + COMMAND_MARGIN > limit)
    else {
        return Ok(());
    };
    let message = format!(
        "the command of {:?} is {} bytes; a process takes at most {} in one argument",
        long.name,
        long.command.len(),
        limit - COMMAND_MARGIN
    );
    Err(match long.line {
        0 => Error::named("--start-cmd", message),
        line => Error::located(procfile, line, message),
    })
}

/// A process whose environment and command line exceed the kernel's limit can never be
/// started (execve fails with E2BIG, every restart again): refuse it up front. Each
/// string counts with its NUL and its pointer, as the kernel counts them.
fn check_exec_size(env: &[(String, String)], types: &[ProcessType]) -> Result<(), Error> {
    let Some(limit) = crate::sys::arg_max() else {
        return Ok(());
    };
    let entry = |key: &str, value: &str| key.len() + value.len() + 2 + size_of::<usize>();
    let from_files: usize = env.iter().map(|(k, v)| entry(k, v)).sum();
    let file_keys: HashSet<&[u8]> = env.iter().map(|(k, _)| k.as_bytes()).collect();
    let inherited: usize = std::env::vars_os()
        .filter(|(k, _)| !file_keys.contains(k.as_encoded_bytes()))
        .map(|(k, v)| k.len() + v.len() + 2 + size_of::<usize>())
        .sum();
    let longest_command = types.iter().map(|t| t.command.len()).max().unwrap_or(0);
    let needed = from_files + inherited + longest_command + EXEC_MARGIN;
    if needed > limit {
        return Err(InputError::EnvironmentTooBig {
            needed_kib: needed / 1024,
            limit_kib: limit / 1024,
        }
        .into());
    }
    Ok(())
}

/// `-e` files (relative to the current directory) replace the default; hlocal.toml's
/// `env` (relative to the app root) comes next; else `.env` in the root if it exists.
fn env_paths(
    args: &AppArgs,
    root: &Path,
    settings: Option<&Settings>,
) -> Result<Vec<PathBuf>, Error> {
    if !args.env.is_empty() {
        if let Some(missing) = args.env.iter().find(|path| !path.exists()) {
            return Err(no_env_file(missing).into());
        }
        return Ok(args.env.clone());
    }
    if let Some(files) = settings.and_then(|s| s.env.as_ref()) {
        return settings_env_paths(files, root);
    }
    let default = root.join(DEFAULT_ENV_FILE);
    Ok(if default.exists() {
        vec![default]
    } else {
        Vec::new()
    })
}

/// hlocal.toml's `env`: a missing required file is an error at its line, a missing
/// optional one (`{ path = …, required = false }`) is skipped silently.
fn settings_env_paths(files: &[Lined<EnvFile>], root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::new();
    for file in files {
        let path = root.join(&file.value.path);
        if path.exists() {
            paths.push(path);
        } else if file.value.required {
            let settings_path = root.join(settings::FILE_NAME);
            return Err(Error::located(
                &settings_path,
                file.line,
                no_env_file(&path),
            ));
        }
    }
    Ok(paths)
}

fn no_env_file(path: &Path) -> InputError {
    InputError::NoEnvFile(error::display_path(path))
}

/// `-p`, else hlocal.toml's `port`, else `PORT` from the env files, else from
/// the shell, else 5006.
pub fn public_port(
    flag: Option<u16>,
    settings: Option<&Settings>,
    app: &App,
) -> Result<u16, Error> {
    let shell = std::env::var("PORT").ok();
    public_port_or(flag, settings, app, shell.as_deref())
}

/// [`public_port`] with `shell` as the shell's `PORT`: `export` passes none, so what it
/// writes does not depend on the machine it runs on.
pub fn public_port_or(
    flag: Option<u16>,
    settings: Option<&Settings>,
    app: &App,
    shell: Option<&str>,
) -> Result<u16, Error> {
    if let Some(port) = flag {
        return nonzero_port(port);
    }
    // hlocal.toml's `port = 0` is refused at its line.
    if let Some(port) = settings.and_then(|s| s.port) {
        return Ok(port);
    }
    let port_number = |value: &str| value.trim().parse::<u16>().ok().filter(|&p| p > 0);
    if let Some(at) = app.env.iter().position(|(k, _)| k == "PORT") {
        let value = &app.env[at].1;
        return port_number(value).ok_or_else(|| {
            let message = format!("PORT is not a port number: {value:?}");
            match app.env_places.get(at) {
                Some(place) => Error::Located(error::Located {
                    at: place.clone(),
                    message,
                }),
                None => Error::named("the env files", message),
            }
        });
    }
    // The shell's PORT is often another tool's leftover: only a port number counts there.
    Ok(shell.and_then(port_number).unwrap_or(ports::DEFAULT_PORT))
}

/// Port 0 would have the OS pick a port nobody is told about (and web.1 get port 1).
fn nonzero_port(port: u16) -> Result<u16, Error> {
    if port == 0 {
        return Err(Error::named(
            "-p",
            "port 0 is not allowed (use a port from 1 to 65535)",
        ));
    }
    Ok(port)
}

/// Resolves `hlocal start`'s flags over hlocal.toml over defaults.
pub fn resolve_start(args: &StartArgs) -> Result<StartConfig, Error> {
    resolve_loaded(args, load_app(&args.app, Procfile::Required)?)
}

/// One setting's value: the flag if given, else hlocal.toml's, else the default. Every
/// setting of `start` is resolved through this (`PORT` adds the env layers in
/// [`public_port`]), so the precedence is the same for all of them.
fn layer<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

/// A boolean setting, off by default, with a flag and its negation (clap keeps only the
/// last of the two given): `--preboot` turns on what the file left off, `--no-preboot`
/// turns off what the file turned on.
pub(crate) fn toggle(on: bool, off: bool, file: Option<bool>) -> bool {
    let flag = match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    layer(flag, file, false)
}

/// As [`resolve_start`], for an app already loaded (`check` lists its types too).
pub fn resolve_loaded(args: &StartArgs, app: App) -> Result<StartConfig, Error> {
    let file = app.settings.clone().unwrap_or_default();
    let port = public_port(args.port, Some(&file), &app)?;
    let durations = Durations::resolve(args, &file)?;
    check_ignore_globs("--watch-ignore", &args.watch_ignore)?;
    if let Some(globs) = &file.watch_ignore {
        check_ignore_globs("hlocal.toml: watch_ignore", globs)?;
    }
    let timeout = durations.timeout;
    let no_release = toggle(args.no_release, args.release, file.no_release);
    let no_router = toggle(args.no_router, args.router, file.no_router);
    let restart = layer(args.restart, file.restart, RestartPolicy::default());
    let balance = layer(args.balance, file.balance, Balance::default());
    let exit_on_exit = toggle(args.exit_on_exit, args.no_exit_on_exit, file.exit_on_exit);
    let dyno = toggle(args.dyno, args.no_dyno, file.dyno);
    let preboot = toggle(args.preboot, args.no_preboot, file.preboot);
    let top_watch = layer(
        flag_watch(args),
        file_watch(&file, &app.root),
        WatchSetting::Off,
    );
    let (release, formation_types) = split_release(&app.types, no_release, &file, timeout);
    let counts = resolve_formation(args, &file, &formation_types)?;
    let has_web = formation_types.iter().any(|t| t.name == "web");
    let router_on = has_web && !no_router;
    check_tty_flags(&args.tty, &formation_types)?;
    let style = output_style(args, &file)?;
    let types = type_specs(
        &formation_types,
        &counts,
        &TypeDefaults {
            port,
            router: router_on,
            restart,
            timeout,
            settings: &file,
            tty_flags: &args.tty,
            color: style.color,
        },
    )?;
    let watch_all = top_watch != WatchSetting::Off;
    // `--no-watch` turns off the per-process `watch` keys too: nothing is watched.
    let type_watches = !args.no_watch
        && types
            .iter()
            .any(|t| matches!(t.watch, TypeWatch::Any | TypeWatch::Only(_)));
    let watch = watch_config(
        &top_watch,
        args,
        &file,
        &app.root,
        watch_all || type_watches,
        &formation_types,
        durations.watch_debounce,
    )?;
    let mut env_warnings = app.env_warnings;
    env_warnings.extend(discovery_warnings(&app.types));
    Ok(StartConfig {
        env: Arc::new(app.env),
        env_warnings,
        release,
        router: router_on.then_some(RouterConfig {
            port,
            request_timeout: durations.request_timeout,
            header_timeout: durations.header_timeout,
            balance,
        }),
        force_color: style.color && file.child_color != Some(false),
        style,
        boot_timeout: durations.boot_timeout,
        timeout,
        exit_on_exit,
        dyno,
        preboot,
        watch_all,
        watch,
        types,
        root: app.root,
        socket: args.socket.clone(),
    })
}

/// hlocal.toml's `watch`, its paths joined to the app root.
fn file_watch(file: &Settings, root: &Path) -> Option<WatchSetting> {
    match file.watch.clone()? {
        WatchSetting::Paths(paths) => Some(WatchSetting::Paths(
            paths.iter().map(|p| root.join(p)).collect(),
        )),
        other => Some(other),
    }
}

/// `-w` as the file's `watch` would say it: no path is the app root; `--no-watch` is off.
/// Flag paths stay relative to the current directory (the file's are to the app root).
fn flag_watch(args: &StartArgs) -> Option<WatchSetting> {
    if args.no_watch {
        return Some(WatchSetting::Off);
    }
    let paths: Vec<PathBuf> = args
        .watch
        .as_ref()?
        .iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    Some(if paths.is_empty() {
        WatchSetting::Root
    } else {
        WatchSetting::Paths(paths)
    })
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Heroku closes idle client connections after 55 s; a request head takes a fraction of
/// a second, so 30 s (hyper's own default) cuts off slowloris clients well before that.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

/// Every duration setting, each checked whether or not what uses it is on: a typo in
/// `--watch-debounce` is refused without `-w` too, as the same value in hlocal.toml is.
struct Durations {
    timeout: Duration,
    boot_timeout: Duration,
    request_timeout: Duration,
    header_timeout: Duration,
    watch_debounce: Duration,
}

impl Durations {
    /// A grace period (`-t`) or debounce of 0 means "none"; a boot, request or header
    /// timeout of 0 would expire at once, so it is refused.
    fn resolve(args: &StartArgs, file: &Settings) -> Result<Durations, Error> {
        let flag = |name: &str, value: &Option<String>, parse: DurationParser| {
            value
                .as_deref()
                .map(|text| parse(text).map_err(|e| Error::named(name, e)))
                .transpose()
        };
        use duration::{parse, parse_positive as positive};
        let timeout = flag("--timeout", &args.timeout, parse)?;
        let boot_timeout = flag("--boot-timeout", &args.boot_timeout, positive)?;
        let request_timeout = flag("--request-timeout", &args.request_timeout, positive)?;
        let header_timeout = flag("--header-timeout", &args.header_timeout, positive)?;
        let watch_debounce = flag("--watch-debounce", &args.watch_debounce, parse)?;
        Ok(Durations {
            timeout: layer(timeout, file.timeout, DEFAULT_TIMEOUT),
            boot_timeout: layer(boot_timeout, file.boot_timeout, DEFAULT_BOOT_TIMEOUT),
            request_timeout: layer(
                request_timeout,
                file.request_timeout,
                DEFAULT_REQUEST_TIMEOUT,
            ),
            header_timeout: layer(header_timeout, file.header_timeout, DEFAULT_HEADER_TIMEOUT),
            watch_debounce: layer(watch_debounce, file.watch_debounce, DEFAULT_DEBOUNCE),
        })
    }
}

type DurationParser = fn(&str) -> Result<Duration, duration::DurationError>;

/// Watch-ignore globs must compile even when nothing is watched (the watcher compiles
/// them again, with its defaults, when it starts).
fn check_ignore_globs(origin: &str, globs: &[String]) -> Result<(), Error> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new("");
    for glob in globs {
        builder
            .add_line(None, glob)
            .map_err(|e| Error::named(origin, format!("invalid glob {glob:?}: {e}")))?;
    }
    builder
        .build()
        .map(drop)
        .map_err(|e| Error::named(origin, format!("invalid glob: {e}")))
}

/// `release` leaves the formation; it runs first unless `--no-release`.
fn split_release(
    types: &[ProcessType],
    skip: bool,
    file: &Settings,
    timeout: Duration,
) -> (Option<ReleaseSpec>, Vec<ProcessType>) {
    let own = file.processes.iter().find(|p| p.name == procfile::RELEASE);
    let release = types.iter().position(|t| t.name == procfile::RELEASE);
    let formation: Vec<ProcessType> = types
        .iter()
        .filter(|t| t.name != procfile::RELEASE)
        .cloned()
        .collect();
    let spec = release.filter(|_| !skip).map(|_| ReleaseSpec {
        command: types
            .iter()
            .find(|t| t.name == procfile::RELEASE)
            .map(|t| t.command.clone())
            .unwrap_or_default(),
        index: formation.len(),
        stop_signal: own.and_then(|p| p.stop_signal).unwrap_or(Signal::Term),
        stop_timeout: own.and_then(|p| p.stop_timeout).unwrap_or(timeout),
    });
    (spec, formation)
}

/// Positional types or `-m` (not both), else hlocal.toml's `formation`, else one of each.
fn resolve_formation(
    args: &StartArgs,
    file: &Settings,
    types: &[ProcessType],
) -> Result<Vec<usize>, Error> {
    let formation = match (&args.formation, args.types.is_empty()) {
        (Some(_), false) => {
            return Err(InputError::FormationTwice.into());
        }
        (Some(spec), true) => formation::parse(spec)?,
        (None, false) => formation::from_positional(&args.types)?,
        (None, true) => match &file.formation {
            Some(lined) => lined.value.clone(),
            None => Formation::default(),
        },
    };
    Ok(formation::resolve(&formation, types)?)
}

struct TypeDefaults<'a> {
    port: u16,
    router: bool,
    restart: RestartPolicy,
    timeout: Duration,
    settings: &'a Settings,
    /// `--tty TYPE`, repeated.
    tty_flags: &'a [String],
    /// Whether hlocal prints in color (children are then told to, see `child_color`).
    color: bool,
}

/// Maps from a type's name, so that building every spec stays linear in the number of
/// types and `[process.*]` tables.
struct Lookup<'a> {
    index_of: HashMap<&'a str, usize>,
    settings_of: HashMap<&'a str, &'a ProcessSettings>,
}

fn type_specs(
    types: &[ProcessType],
    counts: &[usize],
    defaults: &TypeDefaults<'_>,
) -> Result<Vec<TypeSpec>, Error> {
    let lookup = Lookup {
        index_of: types
            .iter()
            .enumerate()
            .map(|(index, t)| (t.name.as_str(), index))
            .collect(),
        settings_of: defaults
            .settings
            .processes
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect(),
    };
    types
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(index, (t, &count))| type_spec(&lookup, index, t, count, defaults))
        .collect()
}

fn type_spec(
    lookup: &Lookup<'_>,
    index: usize,
    t: &ProcessType,
    count: usize,
    d: &TypeDefaults<'_>,
) -> Result<TypeSpec, Error> {
    let own = lookup.settings_of.get(t.name.as_str()).copied();
    let depends_on = own
        .map(|p| {
            p.depends_on
                .iter()
                .filter_map(|dep| lookup.index_of.get(dep.value.as_str()).copied())
                .collect()
        })
        .unwrap_or_default();
    Ok(TypeSpec {
        name: t.name.clone(),
        command: t.command.clone(),
        index,
        count,
        first_port: ports::first_port(d.port, d.router, (&t.name, index), count)?,
        restart: own.and_then(|p| p.restart).unwrap_or(d.restart),
        stop_signal: own.and_then(|p| p.stop_signal).unwrap_or(Signal::Term),
        stop_timeout: own.and_then(|p| p.stop_timeout).unwrap_or(d.timeout),
        ready: readiness(&t.name, own.and_then(|p| p.ready.clone())),
        watch: type_watch(own.and_then(|p| p.watch.clone()))?,
        depends_on,
        tty: d.tty_flags.contains(&t.name) || own.and_then(|p| p.tty).unwrap_or(false),
        force_color: d.color
            && own
                .and_then(|p| p.child_color)
                .or(d.settings.child_color)
                .unwrap_or(true),
    })
}

/// Every `--tty TYPE` names a process type of the formation.
fn check_tty_flags(flags: &[String], types: &[ProcessType]) -> Result<(), Error> {
    let Some(unknown) = flags.iter().find(|f| !types.iter().any(|t| &t.name == *f)) else {
        return Ok(());
    };
    let known: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    let message = format!(
        "unknown process type \"{unknown}\" (the Procfile has: {})",
        known.join(", ")
    );
    Err(Error::named("--tty", message))
}

/// Web's default is the port check, everything else is up once spawned.
fn readiness(name: &str, configured: Option<Ready>) -> Readiness {
    match configured {
        Some(Ready::Port) => Readiness::Port,
        Some(Ready::Log(regex)) => Readiness::Log(regex),
        Some(Ready::Http(path)) => Readiness::Http(path),
        None if name == "web" => Readiness::Port,
        None => Readiness::Spawned,
    }
}

fn type_watch(setting: Option<ProcessWatch>) -> Result<TypeWatch, Error> {
    Ok(match setting {
        None => TypeWatch::Inherit,
        Some(ProcessWatch::Exempt) => TypeWatch::Off,
        Some(ProcessWatch::Any) => TypeWatch::Any,
        Some(ProcessWatch::Globs(globs)) => TypeWatch::Only(
            ProcessFilter::new(&globs)
                .map_err(|e| Error::named(format!("{}: watch", settings::FILE_NAME), e))?,
        ),
    })
}

/// The watcher's setup when anything is watched: the top-level paths (the app root when
/// only per-process `watch` keys ask for watching).
fn watch_config(
    top: &WatchSetting,
    args: &StartArgs,
    file: &Settings,
    root: &Path,
    needed: bool,
    types: &[ProcessType],
    debounce: Duration,
) -> Result<Option<WatchConfig>, Error> {
    if !needed {
        return Ok(None);
    }
    let paths = match top {
        WatchSetting::Paths(paths) => paths.clone(),
        WatchSetting::Root | WatchSetting::Off => vec![root.to_path_buf()],
    };
    for path in &paths {
        check_watch_path(path, types)?;
    }
    let paths = paths
        .iter()
        .map(|p| std::path::absolute(p).map_err(|e| Error::io("resolving watch path", p, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ignore = file.watch_ignore.clone().unwrap_or_default();
    ignore.extend(args.watch_ignore.iter().cloned());
    Ok(Some(WatchConfig {
        root: std::path::absolute(root).map_err(|e| Error::io("resolving app root", root, e))?,
        paths,
        debounce,
        ignore,
    }))
}

/// A watch path must exist. `hlocal start -w web` takes `web` as the path: when it is
/// a process type, say how to write what was meant.
fn check_watch_path(path: &Path, types: &[ProcessType]) -> Result<(), Error> {
    if path.exists() {
        return Ok(());
    }
    let shown = error::display_path(path);
    Err(if types.iter().any(|t| t.name == shown) {
        InputError::WatchPathIsAType(shown)
    } else {
        InputError::NoWatchPath(shown)
    }
    .into())
}

/// `--json` replaces the text formats, so asking for both (by flag or hlocal.toml) is
/// bad input rather than one silently winning.
fn output_style(args: &StartArgs, file: &Settings) -> Result<OutputStyle, Error> {
    let color = layer(args.style.color, file.color, ColorChoice::default());
    let no_timestamp = toggle(
        args.timestamps.no_timestamp,
        args.timestamp,
        file.no_timestamp,
    );
    let format = layer(args.style.log_format, file.log_format, LogFormat::default());
    let json = toggle(args.style.json, args.no_json, file.json);
    if json && format == LogFormat::Heroku {
        // Named as the user wrote each: by flag or in hlocal.toml.
        let json_place = if args.style.json {
            "--json"
        } else {
            "hlocal.toml: json"
        };
        let heroku = if args.style.log_format.is_some() {
            "--log-format heroku"
        } else {
            "log_format = \"heroku\" in hlocal.toml"
        };
        return Err(Error::named(
            json_place,
            format!("cannot be combined with {heroku} (JSON replaces the text formats)"),
        ));
    }
    Ok(OutputStyle {
        format,
        json,
        color: color.for_this_stdout(),
        timestamps: !no_timestamp,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    const PROCFILE_TEXT: &str = "release: true\nweb: serve\nworker: work\n";
    /// `PORT` from the env files: the layer between hlocal.toml and the default.
    const ENV_PORT: u16 = 5400;

    fn resolve(flags: &[&str], file: &str) -> StartConfig {
        let argv = ["hlocal", "start"].iter().chain(flags);
        let Command::Start(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not a start command");
        };
        let app = App {
            root: PathBuf::from("."),
            types: procfile::parse(PROCFILE_TEXT).unwrap(),
            env: vec![("PORT".into(), ENV_PORT.to_string())],
            env_places: Vec::new(),
            env_warnings: Vec::new(),
            settings: Some(settings::parse(file).unwrap()),
        };
        resolve_loaded(&args, app).unwrap()
    }

    type Read = fn(&StartConfig) -> String;

    /// One setting: what it reads with neither flag nor file, with the file only, with
    /// the flag only, and with both (`base` flags are given in every column).
    struct Row {
        base: &'static [&'static str],
        file: &'static str,
        flags: &'static [&'static str],
        read: Read,
        expected: [&'static str; 4],
    }

    fn row(
        file: &'static str,
        flags: &'static [&'static str],
        read: Read,
        expected: [&'static str; 4],
    ) -> Row {
        Row {
            base: &[],
            file,
            flags,
            read,
            expected,
        }
    }

    /// What each row reads from the resolved configuration.
    #[rustfmt::skip]
    mod read {
        use crate::supervisor::spec::StartConfig;

        pub fn router_port(c: &StartConfig) -> String { format!("{:?}", c.router.as_ref().map(|r| r.port)) }
        pub fn timeout(c: &StartConfig) -> String { format!("{:?}", c.timeout) }
        pub fn boot_timeout(c: &StartConfig) -> String { format!("{:?}", c.boot_timeout) }
        pub fn request_timeout(c: &StartConfig) -> String { format!("{:?}", c.router.as_ref().map(|r| r.request_timeout)) }
        pub fn header_timeout(c: &StartConfig) -> String { format!("{:?}", c.router.as_ref().map(|r| r.header_timeout)) }
        pub fn debounce(c: &StartConfig) -> String { format!("{:?}", c.watch.as_ref().map(|w| w.debounce)) }
        pub fn restart(c: &StartConfig) -> String { format!("{:?}", c.types[0].restart) }
        pub fn balance(c: &StartConfig) -> String { format!("{:?}", c.router.as_ref().map(|r| r.balance)) }
        pub fn log_format(c: &StartConfig) -> String { format!("{:?}", c.style.format) }
        pub fn web_count(c: &StartConfig) -> String { c.types[0].count.to_string() }
        pub fn exit_on_exit(c: &StartConfig) -> String { c.exit_on_exit.to_string() }
        pub fn dyno(c: &StartConfig) -> String { c.dyno.to_string() }
        pub fn preboot(c: &StartConfig) -> String { c.preboot.to_string() }
        pub fn json(c: &StartConfig) -> String { c.style.json.to_string() }
        pub fn release(c: &StartConfig) -> String { c.release.is_some().to_string() }
        pub fn router(c: &StartConfig) -> String { c.router.is_some().to_string() }
        pub fn timestamps(c: &StartConfig) -> String { c.style.timestamps.to_string() }
        pub fn watch_all(c: &StartConfig) -> String { c.watch_all.to_string() }
        pub fn watcher(c: &StartConfig) -> String { c.watch.is_some().to_string() }
        pub fn tty(c: &StartConfig) -> String { c.types[0].tty.to_string() }
    }

    #[rustfmt::skip]
    fn table() -> Vec<Row> {
        use read::*;
        vec![
            //  hlocal.toml                     flag                          read              default        file only      flag only      file + flag
            row("port = 5100",                  &["-p", "5200"],              router_port,      ["Some(5400)", "Some(5100)", "Some(5200)", "Some(5200)"]),
            row("timeout = 7",                  &["-t", "9"],                 timeout,          ["5s", "7s", "9s", "9s"]),
            row("boot_timeout = 70",            &["--boot-timeout", "80"],    boot_timeout,     ["60s", "70s", "80s", "80s"]),
            row("request_timeout = 7",          &["--request-timeout", "9"],  request_timeout,  ["Some(30s)", "Some(7s)", "Some(9s)", "Some(9s)"]),
            row("header_timeout = 7",           &["--header-timeout", "9"],   header_timeout,   ["Some(30s)", "Some(7s)", "Some(9s)", "Some(9s)"]),
            Row { base: &["-w"],
              ..row("watch_debounce = 0.5",     &["--watch-debounce", "1"],   debounce,         ["Some(200ms)", "Some(500ms)", "Some(1s)", "Some(1s)"]) },
            row("restart = \"always\"",         &["--restart", "never"],      restart,          ["OnFailure", "Always", "Never", "Never"]),
            row("balance = \"random\"",         &["--balance", "round-robin"], balance,         ["Some(RoundRobin)", "Some(Random)", "Some(RoundRobin)", "Some(RoundRobin)"]),
            row("log_format = \"heroku\"",      &["--log-format", "plain"],   log_format,       ["Plain", "Heroku", "Plain", "Plain"]),
            row("formation = \"web=2\"",        &["-m", "web=3"],             web_count,        ["1", "2", "3", "3"]),
            // Each boolean both ways: the flag turns on what the file left off, and its
            // negation turns off what the file turned on.
            row("exit_on_exit = false",         &["--exit-on-exit"],          exit_on_exit,     ["false", "false", "true", "true"]),
            row("exit_on_exit = true",          &["--no-exit-on-exit"],       exit_on_exit,     ["false", "true", "false", "false"]),
            row("dyno = false",                 &["--dyno"],                  dyno,             ["false", "false", "true", "true"]),
            row("dyno = true",                  &["--no-dyno"],               dyno,             ["false", "true", "false", "false"]),
            row("preboot = false",              &["--preboot"],               preboot,          ["false", "false", "true", "true"]),
            row("preboot = true",               &["--no-preboot"],            preboot,          ["false", "true", "false", "false"]),
            row("json = false",                 &["--json"],                  json,             ["false", "false", "true", "true"]),
            row("json = true",                  &["--no-json"],               json,             ["false", "true", "false", "false"]),
            row("no_release = false",           &["--no-release"],            release,          ["true", "true", "false", "false"]),
            row("no_release = true",            &["--release"],               release,          ["true", "false", "true", "true"]),
            row("no_router = false",            &["--no-router"],             router,           ["true", "true", "false", "false"]),
            row("no_router = true",             &["--router"],                router,           ["true", "false", "true", "true"]),
            row("no_timestamp = false",         &["--no-timestamp"],          timestamps,       ["true", "true", "false", "false"]),
            row("no_timestamp = true",          &["--timestamp"],             timestamps,       ["true", "false", "true", "true"]),
            row("watch = false",                &["-w"],                      watch_all,        ["false", "false", "true", "true"]),
            row("watch = true",                 &["--no-watch"],              watch_all,        ["false", "true", "false", "false"]),
            // `--no-watch` also silences the per-process keys: no watcher at all.
            row("[process.web]\nwatch = true",  &["--no-watch"],              watcher,          ["false", "true", "false", "false"]),
            // `--tty TYPE` adds to the file's types; nothing takes one off.
            row("[process.web]\ntty = true",    &["--tty", "web"],            tty,              ["false", "true", "true", "true"]),
        ]
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_default() {
        for row in table() {
            let with = |flags: &[&str], file: &str| {
                let argv: Vec<&str> = row.base.iter().chain(flags).copied().collect();
                (row.read)(&resolve(&argv, file))
            };
            let got = [
                with(&[], ""),
                with(&[], row.file),
                with(row.flags, ""),
                with(row.flags, row.file),
            ];
            assert_eq!(got, row.expected, "{:?} / {:?}", row.file, row.flags);
        }
    }

    #[test]
    fn children_are_told_to_color_when_hlocal_does_unless_child_color_is_false() {
        let web = |argv: &[&str], file: &str| resolve(argv, file).types[0].force_color;
        let always: &[&str] = &["--color", "always"];
        assert!(web(always, ""));
        assert!(!web(&["--color", "never"], ""));
        assert!(!web(always, "child_color = false"));
        assert!(!web(always, "[process.web]\nchild_color = false"));
        assert!(web(
            always,
            "child_color = false\n[process.web]\nchild_color = true"
        ));
        assert!(!resolve(always, "child_color = false").force_color);
    }

    #[test]
    fn the_last_of_a_flag_and_its_negation_wins() {
        assert!(resolve(&["--preboot", "--no-preboot", "--preboot"], "").preboot);
        assert!(resolve(&["--router", "--no-router"], "").router.is_none());
        assert!(!resolve(&["-w", "src", "--no-watch"], "").watch_all);
        assert!(resolve(&["--no-watch", "-w"], "watch = false").watch_all);
    }
}
