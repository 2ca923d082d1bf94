//! The router's own threads: one single-threaded tokio runtime per core, each accepting on
//! a duplicate of the listening sockets and serving its connections start to finish,
//! nginx's worker model.
//!
//! Why not the supervisor's multi-thread runtime: a proxied request hops between the
//! client's connection task and the backend's, and on a work-stealing runtime those hops
//! can land on, and wake, the other worker thread (futex, context switch). On a runtime
//! of its own, each hop is a local queue push and a connection's tasks share one core's
//! caches. Measured on a shared 2-core machine the gain is within noise (one A/B run
//! favoured it by ~15% at 64 connections, a later full bench/router.sh run did not):
//! re-measure before relying on it. Each worker has its own backend connection pool.
//! What a worker does with a connection is `server`'s.

use std::io;
use std::num::NonZeroUsize;

use tokio::sync::watch;

use super::{Backends, RouterConfig, Shared, clients, serve_here};
use crate::output::{Level, LogSender, Record};
use crate::sys;

/// Starts the workers; they run until this future is dropped (its task aborted).
pub(crate) async fn run(
    sockets: Vec<std::net::TcpListener>,
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    log: LogSender,
) {
    let count = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    // Dropped with this future: every worker sees its receiver close and stops.
    let (_running, stopped) = watch::channel(());
    let open_files = sys::open_files_limit().and_then(|limit| usize::try_from(limit).ok());
    let shared = Shared::new(config.balance, clients::cap(open_files));
    for n in 1..=count {
        let worker = match duplicate(&sockets) {
            Ok(sockets) => Worker {
                sockets,
                config: config.clone(),
                backends: backends.clone(),
                shared: shared.clone(),
                log: log.clone(),
                stopped: stopped.clone(),
            },
            Err(e) => {
                let text = format!("router: cannot share the listening socket: {e}");
                log.message_at(Level::Error, None, text).await;
                break;
            }
        };
        let spawned = std::thread::Builder::new()
            .name(format!("hlocal-router-{n}"))
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            let text = format!("router: cannot start a worker thread: {e}");
            log.message_at(Level::Error, None, text).await;
            break;
        }
    }
    drop(sockets);
    std::future::pending::<()>().await;
}

fn duplicate(sockets: &[std::net::TcpListener]) -> io::Result<Vec<std::net::TcpListener>> {
    sockets
        .iter()
        .map(std::net::TcpListener::try_clone)
        .collect()
}

struct Worker {
    sockets: Vec<std::net::TcpListener>,
    config: RouterConfig,
    backends: watch::Receiver<Backends>,
    shared: Shared,
    log: LogSender,
    stopped: watch::Receiver<()>,
}

impl Worker {
    fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                self.log.send_blocking(Record::Message {
                    level: Level::Error,
                    about: None,
                    text: format!("router: cannot start a worker runtime: {e}"),
                });
                return;
            }
        };
        let Worker {
            sockets,
            config,
            backends,
            shared,
            log,
            mut stopped,
        } = self;
        runtime.block_on(async move {
            tokio::select! {
                () = serve_here(sockets, config, backends, shared, log) => {}
                _closed = stopped.changed() => {}
            }
        });
        // Dropping the runtime drops every connection this worker still had.
    }
}
