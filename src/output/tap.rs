//! What the control socket reads from the log: the last lines of every instance, and
//! live subscriptions (`hlocal logs -f`, an editor's `subscribe`).
//!
//! The printer hands every record it has written to the tap. An instance's output and
//! the lifecycle lines about it are kept in a ring per instance, as the records are
//! (output chunks are reference-counted, so keeping one copies nothing), bounded to its
//! last [`RING_LINES`] lines or [`RING_BYTES`] bytes, whichever is smaller. A subscriber
//! gets each matching record formatted in the style it asked for, through a bounded
//! queue: a subscriber that does not keep up is cut off, never waited for, so no client
//! can slow the printer or, through it, the apps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use super::Record;
use super::format::{Formatter, OutputStyle};

/// Lines kept per instance for `hlocal logs`.
pub const RING_LINES: usize = 1000;
/// Bytes kept per instance at most (a few long lines must not pin megabytes).
pub const RING_BYTES: usize = 1 << 20;
/// Batches a subscriber may fall behind by before it is cut off.
const SUBSCRIBER_BACKLOG: usize = 256;

/// Which records a subscription or a replay wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Instances (`web.1`) or types (`web`); empty: everything, hlocal's and the
    /// router's lines included.
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
    width: usize,
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

#[derive(Debug)]
struct Subscriber {
    filter: Filter,
    formatter: Formatter,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Tap {
    /// `width` is the name column of the plain format, as the printer's.
    pub fn new(width: usize) -> Tap {
        Tap {
            shared: Arc::default(),
            width,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves rings that are still consistent enough
        // to read: each mutation is a single push or pop.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// The last `lines` lines of each instance `filter` selects, oldest first, formatted
    /// in `style`; with `follow`, also a queue of everything printed from now on.
    pub fn replay(
        &self,
        filter: &Filter,
        lines: usize,
        style: &OutputStyle,
        follow: bool,
    ) -> (Vec<u8>, Option<mpsc::Receiver<Vec<u8>>>) {
        let mut shared = self.lock();
        let mut formatter = Formatter::new(style.clone(), self.width, TimeZone::system());
        let mut picked: Vec<(Timestamp, Record)> = shared
            .rings
            .iter()
            .filter(|(name, _)| filter.wants(Some(name)))
            .flat_map(|(_, ring)| ring.last_lines(lines))
            .collect();
        picked.sort_by_key(|(at, _)| *at);
        let mut out = Vec::new();
        for (at, record) in &picked {
            formatter.write(record, *at, &mut out);
        }
        let follower = follow.then(|| shared.subscribe(filter.clone(), style, self.width));
        (out, follower)
    }

    /// Everything printed from now on that `filter` selects, formatted in `style`.
    pub fn subscribe(&self, filter: Filter, style: &OutputStyle) -> mpsc::Receiver<Vec<u8>> {
        self.lock().subscribe(filter, style, self.width)
    }
}

impl Shared {
    fn subscribe(
        &mut self,
        filter: Filter,
        style: &OutputStyle,
        width: usize,
    ) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BACKLOG);
        let formatter = Formatter::new(style.clone(), width, TimeZone::system());
        self.subscribers.push(Subscriber {
            filter,
            formatter,
            tx,
        });
        rx
    }

    /// Formats `record` for every subscriber that wants it; drops those that are gone or
    /// too far behind.
    fn publish(&mut self, record: &Record, subject: Option<&str>, at: Timestamp) {
        self.subscribers.retain_mut(|subscriber| {
            if !subscriber.filter.wants(subject) {
                return !subscriber.tx.is_closed();
            }
            let mut text = Vec::new();
            subscriber.formatter.write(record, at, &mut text);
            subscriber.tx.try_send(text).is_ok()
        });
    }
}

impl Ring {
    fn keep(&mut self, record: Record, at: Timestamp) {
        let (lines, bytes) = size_of(&record);
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

    /// The records holding the last `wanted` lines; the oldest one cut to fit.
    fn last_lines(&self, wanted: usize) -> Vec<(Timestamp, Record)> {
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
        Record::Router(_) | Record::Ready { .. } => None,
    }
}

fn size_of(record: &Record) -> (usize, usize) {
    match record {
        Record::Output { lines, .. } => (memchr::memchr_iter(b'\n', lines).count(), lines.len()),
        Record::State(change) => (1, change.text.len()),
        Record::Message { text, .. } => (1, text.len()),
        Record::Router(_) | Record::Ready { .. } => (0, 0),
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
        let (text, _) = tap.replay(&filter, lines, &plain(), false);
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
    fn the_ring_is_bounded_in_bytes_too() {
        let tap = Tap::new(6);
        let long = format!("{}\n", "x".repeat(64 * 1024));
        for n in 0..100 {
            tap.observe(output("web.1", &long), at(n));
        }
        assert!(tap.lock().rings["web.1"].bytes <= RING_BYTES + long.len());
    }

    #[test]
    fn a_subscriber_gets_what_is_printed_after_it_subscribed() {
        let tap = Tap::new(6);
        tap.observe(output("web.1", "before\n"), at(1));
        let mut rx = tap.subscribe(Filter::default(), &plain());
        tap.observe(output("web.1", "after\n"), at(2));
        let got = rx.try_recv().expect("a batch");
        assert_eq!(String::from_utf8(got).expect("utf-8"), "web.1  | after\n");
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_cut_off() {
        let tap = Tap::new(6);
        let mut rx = tap.subscribe(Filter::default(), &plain());
        for n in 0..(SUBSCRIBER_BACKLOG as i64 + 10) {
            tap.observe(output("web.1", "line\n"), at(n));
        }
        assert!(tap.lock().subscribers.is_empty());
        let mut received = 0;
        while rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, SUBSCRIBER_BACKLOG);
    }
}
