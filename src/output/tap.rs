//! What the control socket reads from the log: the last lines of every instance, and
//! live subscriptions (`hlocal logs -f`, an editor's `subscribe`).
//!
//! The printer hands every record it has written to the tap. An instance's output and
//! the lifecycle lines about it are kept in a ring per instance, as the records are
//! (output chunks are reference-counted, so keeping one copies nothing), bounded to its
//! last [`RING_LINES`] lines or [`RING_BYTES`] bytes, whichever is smaller. A subscriber
//! gets each matching record through a queue and formats it on its own task, in the style
//! it asked for: the printer only clones the record (output chunks are reference-counted)
//! and never waits. A subscriber more than [`SUBSCRIBER_BACKLOG_BYTES`] behind is cut
//! off, so no client can slow the printer or, through it, the apps, nor pile up memory.
//!
//! At hlocal's exit, [`Tap::finish`] ends every subscription once the printer has handed
//! over its last record (`exit`), and waits for the subscribers to write what they still
//! hold until the deadline the printer's own wait left (2 s after stdout last took
//! something): each subscription counts itself live until it is dropped, which its thread
//! does after its last write.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use super::Record;
use super::format::{Formatter, OutputStyle};

/// Lines kept per instance for `hlocal logs`.
pub const RING_LINES: usize = 1000;
/// Bytes kept per instance at most (a few long lines must not pin megabytes).
pub const RING_BYTES: usize = 1 << 20;
/// Bytes of output a subscriber may fall behind by before it is cut off.
pub const SUBSCRIBER_BACKLOG_BYTES: usize = 16 << 20;

/// Which records a subscription or a replay wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Instances (`web.1`) or types (`web`); empty: everything, hlocal's and the
    /// router's lines included. A subscription gets the `exit` record whatever its names.
    pub names: Vec<String>,
}

impl Filter {
    fn wants(&self, subject: Option<&str>) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let Some(subject) = subject else {
            return false;
        };
        self.names.iter().any(|name| {
            subject == name
                || subject
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// The printer's side and the control server's side share one tap. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tap {
    shared: Arc<Mutex<Shared>>,
    live: Arc<Live>,
    width: usize,
}

/// How many subscriptions exist, so the exit can wait for the last one to be dropped.
#[derive(Debug, Default)]
struct Live {
    count: Mutex<usize>,
    dropped: Condvar,
}

impl Live {
    fn count(&self) -> MutexGuard<'_, usize> {
        // The count is a single integer: a panic elsewhere cannot leave it half-changed.
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(self: &Arc<Live>) -> LiveGuard {
        *self.count() += 1;
        LiveGuard(Arc::clone(self))
    }

    /// Returns once no subscription is left, or at `deadline`.
    fn wait_none(&self, deadline: Instant) {
        let mut count = self.count();
        while *count > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            count = self
                .dropped
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A subscription's place in [`Live`]'s count, given back when it is dropped.
#[derive(Debug)]
struct LiveGuard(Arc<Live>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        *self.0.count() -= 1;
        self.0.dropped.notify_all();
    }
}

#[derive(Debug, Default)]
struct Shared {
    rings: HashMap<Arc<str>, Ring>,
    subscribers: Vec<Subscriber>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Kept>,
    lines: usize,
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    at: Timestamp,
    record: Record,
    lines: usize,
    bytes: usize,
}

/// The printer's end of a subscription.
#[derive(Debug)]
struct Subscriber {
    filter: Filter,
    tx: mpsc::UnboundedSender<Vec<(Timestamp, Record)>>,
    /// Bytes sent and not yet formatted by the subscriber.
    backlog: Arc<AtomicUsize>,
    /// What the printer's current batch holds for it: sent in one message, one wake-up.
    pending: Vec<(Timestamp, Record)>,
}

/// The subscriber's end: records as the printer wrote them, formatted on the caller's
/// task.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Vec<(Timestamp, Record)>>,
    backlog: Arc<AtomicUsize>,
    formatter: Formatter,
    _live: LiveGuard,
}

impl Subscription {
    /// Waits for what was printed since the last call and formats it into `out`;
    /// `false` once the subscription has ended (cut off, or hlocal is exiting).
    #[cfg(test)]
    pub async fn next(&mut self, out: &mut Vec<u8>) -> bool {
        let batch = self.rx.recv().await;
        self.format_batch(batch, out)
    }

    /// As `next`, on a thread of its own, outside the runtime.
    pub fn next_blocking(&mut self, out: &mut Vec<u8>) -> bool {
        let batch = self.rx.blocking_recv();
        self.format_batch(batch, out)
    }

    fn format_batch(&mut self, batch: Option<Vec<(Timestamp, Record)>>, out: &mut Vec<u8>) -> bool {
        let Some(batch) = batch else {
            return false;
        };
        for (at, record) in batch {
            self.backlog.fetch_sub(bytes_of(&record), Ordering::Relaxed);
            self.formatter.write(&record, at, out);
        }
        true
    }

    /// Formats records kept earlier (a replay) as this subscription would.
    pub fn format_kept(&mut self, kept: &[(Timestamp, Record)], out: &mut Vec<u8>) {
        for (at, record) in kept {
            self.formatter.write(record, *at, out);
        }
    }
}

impl Tap {
    /// `width` is the name column of the plain format, as the printer's.
    pub fn new(width: usize) -> Tap {
        Tap {
            shared: Arc::default(),
            live: Arc::default(),
            width,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves rings that are still consistent enough
        // to read: each mutation is a single push or pop.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the printer after each batch it wrote: subscribers get theirs.
    pub fn flush(&self) {
        self.lock().flush();
    }

    /// Called by the printer with each record it wrote, stamped as it was.
    pub fn observe(&self, record: Record, at: Timestamp) {
        let mut shared = self.lock();
        let subject = subject(&record).map(Arc::clone);
        shared.publish(&record, subject.as_deref(), at);
        if let Some(name) = subject {
            shared.rings.entry(name).or_default().keep(record, at);
        }
    }

    /// The last `lines` lines of each instance `filter` selects, oldest first, and a
    /// subscription to everything printed after them (dropped unless following).
    pub fn replay(
        &self,
        filter: &Filter,
        lines: usize,
        style: &OutputStyle,
        follow: bool,
    ) -> (Vec<(Timestamp, Record)>, Subscription) {
        let mut shared = self.lock();
        let mut picked: Vec<(Timestamp, Record)> = shared
            .rings
            .iter()
            .filter(|(name, _)| filter.wants(Some(name)))
            .flat_map(|(_, ring)| ring.last_lines(lines))
            .collect();
        picked.sort_by_key(|(at, _)| *at);
        let follower = shared.subscribe(filter.clone(), follow);
        (picked, self.subscription(follower, style))
    }

    /// Everything printed from now on that `filter` selects, formatted in `style`.
    pub fn subscribe(&self, filter: Filter, style: &OutputStyle) -> Subscription {
        let feed = self.lock().subscribe(filter, true);
        self.subscription(feed, style)
    }

    fn subscription(&self, feed: Feed, style: &OutputStyle) -> Subscription {
        Subscription {
            rx: feed.rx,
            backlog: feed.backlog,
            formatter: Formatter::new(style.clone(), self.width, TimeZone::system()),
            _live: self.live.enter(),
        }
    }

    /// At hlocal's exit, once the printer has handed over its last record: ends every
    /// subscription (each still gets what was published to it, then its end) and waits
    /// until `deadline` at most for every subscription to be dropped: one that does not
    /// read must not keep hlocal alive.
    pub fn finish(&self, deadline: Instant) {
        {
            let mut shared = self.lock();
            shared.flush();
            // Dropping the senders ends the subscriptions after what they were sent.
            shared.subscribers.clear();
        }
        self.live.wait_none(deadline)
    }
}

/// A subscription's channel end and its backlog count, before its formatter is added.
struct Feed {
    rx: mpsc::UnboundedReceiver<Vec<(Timestamp, Record)>>,
    backlog: Arc<AtomicUsize>,
}

impl Shared {
    /// A subscription's feed, fed from now on only if `follow` (a plain `hlocal logs`
    /// only formats the kept lines with its subscription, and gets nothing more).
    fn subscribe(&mut self, filter: Filter, follow: bool) -> Feed {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        if follow {
            self.subscribers.push(Subscriber {
                filter,
                tx,
                backlog: Arc::clone(&backlog),
                pending: Vec::new(),
            });
        }
        Feed { rx, backlog }
    }

    /// Hands `record` to every subscriber that wants it; drops those that are gone or
    /// too far behind (dropping the sender ends their subscription).
    fn publish(&mut self, record: &Record, subject: Option<&str>, at: Timestamp) {
        if self.subscribers.is_empty() {
            return;
        }
        let bytes = bytes_of(record);
        // `exit` is about no process, yet a follower of one process wants to know too that
        // the app ended, and how: it reaches every subscriber, last.
        let for_everyone = matches!(record, Record::Exit { .. });
        self.subscribers.retain_mut(|subscriber| {
            if !for_everyone && !subscriber.filter.wants(subject) {
                return !subscriber.tx.is_closed();
            }
            let behind = subscriber.backlog.fetch_add(bytes, Ordering::Relaxed) + bytes;
            subscriber.pending.push((at, record.clone()));
            behind <= SUBSCRIBER_BACKLOG_BYTES
        });
    }

    fn flush(&mut self) {
        self.subscribers.retain_mut(|subscriber| {
            subscriber.pending.is_empty()
                || subscriber
                    .tx
                    .send(std::mem::take(&mut subscriber.pending))
                    .is_ok()
        });
    }
}

impl Ring {
    fn keep(&mut self, record: Record, at: Timestamp) {
        let (lines, bytes) = (lines_of(&record), bytes_of(&record));
        self.entries.push_back(Kept {
            at,
            record,
            lines,
            bytes,
        });
        self.lines += lines;
        self.bytes += bytes;
        while let Some(oldest) = self.entries.front() {
            let enough_without = self.lines - oldest.lines >= RING_LINES;
            if self.entries.len() == 1 || !(enough_without || self.bytes > RING_BYTES) {
                break;
            }
            self.lines -= oldest.lines;
            self.bytes -= oldest.bytes;
            self.entries.pop_front();
        }
    }

    /// The records holding the last `wanted` lines, [`RING_LINES`] at most (records are
    /// kept whole, so a big chunk may hold more); the oldest one cut to fit.
    fn last_lines(&self, wanted: usize) -> Vec<(Timestamp, Record)> {
        let wanted = wanted.min(RING_LINES);
        let mut picked = Vec::new();
        let mut count = 0;
        for kept in self.entries.iter().rev() {
            if count >= wanted {
                break;
            }
            let take = kept.lines.min(wanted - count);
            count += take;
            picked.push((kept.at, last_lines_of(&kept.record, take)));
        }
        picked.reverse();
        picked
    }
}

/// The instance a record is about: output and lifecycle lines are kept for it.
fn subject(record: &Record) -> Option<&Arc<str>> {
    match record {
        Record::Output { source, .. } => Some(&source.name),
        Record::State(change) => Some(&change.name),
        Record::Message { about, .. } => about.as_ref(),
        Record::Router(_) | Record::Marker(_) | Record::Exit { .. } => None,
    }
}

/// Lines a kept record counts for: output chunks hold many.
fn lines_of(record: &Record) -> usize {
    match record {
        Record::Output { lines, .. } => memchr::memchr_iter(b'\n', lines).count(),
        Record::State(_) | Record::Message { .. } => 1,
        Record::Router(logs) => logs.len(),
        Record::Marker(_) | Record::Exit { .. } => 1,
    }
}

/// About what a record weighs in memory, for the bounds.
fn bytes_of(record: &Record) -> usize {
    /// A router line's fields, roughly.
    const ROUTER_LINE_BYTES: usize = 256;
    match record {
        Record::Output { lines, .. } => lines.len(),
        Record::State(change) => change.text.len(),
        Record::Message { text, .. } => text.len(),
        Record::Router(logs) => logs.len() * ROUTER_LINE_BYTES,
        Record::Marker(marker) => marker.text().len(),
        Record::Exit { .. } => 0,
    }
}

/// `record` with only its last `take` lines (output chunks hold many).
fn last_lines_of(record: &Record, take: usize) -> Record {
    let Record::Output {
        source,
        stream,
        lines,
    } = record
    else {
        return record.clone();
    };
    let body = lines.strip_suffix(b"\n").unwrap_or(lines);
    let start = memchr::memrchr_iter(b'\n', body)
        .nth(take.saturating_sub(1))
        .map_or(0, |newline| newline + 1);
    Record::Output {
        source: Arc::clone(source),
        stream: *stream,
        lines: lines.slice(start..),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::LogFormat;
    use crate::output::{Source, Stream};
    use bytes::Bytes;

    fn plain() -> OutputStyle {
        OutputStyle {
            format: LogFormat::Plain,
            json: false,
            color: false,
            timestamps: false,
        }
    }

    fn output(name: &str, text: &str) -> Record {
        Record::Output {
            source: Source::app(name, 0),
            stream: Stream::Stdout,
            lines: Bytes::from(text.to_string()),
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("valid")
    }

    fn replayed(tap: &Tap, names: &[&str], lines: usize) -> String {
        let filter = Filter {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let (kept, mut subscription) = tap.replay(&filter, lines, &plain(), false);
        let mut text = Vec::new();
        subscription.format_kept(&kept, &mut text);
        String::from_utf8(text).expect("utf-8")
    }

    #[test]
    fn replay_gives_the_last_lines_of_each_instance_in_time_order() {
        let tap = Tap::new(6);
        tap.observe(output("web.1", "a\nb\nc\n"), at(1));
        tap.observe(output("worker.1", "x\n"), at(2));
        tap.observe(output("web.1", "d\n"), at(3));
        let text = replayed(&tap, &[], 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("web.1 ") && lines[0].ends_with("| c"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("worker.1 ") && lines[1].ends_with("| x"),
            "{text}"
        );
        assert!(lines[2].ends_with("| d"), "{text}");
    }

    #[test]
    fn a_replay_without_follow_leaves_no_subscriber_behind() {
        let tap = Tap::new(6);
        tap.observe(output("web.1", "one\n"), at(1));
        assert!(replayed(&tap, &[], 10).contains("one"));
        assert!(tap.lock().subscribers.is_empty());
    }

    #[test]
    fn a_type_name_selects_its_instances() {
        let tap = Tap::new(6);
        tap.observe(output("web.1", "one\n"), at(1));
        tap.observe(output("web.2", "two\n"), at(2));
        tap.observe(output("webhook.1", "no\n"), at(3));
        let text = replayed(&tap, &["web"], 10);
        assert!(text.contains("one") && text.contains("two"), "{text}");
        assert!(!text.contains("no"), "{text}");
    }

    #[test]
    fn the_ring_keeps_a_bounded_tail() {
        let tap = Tap::new(6);
        for n in 0..5000 {
            tap.observe(output("web.1", &format!("{n}\n")), at(n));
        }
        let text = replayed(&tap, &["web.1"], usize::MAX);
        assert_eq!(text.lines().count(), RING_LINES);
        assert!(text.ends_with("| 4999\n"), "{}", &text[text.len() - 20..]);
        let shared = tap.lock();
        assert!(shared.rings["web.1"].entries.len() <= RING_LINES);
    }

    #[test]
    fn a_chunk_of_many_lines_replays_no_more_than_the_ring_holds() {
        let tap = Tap::new(6);
        let chunk: String = (0..5000).map(|n| format!("{n}\n")).collect();
        tap.observe(output("web.1", &chunk), at(1));
        let text = replayed(&tap, &["web.1"], usize::MAX);
        assert_eq!(text.lines().count(), RING_LINES);
        assert!(text.ends_with("| 4999\n"), "{}", &text[text.len() - 20..]);
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_too() {
        let tap = Tap::new(6);
        let long = format!("{}\n", "x".repeat(64 * 1024));
        for n in 0..100 {
            tap.observe(output("web.1", &long), at(n));
        }
        assert!(tap.lock().rings["web.1"].bytes <= RING_BYTES + long.len());
    }

    #[tokio::test]
    async fn a_subscriber_gets_what_is_printed_after_it_subscribed() {
        let tap = Tap::new(6);
        tap.observe(output("web.1", "before\n"), at(1));
        let mut subscription = tap.subscribe(Filter::default(), &plain());
        tap.observe(output("web.1", "after\n"), at(2));
        tap.flush();
        let mut text = Vec::new();
        assert!(subscription.next(&mut text).await);
        assert_eq!(String::from_utf8(text).expect("utf-8"), "web.1  | after\n");
    }

    #[tokio::test]
    async fn a_subscriber_to_one_process_gets_exit_too() {
        let tap = Tap::new(6);
        let filter = Filter {
            names: vec!["web".into()],
        };
        let json = OutputStyle {
            json: true,
            ..plain()
        };
        let mut subscription = tap.subscribe(filter, &json);
        tap.observe(output("worker.1", "other\n"), at(1));
        tap.observe(output("web.1", "mine\n"), at(2));
        tap.observe(Record::Exit { code: 3 }, at(3));
        tap.flush();
        let mut text = Vec::new();
        assert!(subscription.next(&mut text).await);
        let text = String::from_utf8(text).expect("utf-8");
        let events: Vec<&str> = text.lines().collect();
        assert_eq!(events.len(), 2, "{text}");
        assert!(events[0].contains(r#""line":"mine""#), "{text}");
        assert!(events[1].contains(r#""event":"exit","code":3"#), "{text}");
    }

    #[test]
    fn finishing_waits_for_each_subscriber_to_take_what_it_was_sent() {
        let tap = Tap::new(6);
        let mut subscription = tap.subscribe(Filter::default(), &plain());
        // Not flushed yet: `finish` sends what the printer's last batch left pending.
        tap.observe(output("web.1", "last\n"), at(1));
        let received = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let mut text = Vec::new();
                while subscription.next_blocking(&mut text) {}
                *received.lock().expect("unpoisoned") = text;
            })
        };
        // Far off: `finish` returns as soon as the reader is done.
        tap.finish(Instant::now() + Duration::from_secs(60));
        let text = received.lock().expect("unpoisoned").clone();
        assert_eq!(String::from_utf8(text).expect("utf-8"), "web.1  | last\n");
        reader.join().expect("reader");
    }

    #[test]
    fn finishing_gives_up_on_a_subscriber_at_the_deadline() {
        let tap = Tap::new(6);
        let _never_read = tap.subscribe(Filter::default(), &plain());
        let bound = Duration::from_secs(1);
        let started = Instant::now();
        tap.finish(started + bound);
        let waited = started.elapsed();
        assert!(waited >= bound, "{waited:?}");
        assert!(waited < bound * 3, "{waited:?}");
    }

    #[tokio::test]
    async fn finishing_past_the_deadline_still_ends_every_subscription() {
        let tap = Tap::new(6);
        let mut subscription = tap.subscribe(Filter::default(), &plain());
        tap.observe(output("web.1", "last\n"), at(1));
        let started = Instant::now();
        // The printer's wait used the whole bound (stdout stopped taking output).
        tap.finish(started);
        assert!(started.elapsed() < Duration::from_secs(1));
        let mut text = Vec::new();
        while subscription.next(&mut text).await {}
        assert_eq!(String::from_utf8(text).expect("utf-8"), "web.1  | last\n");
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_cut_off() {
        let tap = Tap::new(6);
        let mut subscription = tap.subscribe(Filter::default(), &plain());
        let chunk = format!("{}\n", "x".repeat(1 << 20));
        for n in 0..20 {
            tap.observe(output("web.1", &chunk), at(n));
            tap.flush();
        }
        assert!(tap.lock().subscribers.is_empty());
        let mut text = Vec::new();
        while subscription.next(&mut text).await {}
        let received = text.len() / (chunk.len() + "web.1  | ".len());
        assert_eq!(received, SUBSCRIBER_BACKLOG_BYTES / chunk.len());
    }
}
