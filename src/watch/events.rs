//! notify's events, reduced to what hlocal acts on. Runs on notify's thread, before the
//! bounded queue to the watch worker, so reads never take a slot in it. Pure; deciding
//! whether a path is watched or ignored is `tree.rs`'s job.

use std::path::PathBuf;

use notify::event::{EventKind, ModifyKind, RemoveKind, RenameMode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Observation {
    /// Contents or metadata of an existing path.
    Changed(PathBuf),
    /// Created, or renamed into place: maybe a directory to start watching.
    Appeared(PathBuf),
    /// Deleted, or renamed away.
    Vanished(PathBuf),
    /// Renamed, direction unknown (the backend could not pair it): existence tells.
    Renamed(PathBuf),
    /// Events were lost (inotify's IN_Q_OVERFLOW, a backend error): anything may have changed.
    Rescan,
}

pub(super) fn observations(event: notify::Result<notify::Event>) -> Vec<Observation> {
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        // notify only reports errors here about the watch itself (a failed read of the
        // inotify queue): treat it as lost events rather than as silence.
        Ok(_) | Err(_) => return vec![Observation::Rescan],
    };
    match observation_for(event.kind) {
        Some(observe) => event.paths.into_iter().map(observe).collect(),
        None => Vec::new(),
    }
}

fn observation_for(kind: EventKind) -> Option<fn(PathBuf) -> Observation> {
    match kind {
        // Opens and closes are reads (the app importing its code, our own directory
        // listings); notify's inotify mask includes them and cannot be narrowed. A write
        // also raises Modify, so close-after-write adds nothing.
        EventKind::Access(_) => None,
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            Some(Observation::Appeared)
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Some(Observation::Vanished),
        // notify sends the paired From and To first, then this summary of both.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => None,
        EventKind::Modify(ModifyKind::Name(_)) => Some(Observation::Renamed),
        // `rm -r` reports every file before its directory, and a directory by itself is
        // not a change (an empty directory does not count either way).
        EventKind::Remove(RemoveKind::Folder) => None,
        EventKind::Remove(_) => Some(Observation::Vanished),
        EventKind::Modify(_) | EventKind::Any | EventKind::Other => Some(Observation::Changed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, Event, Flag, MetadataKind,
    };

    fn observed(kind: EventKind) -> Vec<Observation> {
        observations(Ok(Event::new(kind).add_path("/app/a.py".into())))
    }

    fn path() -> PathBuf {
        PathBuf::from("/app/a.py")
    }

    #[test]
    fn reads_are_not_changes() {
        assert_eq!(
            observed(EventKind::Access(AccessKind::Open(AccessMode::Any))),
            []
        );
        assert_eq!(
            observed(EventKind::Access(AccessKind::Close(AccessMode::Write))),
            []
        );
    }

    #[test]
    fn writes_and_metadata_are_changes() {
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let chmod = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any));
        assert_eq!(observed(write), [Observation::Changed(path())]);
        assert_eq!(observed(chmod), [Observation::Changed(path())]);
    }

    #[test]
    fn creations_and_renames_in_appear_renames_out_vanish() {
        let create = EventKind::Create(CreateKind::File);
        let moved_in = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let moved_out = EventKind::Modify(ModifyKind::Name(RenameMode::From));
        let unpaired = EventKind::Modify(ModifyKind::Name(RenameMode::Any));
        assert_eq!(observed(create), [Observation::Appeared(path())]);
        assert_eq!(observed(moved_in), [Observation::Appeared(path())]);
        assert_eq!(observed(moved_out), [Observation::Vanished(path())]);
        assert_eq!(observed(unpaired), [Observation::Renamed(path())]);
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(observed(both), []);
    }

    #[test]
    fn removed_files_vanish_removed_directories_are_not_reported() {
        assert_eq!(
            observed(EventKind::Remove(RemoveKind::File)),
            [Observation::Vanished(path())]
        );
        assert_eq!(observed(EventKind::Remove(RemoveKind::Folder)), []);
    }

    #[test]
    fn overflow_and_errors_ask_for_a_rescan() {
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert_eq!(observations(Ok(overflow)), [Observation::Rescan]);
        let error = notify::Error::generic("inotify read failed");
        assert_eq!(observations(Err(error)), [Observation::Rescan]);
    }
}
