//! Not a test: the router alone, for `bench/router.sh` to measure until `hlocal start`
//! can run it (the supervisor lives on another branch). Run with
//! `HLOCAL_BENCH_PORT=P HLOCAL_BENCH_BACKENDS=127.0.0.1:A,127.0.0.1:B
//! cargo test --release --bin hlocal router::tests::bench::harness -- --ignored --exact`;
//! it serves until killed. Log records are dropped, as a printer writing to /dev/null
//! would (minus its formatting).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use crate::output::LogSender;
use crate::router::{Backend, Backends, Balance, RouterConfig, bind, serve};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[test]
#[ignore = "a benchmark harness that runs until killed"]
fn harness() {
    let port: u16 = env("HLOCAL_BENCH_PORT").parse().expect("UNWRAP: a port");
    let up = env("HLOCAL_BENCH_BACKENDS")
        .split(',')
        .enumerate()
        .map(|(i, addr)| Backend {
            name: format!("web.{}", i + 1).into(),
            addr: addr.parse::<SocketAddr>().expect("UNWRAP: ip:port"),
            generation: 1,
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("UNWRAP: a runtime");
    runtime.block_on(async move {
        let listeners = bind(port).expect("UNWRAP: the port is free");
        let (_tx, rx) = watch::channel(Backends {
            up,
            ..Backends::default()
        });
        let (log, mut records) = LogSender::channel();
        tokio::spawn(async move { while records.recv().await.is_some() {} });
        let config = RouterConfig {
            port,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            balance: Balance::RoundRobin,
        };
        serve(listeners, config, rx, log).await;
    });
}
