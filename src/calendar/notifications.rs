//! Per-user inboxes: which users receive which notifications, and
//! acknowledgements.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::limits::{ACKED_NOTIFICATION_RETENTION_MS, MAX_INBOX_NOTIFICATIONS};
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
    /// The newest `MAX_INBOX_NOTIFICATIONS` notifications in `seq` order,
    /// without acknowledged ones older than the retention window.
    items: VecDeque<Notification>,
}

impl Inbox {
    /// Creates an empty inbox whose first notification gets `seq + 1`.
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
        self.expire(at_ms);
    }

    /// Drops acknowledged notifications that are older than
    /// [`ACKED_NOTIFICATION_RETENTION_MS`] at `now_ms`. Items are in `seq`
    /// order, so the acknowledged ones are a prefix.
    fn expire(&mut self, now_ms: i64) {
        while let Some(oldest) = self.items.front() {
            let expired = oldest.seq <= self.acked_seq
                && oldest.at_ms.saturating_add(ACKED_NOTIFICATION_RETENTION_MS) < now_ms;
            if !expired {
                break;
            }
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

    /// Returns the lowercase usernames notified about an event besides its
    /// host: the guests of a private event, or every other user for a public
    /// one.
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

    /// Acknowledges notifications up to `up_to_seq`, and drops acknowledged
    /// ones older than the retention window at `now_ms`. Acknowledging an
    /// older number than before changes nothing else and succeeds.
    pub(crate) fn ack(
        &mut self,
        caller: &str,
        up_to_seq: u64,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
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
        inbox.expire(now_ms);
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

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_INBOX_NOTIFICATIONS;
    use super::super::test_support::{guests, private, public, Harness, MONDAY};
    use super::super::types::Visibility;
    use super::super::types::{Command, Effect, EventChanges, NotificationKind, Rejection};
    use NotificationKind::{Cancelled, Changed, Invited, RemovedFromGuests};

    /// (seq, kind, event id, actor) of a user's notifications.
    fn inbox(harness: &Harness, user: &str) -> Vec<(u64, NotificationKind, u64, String)> {
        let items = harness.calendar.notifications(user, 0);
        let summary = |n: &super::Notification| (n.seq, n.kind, n.event.id, n.actor.clone());
        items.iter().map(summary).collect()
    }

    fn kinds(harness: &Harness, user: &str) -> Vec<NotificationKind> {
        inbox(harness, user)
            .into_iter()
            .map(|(_, kind, _, _)| kind)
            .collect()
    }

    fn ack(caller: &str, up_to_seq: u64) -> Command {
        Command::AckNotifications {
            caller: caller.into(),
            up_to_seq,
        }
    }

    #[test]
    fn acked_dropped_after_retention() {
        use super::super::limits::ACKED_NOTIFICATION_RETENTION_MS;
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", private("One", MONDAY, 30, &["bob"]));
        harness.schedule("alice", private("Two", MONDAY + 60, 30, &["bob"]));
        harness.ok(ack("bob", 1));
        assert_eq!(kinds(&harness, "bob").len(), 2, "dropped within the window");

        harness.now_ms += ACKED_NOTIFICATION_RETENTION_MS + 1;
        harness.ok(ack("bob", 1));
        let left = inbox(&harness, "bob");
        assert_eq!(left.len(), 1, "acknowledged one outlived the window");
        assert_eq!(left[0].0, 2, "the unacknowledged one must stay");
        assert_eq!(harness.calendar.acked_seq("bob"), 1);
    }

    #[test]
    fn unacked_kept_past_retention() {
        use super::super::limits::ACKED_NOTIFICATION_RETENTION_MS;
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", private("Old", MONDAY, 30, &["bob"]));
        harness.now_ms += 2 * ACKED_NOTIFICATION_RETENTION_MS;
        harness.schedule("alice", private("New", MONDAY + 60, 30, &["bob"]));
        assert_eq!(kinds(&harness, "bob").len(), 2);
        harness.ok(ack("bob", 2));
        assert_eq!(
            kinds(&harness, "bob").len(),
            1,
            "the old acknowledged one must go, the new one stay"
        );
    }

    #[test]
    fn private_invites_guests_only() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        assert_eq!(
            inbox(&harness, "bob"),
            vec![(1, Invited, 1, "alice".into())]
        );
        assert!(kinds(&harness, "carol").is_empty());
        assert!(kinds(&harness, "alice").is_empty());
    }

    #[test]
    fn public_invites_everyone_else() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("alice", public("Party", MONDAY, 30));
        assert_eq!(kinds(&harness, "bob"), vec![Invited]);
        assert_eq!(kinds(&harness, "carol"), vec![Invited]);
        assert!(kinds(&harness, "alice").is_empty());
    }

    #[test]
    fn notification_carries_time_and_event() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        let notification = &harness.calendar.notifications("bob", 0)[0];
        assert_eq!(notification.at_ms, harness.now_ms);
        assert_eq!(notification.event.title, "Plan");
        assert_eq!(notification.event.version, 1);
    }

    #[test]
    fn content_edit_notifies_participants() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob", "carol"]));
        let changes = EventChanges {
            start: Some(MONDAY + 60),
            ..EventChanges::default()
        };
        harness.edit("alice", id, changes);
        assert_eq!(kinds(&harness, "bob"), vec![Invited, Changed]);
        assert_eq!(kinds(&harness, "carol"), vec![Invited, Changed]);
        assert!(kinds(&harness, "alice").is_empty());
        assert!(kinds(&harness, "dave").is_empty());
        let changed = &harness.calendar.notifications("bob", 1)[0];
        assert_eq!(changed.event.start, MONDAY + 60);
        assert_eq!(changed.event.version, 2);
    }

    #[test]
    fn each_content_field_counts_as_change() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        let edits = [
            EventChanges {
                title: Some("New".into()),
                ..EventChanges::default()
            },
            EventChanges {
                description: Some("d".into()),
                ..EventChanges::default()
            },
            EventChanges {
                start: Some(MONDAY + 5),
                ..EventChanges::default()
            },
            EventChanges {
                duration_minutes: Some(50),
                ..EventChanges::default()
            },
            EventChanges {
                zone: Some("Asia/Tokyo".into()),
                ..EventChanges::default()
            },
        ];
        for (done, changes) in edits.into_iter().enumerate() {
            harness.edit("alice", id, changes.clone());
            assert_eq!(kinds(&harness, "bob").len(), done + 2, "after {changes:?}");
        }
    }

    #[test]
    fn guest_edit_invites_and_removes() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol", "dave"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob", "carol"]));
        let changes = EventChanges {
            visibility: Some(guests(&["carol", "dave"])),
            ..EventChanges::default()
        };
        harness.edit("alice", id, changes);
        assert_eq!(kinds(&harness, "bob"), vec![Invited, RemovedFromGuests]);
        assert_eq!(kinds(&harness, "carol"), vec![Invited]);
        assert_eq!(kinds(&harness, "dave"), vec![Invited]);
        let removed = &harness.calendar.notifications("bob", 1)[0];
        assert_eq!(
            removed.event.version, 1,
            "the removed guest sees the old event"
        );
        let invited = &harness.calendar.notifications("dave", 0)[0];
        assert_eq!(invited.event.version, 2);
    }

    #[test]
    fn publishing_invites_everyone() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        let changes = EventChanges {
            visibility: Some(Visibility::Public),
            ..EventChanges::default()
        };
        harness.edit("alice", id, changes);
        assert_eq!(kinds(&harness, "bob"), vec![Invited]);
        assert_eq!(kinds(&harness, "carol"), vec![Invited]);
    }

    #[test]
    fn unpublishing_removes_others() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", public("Party", MONDAY, 30));
        let changes = EventChanges {
            visibility: Some(guests(&["bob"])),
            title: Some("Small party".into()),
            ..EventChanges::default()
        };
        harness.edit("alice", id, changes);
        assert_eq!(kinds(&harness, "bob"), vec![Invited, Changed]);
        assert_eq!(kinds(&harness, "carol"), vec![Invited, RemovedFromGuests]);
    }

    #[test]
    fn delete_cancels_for_participants() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        harness.ok(Command::Delete {
            caller: "alice".into(),
            event_id: id,
        });
        assert_eq!(
            inbox(&harness, "bob")[1],
            (2, Cancelled, id, "alice".into())
        );
        assert!(kinds(&harness, "carol").is_empty());
        assert!(kinds(&harness, "alice").is_empty());
    }

    #[test]
    fn seqs_start_at_one_per_user() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("alice", public("A", MONDAY, 30));
        harness.schedule("bob", public("B", MONDAY + 30, 30));
        let seqs = |user| -> Vec<u64> {
            let items = inbox(&harness, user);
            items.iter().map(|item| item.0).collect()
        };
        assert_eq!(seqs("alice"), vec![1]);
        assert_eq!(seqs("bob"), vec![1]);
        assert_eq!(seqs("carol"), vec![1, 2]);
        assert_eq!(harness.calendar.notifications("carol", 1).len(), 1);
        assert!(harness.calendar.notifications("carol", 2).is_empty());
        assert!(harness.calendar.notifications("nobody", 0).is_empty());
    }

    #[test]
    fn ack_moves_forward_only() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", public("A", MONDAY, 30));
        harness.schedule("alice", public("B", MONDAY + 30, 30));
        assert_eq!(harness.calendar.acked_seq("bob"), 0);
        assert_eq!(harness.ok(ack("bob", 2)), Effect::Acked { up_to_seq: 2 });
        assert_eq!(harness.ok(ack("bob", 1)), Effect::Acked { up_to_seq: 2 });
        assert_eq!(harness.calendar.acked_seq("bob"), 2);
        assert_eq!(harness.calendar.notifications("bob", 0).len(), 2);
    }

    #[test]
    fn ack_beyond_last_is_invalid() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("alice", public("A", MONDAY, 30));
        let rejection = harness.rejected(ack("bob", 2));
        let Rejection::Invalid { field, message } = rejection else {
            panic!("expected Invalid, got {rejection:?}");
        };
        assert_eq!(field, "up_to_seq");
        assert!(message.contains("the newest is 1"), "{message}");
        assert_eq!(
            harness.rejected(ack("ghost", 0)),
            Rejection::not_found("user \"ghost\"")
        );
    }

    #[test]
    fn inbox_keeps_newest_only() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 30, &["bob"]));
        for round in 0..MAX_INBOX_NOTIFICATIONS {
            let changes = EventChanges {
                description: Some(format!("round {round}")),
                ..EventChanges::default()
            };
            harness.edit("alice", id, changes);
        }
        let items = harness.calendar.notifications("bob", 0);
        let total = MAX_INBOX_NOTIFICATIONS as u64 + 1;
        assert_eq!(items.len(), MAX_INBOX_NOTIFICATIONS);
        assert_eq!(items[0].seq, 2);
        assert_eq!(items.last().unwrap().seq, total);
        assert_eq!(
            harness.ok(ack("bob", total)),
            Effect::Acked { up_to_seq: total }
        );
    }
}
