//! Guests' responses to invitations (RSVP) and how they change whose time an
//! event blocks.
//!
//! The host of an event always attends. A guest (every user but the host, for
//! a public event) has one response per event: needs-action until they respond,
//! then accepted, tentative or declined. Every response but declined blocks the
//! guest's time, so two overlapping events conflict when some user is blocked
//! by both. Responses are visible to everyone who can see the event.
//!
//! A guest may also respond to one occurrence of a recurring event, named by
//! its original start. That response overrides the guest's response to the
//! series for that occurrence only, in conflict checks as everywhere else.
//!
//! Moving an event (a new start or duration) resets every response to
//! needs-action, because the guests responded for another time; other edits
//! keep the responses of the guests who stay.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::history::Change;
use super::recurrence::{Expander, Occurrence};
use super::series::{check_occurrence, checked_spans, stored_expander};
use super::state::Calendar;
use super::types::UnixMinute;
use super::types::{format_minute, Effect, EventId, EventView, NotificationKind, Rejection};
use super::users::user_key;

/// A guest's response, named as in RFC 5545's PARTSTAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Response {
    NeedsAction,
    Accepted,
    Tentative,
    Declined,
}

impl Response {
    /// Whether an event with this response keeps the guest's time busy.
    pub fn blocks_time(self) -> bool {
        self != Response::Declined
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Response::NeedsAction => "needs-action",
            Response::Accepted => "accepted",
            Response::Tentative => "tentative",
            Response::Declined => "declined",
        }
    }
}

/// One guest's stored response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestResponse {
    /// Username as registered.
    pub guest: String,
    pub response: Response,
    /// Original start of the one occurrence this response is for; `None` for
    /// the whole event (a one-off event or every occurrence of a series).
    #[serde(default)]
    pub occurrence: Option<UnixMinute>,
}

impl EventView {
    /// Returns the response of the user with this lowercase key: accepted for the host,
    /// needs-action for a guest who has not responded. Callers check first that
    /// the user is a guest.
    pub fn response_of(&self, key: &str) -> Response {
        self.response_at(key, None)
    }

    /// Returns the response of the user with this lowercase key to one
    /// occurrence (its original start), which is their response to the whole
    /// event unless they responded to that occurrence. `None` selects the
    /// whole event.
    pub fn response_at(&self, key: &str, occurrence: Option<UnixMinute>) -> Response {
        if user_key(&self.host) == key {
            return Response::Accepted;
        }
        let of_guest = |entry: &&GuestResponse| user_key(&entry.guest) == key;
        let exact = self
            .responses
            .iter()
            .filter(of_guest)
            .find(|entry| entry.occurrence == occurrence);
        let whole = || {
            self.responses
                .iter()
                .filter(of_guest)
                .find(|entry| entry.occurrence.is_none())
        };
        exact
            .or_else(whole)
            .map_or(Response::NeedsAction, |entry| entry.response)
    }

    /// Returns the responses that hold for one occurrence, each guest's
    /// response to it or else to the series, with no occurrence named: the
    /// responses an occurrence's view carries.
    pub(crate) fn responses_at(&self, original_start: UnixMinute) -> Vec<GuestResponse> {
        let mut kept: Vec<GuestResponse> = Vec::new();
        let for_occurrence = |entry: &&GuestResponse| entry.occurrence == Some(original_start);
        let for_series = |entry: &&GuestResponse| entry.occurrence.is_none();
        let ordered = self.responses.iter().filter(for_occurrence);
        for entry in ordered.chain(self.responses.iter().filter(for_series)) {
            let key = user_key(&entry.guest);
            if kept.iter().all(|other| user_key(&other.guest) != key) {
                kept.push(GuestResponse {
                    occurrence: None,
                    ..entry.clone()
                });
            }
        }
        kept.sort_by_key(|entry| user_key(&entry.guest));
        kept
    }

    /// Returns the event with the responses of one occurrence in place of
    /// its own, for conflict checks. The event is borrowed when no guest
    /// responded to a single occurrence.
    pub(crate) fn at_occurrence(&self, original_start: UnixMinute) -> Cow<'_, EventView> {
        if self
            .responses
            .iter()
            .all(|entry| entry.occurrence.is_none())
        {
            return Cow::Borrowed(self);
        }
        let mut view = self.clone();
        view.responses = self.responses_at(original_start);
        Cow::Owned(view)
    }

    /// Whether this event keeps the user with this lowercase key busy: the
    /// host always, a guest unless they declined, anyone else never.
    pub(crate) fn blocks(&self, key: &str) -> bool {
        let invited = self.is_public() || self.involves(key);
        invited && self.response_of(key).blocks_time()
    }

    fn set_response(&mut self, guest: &str, response: Response, occurrence: Option<UnixMinute>) {
        let key = user_key(guest);
        self.responses
            .retain(|entry| user_key(&entry.guest) != key || entry.occurrence != occurrence);
        if response != Response::NeedsAction {
            self.responses.push(GuestResponse {
                guest: guest.to_string(),
                response,
                occurrence,
            });
            self.responses
                .sort_by_key(|entry| (user_key(&entry.guest), entry.occurrence));
        }
    }

    /// Drops the responses to single occurrences for which `keep` is false,
    /// as when those occurrences are moved or cancelled.
    pub(crate) fn retain_occurrence_responses(&mut self, keep: impl Fn(UnixMinute) -> bool) {
        self.responses
            .retain(|entry| entry.occurrence.is_none_or(&keep));
    }
}

impl Calendar {
    /// Records a guest's response, to the whole event or with `occurrence` to
    /// the occurrence of a series with that original start, and notifies the
    /// host. A response that makes the guest's time busy where it was free is
    /// rejected with the conflicts it would cause.
    pub(crate) fn respond(
        &mut self,
        caller: &str,
        event_id: EventId,
        response: Response,
        occurrence: Option<UnixMinute>,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let event = self.events.get(&event_id);
        let Some(event) = event.filter(|event| event.is_visible_to(&key)) else {
            return Err(Rejection::not_found(format!("event {event_id}")));
        };
        if let Some(original_start) = occurrence {
            check_responded_occurrence(event, original_start)?;
        }
        check_response(event, &key, response, occurrence)?;
        let guest = self.users[&key].username.clone();
        let mut changed = event.clone();
        changed.set_response(&guest, response, occurrence);
        let freed = !event.response_at(&key, occurrence).blocks_time();
        if response.blocks_time() && freed {
            let spans = newly_blocked_spans(event, &key, occurrence);
            let slots = self.find_span_conflicts(&changed, &spans, &key, false);
            if !slots.is_empty() {
                return Err(Rejection::Conflict { slots });
            }
        }

        self.replace_event(event_id, changed.clone());
        let shown = match occurrence {
            Some(original_start) => {
                let expander = stored_expander(&changed);
                let span = expander.occurrence_at(original_start);
                expander.occurrence_view(&changed, &span)
            }
            None => changed,
        };
        let host = std::iter::once(user_key(&shown.host)).collect();
        self.notify(&host, NotificationKind::Responded, &shown, &guest, now_ms);
        let change = Change::Responded { response };
        self.record_occurrence_history(event_id, now_ms, &guest, occurrence, change);
        Ok(Effect::Responded { event_id, response })
    }

    /// Returns the users that conflict slots name for two overlapping
    /// events, or nothing when no user is blocked by both, so that they do
    /// not conflict. `reported` are the participants named when nobody
    /// declined; those who declined either event are left out, and when none
    /// remain, one user blocked by both is named instead.
    pub(crate) fn blocked_by_both(
        &self,
        candidate: &EventView,
        other: &EventView,
        reported: Vec<&String>,
    ) -> Vec<String> {
        let both = |name: &&String| {
            let key = user_key(name);
            candidate.blocks(&key) && other.blocks(&key)
        };
        let mut explicit = candidate.participants().chain(other.participants());
        let blocker = match explicit.find(both) {
            Some(name) => vec![name.clone()],
            None if candidate.is_public() && other.is_public() => {
                self.first_user_blocked_by_both(candidate, other)
            }
            None => Vec::new(),
        };
        if blocker.is_empty() {
            return blocker;
        }
        let declined_neither = |name: &&String| {
            let key = user_key(name);
            !declined(candidate, &key) && !declined(other, &key)
        };
        let kept: Vec<String> = reported
            .into_iter()
            .filter(declined_neither)
            .cloned()
            .collect();
        if kept.is_empty() {
            blocker
        } else {
            kept
        }
    }

    /// Returns the first user blocked by two public events, which block every
    /// user except those who declined them.
    fn first_user_blocked_by_both(&self, first: &EventView, second: &EventView) -> Vec<String> {
        let both = |key: &&String| first.blocks(key) && second.blocks(key);
        let free = self.users.iter().find(|(key, _)| both(key));
        free.map(|(_, user)| user.username.clone())
            .into_iter()
            .collect()
    }

    /// Keeps the responses of an edited event that still apply: none when the
    /// start or duration changed, else those of the guests who stay.
    pub(crate) fn carry_responses(old: &EventView, new: &mut EventView) {
        let moved = old.start != new.start || old.duration_minutes != new.duration_minutes;
        if moved {
            new.responses.clear();
            return;
        }
        let is_public = new.is_public();
        let guests: BTreeSet<String> = new.guests().iter().map(|guest| user_key(guest)).collect();
        new.responses
            .retain(|entry| is_public || guests.contains(&user_key(&entry.guest)));
        drop_stale_occurrence_responses(new);
    }

    /// Removes a deleted user's responses from every event that still has them.
    /// The user's private events are handled by the caller; this covers the
    /// public ones.
    // NOTE: this scans every public event, because responses have no index by
    // guest; account deletion is rare enough for that.
    pub(crate) fn forget_public_responses(&mut self, key: &str) {
        let responded: Vec<EventId> = self
            .index
            .public_by_start
            .iter()
            .map(|&(_, id)| id)
            .filter(|id| self.has_response(*id, key))
            .collect();
        for event_id in responded {
            let mut event = self.events[&event_id].clone();
            event
                .responses
                .retain(|entry| user_key(&entry.guest) != key);
            self.replace_event(event_id, event);
        }
    }

    fn has_response(&self, event_id: EventId, key: &str) -> bool {
        let responses = &self.events[&event_id].responses;
        responses.iter().any(|entry| user_key(&entry.guest) == key)
    }
}

/// Drops the responses to occurrences the event no longer has, as after a
/// change of zone moved the later occurrences of a series in UTC.
fn drop_stale_occurrence_responses(event: &mut EventView) {
    if event
        .responses
        .iter()
        .all(|entry| entry.occurrence.is_none())
    {
        return;
    }
    let live: BTreeSet<UnixMinute> = match Expander::new(event) {
        Ok(expander) => {
            let recurrence = event
                .recurrence
                .as_ref()
                .expect("the expander has a series");
            let cancelled = |start: &UnixMinute| recurrence.exceptions.binary_search(start).is_ok();
            let starts = event.responses.iter().filter_map(|entry| entry.occurrence);
            starts
                .filter(|start| !cancelled(start) && expander.has_rule_start(*start))
                .collect()
        }
        Err(_) => BTreeSet::new(),
    };
    event.retain_occurrence_responses(|start| live.contains(&start));
}

/// Lists the occurrences of `event` whose time a blocking response from this guest
/// would make busy: the one named, or for the whole event those the guest
/// did not respond to one by one.
fn newly_blocked_spans(
    event: &EventView,
    key: &str,
    occurrence: Option<UnixMinute>,
) -> Vec<Occurrence> {
    if let Some(original_start) = occurrence {
        return vec![stored_expander(event).occurrence_at(original_start)];
    }
    let responded: BTreeSet<UnixMinute> = event
        .responses
        .iter()
        .filter(|entry| user_key(&entry.guest) == key)
        .filter_map(|entry| entry.occurrence)
        .collect();
    let mut spans = checked_spans(event);
    spans.retain(|span| !responded.contains(&span.original_start));
    spans
}

/// Checks that a response to one occurrence names an occurrence of a series.
fn check_responded_occurrence(
    event: &EventView,
    original_start: UnixMinute,
) -> Result<(), Rejection> {
    if !event.is_recurring() {
        return Err(Rejection::invalid(
            "occurrence",
            format!(
                "event {} \"{}\" does not recur; respond to the whole event without an occurrence",
                event.id, event.title
            ),
        ));
    }
    check_occurrence(event, original_start)
}

fn declined(event: &EventView, key: &str) -> bool {
    event.response_of(key) == Response::Declined
}

/// Returns the response the user gave to exactly this target: the whole event, or
/// one occurrence. An occurrence without a response of its own has none, so a guest
/// may pin it to the series' response against later changes of that.
fn stated_response(event: &EventView, key: &str, occurrence: Option<UnixMinute>) -> Response {
    if occurrence.is_none() || user_key(&event.host) == key {
        return event.response_at(key, occurrence);
    }
    let stated = event
        .responses
        .iter()
        .find(|entry| user_key(&entry.guest) == key && entry.occurrence == occurrence);
    stated.map_or(Response::NeedsAction, |entry| entry.response)
}

/// Checks that the user may give this response to this event now.
fn check_response(
    event: &EventView,
    key: &str,
    response: Response,
    occurrence: Option<UnixMinute>,
) -> Result<(), Rejection> {
    if user_key(&event.host) == key {
        return Err(Rejection::Invalid {
            field: "response".into(),
            message: format!(
                "you host event {} \"{}\", so you attend it; delete it to cancel",
                event.id, event.title
            ),
        });
    }
    if response == Response::NeedsAction {
        return Err(Rejection::invalid(
            "response",
            "needs-action is the state before a response; respond with accept, tentative or decline",
        ));
    }
    if stated_response(event, key, occurrence) == response {
        let target = match occurrence {
            Some(start) => format!("the occurrence at {} of event", format_minute(start)),
            None => "event".to_string(),
        };
        return Err(Rejection::invalid(
            "response",
            format!(
                "your response to {target} {} is already {}; give another response to change it",
                event.id,
                response.as_str()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{guests, private, public, schedule, Harness, HOUR, MONDAY};
    use super::super::types::{BusySlot, Command, Effect, EventChanges, EventDraft};
    use super::super::types::{NotificationKind, Outcome, Recurrence, Rejection, Visibility};
    use super::Response;

    fn respond(caller: &str, event_id: u64, response: Response) -> Command {
        Command::Respond {
            caller: caller.into(),
            event_id,
            response,
            occurrence_start: None,
        }
    }

    fn response_in(harness: &Harness, event_id: u64, user: &str) -> Response {
        harness.calendar.events[&event_id].response_of(user)
    }

    #[test]
    fn respond_stores_response_notifies_host() {
        let mut harness = Harness::with_users(&["alice", "Bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        assert_eq!(response_in(&harness, id, "bob"), Response::NeedsAction);
        let effect = harness.ok(respond("bob", id, Response::Accepted));
        assert_eq!(
            effect,
            Effect::Responded {
                event_id: id,
                response: Response::Accepted
            }
        );
        assert_eq!(response_in(&harness, id, "bob"), Response::Accepted);
        assert_eq!(harness.calendar.events[&id].version, 1);
        let inbox = harness.calendar.notifications("alice", 0);
        let last = inbox.last().expect("the host was notified");
        assert_eq!(last.kind, NotificationKind::Responded);
        assert_eq!(last.actor, "Bob");
        assert_eq!(last.event.response_of("bob"), Response::Accepted);
        let guest_inbox = harness.calendar.notifications("bob", 0);
        assert!(guest_inbox
            .iter()
            .all(|n| n.kind != NotificationKind::Responded));
    }

    #[test]
    fn respond_rejects_host_repeat_and_strangers() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        let host = harness.rejected(respond("alice", id, Response::Declined));
        assert!(host.to_string().contains("you host event 1"), "{host}");
        let stranger = harness.rejected(respond("carol", id, Response::Accepted));
        assert_eq!(stranger, Rejection::not_found("event 1"));
        let missing = harness.rejected(respond("bob", 9, Response::Accepted));
        assert_eq!(missing, Rejection::not_found("event 9"));
        let unset = harness.rejected(respond("bob", id, Response::NeedsAction));
        assert!(unset.to_string().contains("needs-action"), "{unset}");
        harness.ok(respond("bob", id, Response::Tentative));
        let repeat = harness.rejected(respond("bob", id, Response::Tentative));
        assert!(
            repeat.to_string().contains("event 1 is already tentative"),
            "{repeat}"
        );
    }

    #[test]
    fn any_user_responds_to_public_event() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", public("Town hall", MONDAY, 60));
        harness.ok(respond("bob", id, Response::Declined));
        assert_eq!(response_in(&harness, id, "bob"), Response::Declined);
        assert_eq!(response_in(&harness, id, "alice"), Response::Accepted);
    }

    #[test]
    fn declined_event_frees_guest_time() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        let clash = private("Gym", MONDAY + 30, 60, &[]);
        harness.rejected(schedule("bob", clash.clone()));
        harness.ok(respond("bob", id, Response::Declined));
        harness.schedule("bob", clash);
        // The host still attends, so the host's time stays blocked.
        harness.rejected(schedule("alice", private("Solo", MONDAY, 30, &[])));
    }

    #[test]
    fn declined_public_event_frees_guest_time() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", public("Town hall", MONDAY, 60));
        harness.ok(respond("bob", id, Response::Declined));
        harness.schedule("bob", private("Gym", MONDAY, 30, &[]));
        // carol has not declined, so an event with her still conflicts.
        let rejection = harness.rejected(schedule(
            "bob",
            private("Call", MONDAY + 30, 30, &["carol"]),
        ));
        let Rejection::Conflict { slots } = rejection else {
            panic!("expected a conflict, got {rejection:?}");
        };
        // A slot of a public event names its host, as when nobody declined.
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].participant, "alice");
        assert_eq!(slots[0].event.as_ref().map(|e| e.id), Some(id));
    }

    #[test]
    fn accept_after_decline_rechecks_conflicts() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        harness.ok(respond("bob", id, Response::Declined));
        let gym = harness.schedule("bob", private("Gym", MONDAY + 30, 60, &[]));
        for response in [Response::Accepted, Response::Tentative] {
            let rejection = harness.rejected(respond("bob", id, response));
            let Rejection::Conflict { slots } = rejection else {
                panic!("expected a conflict, got {rejection:?}");
            };
            assert_eq!(slots.len(), 1);
            assert_eq!(slots[0].participant, "bob");
            assert_eq!(slots[0].event.as_ref().map(|e| e.id), Some(gym));
        }
        harness.ok(Command::Delete {
            caller: "bob".into(),
            event_id: gym,
        });
        harness.ok(respond("bob", id, Response::Accepted));
    }

    #[test]
    fn moving_event_resets_responses() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob", "carol"]));
        harness.ok(respond("bob", id, Response::Accepted));
        harness.ok(respond("carol", id, Response::Declined));
        let retitle = EventChanges {
            title: Some("Plan B".into()),
            ..EventChanges::default()
        };
        assert!(matches!(
            harness.edit("alice", id, retitle),
            Outcome::Done(_)
        ));
        assert_eq!(response_in(&harness, id, "bob"), Response::Accepted);
        let drop_carol = EventChanges {
            visibility: Some(guests(&["bob"])),
            ..EventChanges::default()
        };
        assert!(matches!(
            harness.edit("alice", id, drop_carol),
            Outcome::Done(_)
        ));
        assert!(harness.calendar.events[&id]
            .responses
            .iter()
            .all(|entry| entry.guest != "carol"));
        let later = EventChanges {
            start: Some(MONDAY + HOUR),
            ..EventChanges::default()
        };
        assert!(matches!(harness.edit("alice", id, later), Outcome::Done(_)));
        assert_eq!(response_in(&harness, id, "bob"), Response::NeedsAction);
        assert!(harness.calendar.events[&id].responses.is_empty());
    }

    #[test]
    fn moving_event_over_decliner_conflicts() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = harness.schedule("alice", private("Plan", MONDAY, 60, &["bob"]));
        harness.ok(respond("bob", id, Response::Declined));
        harness.schedule("bob", private("Gym", MONDAY + 2 * HOUR, 60, &[]));
        let onto_gym = EventChanges {
            start: Some(MONDAY + 2 * HOUR),
            ..EventChanges::default()
        };
        let outcome = harness.edit("alice", id, onto_gym);
        assert!(matches!(
            outcome,
            Outcome::Rejected(Rejection::Conflict { .. })
        ));
    }

    #[test]
    fn deleted_account_responses_forgotten() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let town = harness.schedule("alice", public("Town hall", MONDAY, 60));
        let plan = harness.schedule("alice", private("Plan", MONDAY + 2 * HOUR, 60, &["bob"]));
        harness.ok(respond("bob", town, Response::Declined));
        harness.ok(respond("bob", plan, Response::Accepted));
        harness.ok(Command::DeleteAccount {
            caller: "bob".into(),
        });
        assert!(harness.calendar.events[&town].responses.is_empty());
        assert!(harness.calendar.events[&plan].responses.is_empty());
        assert_eq!(
            harness.calendar.events[&plan].visibility,
            Visibility::Private { guests: vec![] }
        );
        // A new account under the old name starts without the old responses.
        harness.register("bob");
        harness.rejected(schedule("bob", private("Gym", MONDAY, 30, &[])));
    }

    const WEEK: i64 = 7 * 24 * HOUR;

    fn answer(caller: &str, event_id: u64, response: Response, occurrence: i64) -> Command {
        Command::Respond {
            caller: caller.into(),
            event_id,
            response,
            occurrence_start: Some(occurrence),
        }
    }

    /// Schedules a weekly series of four one-hour meetings from `MONDAY`.
    fn weekly(harness: &mut Harness, host: &str, mut draft: EventDraft) -> u64 {
        draft.recurrence = Some(Recurrence {
            rule: "FREQ=WEEKLY;COUNT=4".into(),
            ..Recurrence::default()
        });
        match harness.ok(schedule(host, draft)) {
            Effect::SeriesWritten { event_id, .. } => event_id,
            other => panic!("expected SeriesWritten, got {other:?}"),
        }
    }

    fn at(harness: &Harness, event_id: u64, user: &str, occurrence: Option<i64>) -> Response {
        harness.calendar.events[&event_id].response_at(user, occurrence)
    }

    fn conflict_slots(rejection: Rejection) -> Vec<BusySlot> {
        match rejection {
            Rejection::Conflict { slots } => slots,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn occurrence_response_overrides_series_there_only() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = weekly(&mut harness, "alice", private("Sync", MONDAY, 60, &["bob"]));
        harness.ok(respond("bob", id, Response::Accepted));
        let effect = harness.ok(answer("bob", id, Response::Declined, MONDAY + WEEK));
        assert_eq!(
            effect,
            Effect::Responded {
                event_id: id,
                response: Response::Declined
            }
        );
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + WEEK)),
            Response::Declined
        );
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + 2 * WEEK)),
            Response::Accepted
        );
        assert_eq!(response_in(&harness, id, "bob"), Response::Accepted);

        // The host hears which occurrence the response is for.
        let inbox = harness.calendar.notifications("alice", 0);
        let last = inbox.last().expect("the host was notified");
        assert_eq!(last.kind, NotificationKind::Responded);
        let of = last.event.recurrence.as_ref().and_then(|r| r.occurrence);
        assert_eq!(of.map(|of| of.original_start), Some(MONDAY + WEEK));
        assert_eq!(last.event.response_of("bob"), Response::Declined);

        // Views of single occurrences carry the responses that hold there.
        let views = harness.calendar.agenda("bob", MONDAY, MONDAY + 3 * WEEK);
        let responses: Vec<Response> = views.iter().map(|v| v.response_of("bob")).collect();
        let expected = [Response::Accepted, Response::Declined, Response::Accepted];
        assert_eq!(responses, expected);

        // A later response to the whole series keeps the occurrence's.
        harness.ok(respond("bob", id, Response::Tentative));
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + WEEK)),
            Response::Declined
        );
        assert_eq!(at(&harness, id, "bob", Some(MONDAY)), Response::Tentative);
    }

    #[test]
    fn declined_occurrence_frees_guest_time_there_only() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = weekly(&mut harness, "alice", private("Sync", MONDAY, 60, &["bob"]));
        harness.ok(answer("bob", id, Response::Declined, MONDAY + WEEK));
        harness.schedule("bob", private("Gym", MONDAY + WEEK + 30, 60, &[]));
        let clash = private("Gym", MONDAY + 2 * WEEK + 30, 60, &[]);
        let slots = conflict_slots(harness.rejected(schedule("bob", clash)));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].participant, "bob");
        assert_eq!(slots[0].start, MONDAY + 2 * WEEK);
        // The host still attends the declined occurrence.
        let solo = private("Solo", MONDAY + WEEK, 30, &[]);
        harness.rejected(schedule("alice", solo));
    }

    #[test]
    fn declined_public_occurrence_frees_guest() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = weekly(&mut harness, "alice", public("Town hall", MONDAY, 60));
        harness.ok(answer("bob", id, Response::Declined, MONDAY + 3 * WEEK));
        harness.schedule("bob", private("Gym", MONDAY + 3 * WEEK, 30, &[]));
        let with_carol = private("Call", MONDAY + 3 * WEEK + 30, 30, &["carol"]);
        let slots = conflict_slots(harness.rejected(schedule("bob", with_carol)));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].event.as_ref().map(|e| e.id), Some(id));
    }

    #[test]
    fn accept_occurrence_rechecks_conflicts() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = weekly(&mut harness, "alice", private("Sync", MONDAY, 60, &["bob"]));
        harness.ok(respond("bob", id, Response::Declined));
        let gym = harness.schedule("bob", private("Gym", MONDAY + WEEK + 30, 60, &[]));
        let slots =
            conflict_slots(harness.rejected(answer("bob", id, Response::Accepted, MONDAY + WEEK)));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].participant, "bob");
        assert_eq!(slots[0].start, MONDAY + WEEK + 30);
        assert_eq!(slots[0].event.as_ref().map(|e| e.id), Some(gym));
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + WEEK)),
            Response::Declined
        );
        harness.ok(answer("bob", id, Response::Accepted, MONDAY + 2 * WEEK));

        // Accepting the whole series checks every occurrence without a response of its
        // own, so the Gym week still conflicts.
        let slots = conflict_slots(harness.rejected(respond("bob", id, Response::Accepted)));
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].event.as_ref().map(|e| e.id), Some(gym));
        harness.ok(answer("bob", id, Response::Declined, MONDAY + WEEK));
        harness.ok(respond("bob", id, Response::Accepted));
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + WEEK)),
            Response::Declined
        );
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + 3 * WEEK)),
            Response::Accepted
        );
    }

    #[test]
    fn occurrence_response_rejects_bad_targets() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let series = weekly(&mut harness, "alice", private("Sync", MONDAY, 60, &["bob"]));
        let single = harness.schedule("alice", private("Plan", MONDAY + 2 * HOUR, 60, &["bob"]));
        let one_off =
            harness.rejected(answer("bob", single, Response::Declined, MONDAY + 2 * HOUR));
        assert!(
            one_off
                .to_string()
                .contains("event 2 \"Plan\" does not recur"),
            "{one_off}"
        );
        let missing = harness.rejected(answer("bob", series, Response::Declined, MONDAY + HOUR));
        assert!(matches!(missing, Rejection::NotFound { .. }), "{missing:?}");
        assert!(missing.to_string().contains("of event 1"), "{missing}");
        let past_end =
            harness.rejected(answer("bob", series, Response::Declined, MONDAY + 4 * WEEK));
        assert!(
            matches!(past_end, Rejection::NotFound { .. }),
            "{past_end:?}"
        );

        harness.ok(answer("bob", series, Response::Tentative, MONDAY));
        let repeat = harness.rejected(answer("bob", series, Response::Tentative, MONDAY));
        assert!(
            repeat.to_string().contains("is already tentative"),
            "{repeat}"
        );
        // A response to an occurrence equal to the series' one pins it.
        harness.ok(respond("bob", series, Response::Declined));
        harness.ok(answer("bob", series, Response::Declined, MONDAY + WEEK));
        harness.ok(respond("bob", series, Response::Accepted));
        assert_eq!(
            at(&harness, series, "bob", Some(MONDAY + WEEK)),
            Response::Declined
        );
        let host = harness.rejected(answer("alice", series, Response::Declined, MONDAY));
        assert!(host.to_string().contains("you host event 1"), "{host}");
    }

    #[test]
    fn moved_occurrence_forgets_responses() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let id = weekly(&mut harness, "alice", private("Sync", MONDAY, 60, &["bob"]));
        harness.ok(answer("bob", id, Response::Declined, MONDAY + WEEK));
        harness.ok(answer("bob", id, Response::Declined, MONDAY + 2 * WEEK));
        harness.ok(Command::DeleteOccurrence {
            caller: "alice".into(),
            event_id: id,
            occurrence_start: MONDAY + WEEK,
            following: false,
        });
        let later = EventChanges {
            start: Some(MONDAY + 2 * WEEK + HOUR),
            ..EventChanges::default()
        };
        harness.ok(Command::EditOccurrence {
            caller: "alice".into(),
            event_id: id,
            expected_version: harness.calendar.events[&id].version,
            occurrence_start: MONDAY + 2 * WEEK,
            changes: later,
            following: false,
        });
        assert!(harness.calendar.events[&id].responses.is_empty());
        assert_eq!(
            at(&harness, id, "bob", Some(MONDAY + 2 * WEEK)),
            Response::NeedsAction
        );
    }

    #[test]
    fn zone_change_drops_stale_occurrence_responses() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let mut draft = private("Sync", MONDAY + 9 * HOUR, 60, &["bob"]);
        draft.recurrence = Some(Recurrence {
            rule: "FREQ=WEEKLY;COUNT=20".into(),
            ..Recurrence::default()
        });
        let id = match harness.ok(schedule("alice", draft)) {
            Effect::SeriesWritten { event_id, .. } => event_id,
            other => panic!("expected SeriesWritten, got {other:?}"),
        };
        let winter = MONDAY + 9 * HOUR + WEEK;
        // 2027-04-19, after Berlin moved its clocks forward.
        let spring = MONDAY + 9 * HOUR + 15 * WEEK;
        harness.ok(answer("bob", id, Response::Declined, winter));
        harness.ok(answer("bob", id, Response::Declined, spring));
        let berlin = EventChanges {
            zone: Some("Europe/Berlin".into()),
            ..EventChanges::default()
        };
        assert!(matches!(
            harness.edit("alice", id, berlin),
            Outcome::Done(_)
        ));
        let kept: Vec<Option<i64>> = harness.calendar.events[&id]
            .responses
            .iter()
            .map(|entry| entry.occurrence)
            .collect();
        assert_eq!(kept, vec![Some(winter)]);
    }
}
