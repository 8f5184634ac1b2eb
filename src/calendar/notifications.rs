//! Per-user inboxes: who is told about what, and acknowledgements.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::limits::MAX_INBOX_NOTIFICATIONS;
use super::state::Calendar;
use super::types::{Effect, EventView, Notification, NotificationKind, Rejection};
use super::users::user_key;

/// One user's notifications, numbered from 1 without reuse.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Inbox {
    /// Number of the newest notification ever added; 0 before the first.
    last_seq: u64,
    /// Highest number the user acknowledged; never above `last_seq`, never
    /// decreasing.
    acked_seq: u64,
    /// The newest `MAX_INBOX_NOTIFICATIONS` notifications in `seq` order.
    items: VecDeque<Notification>,
}

impl Inbox {
    /// An empty inbox whose first notification gets `seq + 1`.
    pub fn starting_after(seq: u64) -> Inbox {
        Inbox {
            last_seq: seq,
            acked_seq: seq,
            items: VecDeque::new(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn push(&mut self, kind: NotificationKind, event: &EventView, actor: &str, at_ms: i64) {
        self.last_seq += 1;
        self.items.push_back(Notification {
            seq: self.last_seq,
            at_ms,
            kind,
            event: event.clone(),
            actor: actor.to_string(),
        });
        if self.items.len() > MAX_INBOX_NOTIFICATIONS {
            self.items.pop_front();
        }
    }

    fn after(&self, after_seq: u64) -> Vec<Notification> {
        let first = self.items.partition_point(|item| item.seq <= after_seq);
        self.items.range(first..).cloned().collect()
    }
}

impl Calendar {
    /// Notifications of a user with `seq > after_seq`, in order. Empty for an
    /// unknown user. Only the newest `MAX_INBOX_NOTIFICATIONS` are kept.
    pub fn notifications(&self, username: &str, after_seq: u64) -> Vec<Notification> {
        match self.users.get(&user_key(username)) {
            Some(user) => user.inbox.after(after_seq),
            None => Vec::new(),
        }
    }

    /// Highest notification number the user acknowledged; 0 if none or unknown.
    pub fn acked_seq(&self, username: &str) -> u64 {
        let user = self.users.get(&user_key(username));
        user.map_or(0, |user| user.inbox.acked_seq)
    }

    /// Lowercase usernames told about an event besides its host: the guests of
    /// a private event, or every other user for a public one.
    pub(crate) fn audience(&self, event: &EventView) -> BTreeSet<String> {
        let host = user_key(&event.host);
        if event.is_public() {
            let others = self.users.keys().filter(|key| **key != host);
            others.cloned().collect()
        } else {
            event.guests().iter().map(|guest| user_key(guest)).collect()
        }
    }

    /// Adds one notification to each listed user's inbox; unknown keys are
    /// skipped.
    pub(crate) fn notify(
        &mut self,
        recipients: &BTreeSet<String>,
        kind: NotificationKind,
        event: &EventView,
        actor: &str,
        at_ms: i64,
    ) {
        for key in recipients {
            if let Some(user) = self.users.get_mut(key) {
                user.inbox.push(kind, event, actor, at_ms);
            }
        }
    }

    /// Tells everyone concerned about an edit: `Changed` to those who stay in
    /// the audience when the content changed, `RemovedFromGuests` (with the
    /// event as they last saw it) to those who left, and `Invited` to those
    /// who joined.
    pub(crate) fn notify_edit(&mut self, old: &EventView, new: &EventView, at_ms: i64) {
        let before = self.audience(old);
        let after = self.audience(new);
        let actor = new.host.clone();
        if content_changed(old, new) {
            let kept = before.intersection(&after).cloned().collect();
            self.notify(&kept, NotificationKind::Changed, new, &actor, at_ms);
        }
        let removed = before.difference(&after).cloned().collect();
        self.notify(
            &removed,
            NotificationKind::RemovedFromGuests,
            old,
            &actor,
            at_ms,
        );
        let added = after.difference(&before).cloned().collect();
        self.notify(&added, NotificationKind::Invited, new, &actor, at_ms);
    }

    /// Acknowledges notifications up to `up_to_seq`. Acknowledging an older
    /// number than before changes nothing and succeeds.
    pub(crate) fn ack(&mut self, caller: &str, up_to_seq: u64) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let inbox = &mut self
            .users
            .get_mut(&key)
            .expect("existing_user checked")
            .inbox;
        if up_to_seq > inbox.last_seq {
            return Err(Rejection::invalid(
                "up_to_seq",
                format!(
                    "notification {up_to_seq} does not exist yet; the newest is {}",
                    inbox.last_seq
                ),
            ));
        }
        inbox.acked_seq = inbox.acked_seq.max(up_to_seq);
        Ok(Effect::Acked {
            up_to_seq: inbox.acked_seq,
        })
    }
}

fn content_changed(old: &EventView, new: &EventView) -> bool {
    old.title != new.title
        || old.description != new.description
        || old.start != new.start
        || old.duration_minutes != new.duration_minutes
        || old.zone != new.zone
}
