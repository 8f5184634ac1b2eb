//! Protocol bugs planted on purpose, so that the simulation harness can show
//! that it catches each of them. The module exists only with the
//! `planted-bugs` cargo feature, which is off by default and must never be
//! on in a release of the `almanac` binary.
//!
//! The harness selects at most one bug per thread with [`set_active`], and
//! each hook in the node code calls [`active`]. A thread-local keeps
//! parallel test threads, each with its own simulation, from seeing each
//! other's choice.

use std::cell::Cell;

use crate::calendar::{Calendar, Request, UNTRACKED_CLIENT_ID};

/// One planted bug, named as on the harness's command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// The primary commits an op without waiting for f prepare-oks.
    SkipQuorum,
    /// A node sends prepare-ok (and replies to clients) before its log
    /// append is synced.
    AckBeforeFsync,
    /// A backup accepts a prepare or commit from an older view and moves
    /// back to that view.
    StaleView,
    /// A backup applies every op it appends, before the primary commits it.
    ApplyUncommitted,
    /// After a view change, a repeated request is applied again instead of
    /// returning the outcome stored in the client table.
    ForgetClientTable,
    /// The primary serves a read without confirming its role with a quorum.
    UnconfirmedRead,
}

impl Bug {
    /// Every planted bug, in the order of their names.
    pub const ALL: [Bug; 6] = [
        Bug::SkipQuorum,
        Bug::AckBeforeFsync,
        Bug::StaleView,
        Bug::ApplyUncommitted,
        Bug::ForgetClientTable,
        Bug::UnconfirmedRead,
    ];

    /// Returns the bug's command-line name, such as `skip-quorum`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipQuorum => "skip-quorum",
            Bug::AckBeforeFsync => "ack-before-fsync",
            Bug::StaleView => "stale-view",
            Bug::ApplyUncommitted => "apply-uncommitted",
            Bug::ForgetClientTable => "forget-client-table",
            Bug::UnconfirmedRead => "unconfirmed-read",
        }
    }

    /// Parses a command-line name; the error lists the valid names.
    pub fn from_name(name: &str) -> Result<Bug, String> {
        Bug::ALL
            .into_iter()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
                format!(
                    "unknown planted bug {name:?}; use one of {}",
                    names.join(", ")
                )
            })
    }
}

thread_local! {
    static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
}

/// Selects the bug that the hooks on this thread plant; None plants none.
pub fn set_active(bug: Option<Bug>) {
    ACTIVE.with(|active| active.set(bug));
}

/// Returns whether `bug` is the one selected on this thread.
pub fn active(bug: Bug) -> bool {
    ACTIVE.with(|active| active.get() == Some(bug))
}

/// The hook of [`Bug::ForgetClientTable`]: when that bug is active and the
/// entry comes from a view after the first, a repeat of a client's last
/// request loses its client id, so [`Calendar::apply`] applies it again.
/// Every node applies the same log, so they all forget alike.
pub fn forget_client_table(calendar: &Calendar, view: u64, mut request: Request) -> Request {
    let repeated = calendar
        .last_request(request.client_id)
        .is_some_and(|(seq, _)| seq == request.seq);
    if active(Bug::ForgetClientTable) && view > 0 && repeated {
        request.client_id = UNTRACKED_CLIENT_ID;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(Bug::from_name(bug.name()), Ok(bug));
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let error = Bug::from_name("skip").unwrap_err();
        assert!(error.contains("skip-quorum"), "{error}");
    }

    #[test]
    fn selection_is_per_thread() {
        set_active(Some(Bug::StaleView));
        assert!(active(Bug::StaleView));
        assert!(!active(Bug::SkipQuorum));
        let other = std::thread::spawn(|| active(Bug::StaleView))
            .join()
            .unwrap();
        assert!(!other, "another thread must not see this thread's bug");
        set_active(None);
        assert!(!active(Bug::StaleView));
    }
}
