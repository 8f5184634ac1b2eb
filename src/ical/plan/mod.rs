//! Import planning: a parsed file becomes, per event, either the drafts and
//! occurrence edits to submit or the reason it is skipped. Planning reads no
//! clock and no network, so every rule here is tested without a cluster.
//! The commands still go through the cluster's own conflict and permission
//! checks when they are submitted.
//!
//! What Almanac cannot store is mapped and reported:
//!
//! - An all-day (DATE) event keeps its dates and a floating time its
//!   wall-clock time. Their instants, which conflict checks use, are read in
//!   the user's zone: an all-day event runs from midnight of its first date
//!   there to midnight of its end date.
//! - Each RDATE becomes a one-off event of its own.
//! - A zero-length event lasts 1 minute, the shortest Almanac stores.
//! - Properties Almanac has no field for (LOCATION, VALARM, ...) are listed
//!   as ignored.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::calendar::{
    Command, EventChanges, EventDraft, UnixMinute, Visibility, MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
};

use super::read::{IcsComponent, IcsFile};
use super::zones::ZoneResolver;

mod series;
mod times;

use series::{match_rule, stray_item};

/// Properties that map onto Almanac's fields or carry no meaning for it
/// (identifiers and stamps); every other property is reported as ignored.
const HANDLED_PROPERTIES: &[&str] = &[
    "UID",
    "DTSTAMP",
    "CREATED",
    "LAST-MODIFIED",
    "SEQUENCE",
    "SUMMARY",
    "DESCRIPTION",
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "EXDATE",
    "RDATE",
    "RECURRENCE-ID",
    "ATTENDEE",
    "ORGANIZER",
    "CLASS",
    "STATUS",
];

/// Title given to an event without a SUMMARY.
pub const UNTITLED: &str = "(no title)";

/// Settings of one import: the importing user and how strictly to read.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The importing user, who becomes the host of every event.
    pub username: String,
    /// The user's zone: the instants of floating times and all-day dates,
    /// which conflict checks use, are resolved in it, and unknown zones fall
    /// back to it.
    pub user_zone: Tz,
    /// Registered usernames; an ATTENDEE whose CN or address local part is
    /// one of them becomes a guest.
    pub users: Vec<String>,
    /// Accepts an event with both DTEND and DURATION (DTEND wins) instead of
    /// skipping it, as RFC 5545 forbids that combination.
    pub lenient: bool,
}

/// The plan for one file, with one item per event in file order (a series
/// and its overrides are one item).
#[derive(Clone, Debug, Default)]
pub struct ImportPlan {
    pub items: Vec<PlanItem>,
}

impl ImportPlan {
    /// Number of items that will be submitted.
    pub fn scheduled_count(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item.action, PlanAction::Schedule { .. }))
            .count()
    }
}

/// The outcome of planning one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanItem {
    /// UID from the file, or `event-N` (its position in the file) for an
    /// event without one.
    pub uid: String,
    pub title: String,
    pub action: PlanAction,
    /// Notes on values that were mapped, zones that were resolved and
    /// properties that were ignored.
    pub notes: Vec<String>,
}

// Most items are `Schedule`, so boxing the draft would cost an allocation
// per event and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanAction {
    /// Schedule the draft, then apply the occurrence edits to the new event.
    Schedule {
        draft: EventDraft,
        moved: Vec<MovedOccurrence>,
    },
    /// Nothing is submitted for this event.
    Skip { reason: String },
}

/// A RECURRENCE-ID override that changes an occurrence instead of
/// cancelling it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedOccurrence {
    /// The instant the rule gives the occurrence (its RECURRENCE-ID).
    pub original_start: UnixMinute,
    pub changes: EventChanges,
}

impl PlanItem {
    /// Returns the first command of this item, the schedule of its draft.
    /// Occurrence edits follow it and need the new event's id.
    pub fn schedule_command(&self, caller: &str) -> Option<Command> {
        match &self.action {
            PlanAction::Schedule { draft, .. } => Some(Command::Schedule {
                caller: caller.to_string(),
                draft: draft.clone(),
            }),
            PlanAction::Skip { .. } => None,
        }
    }
}

/// The components that share one UID: at most one master, any overrides.
#[derive(Default)]
struct UidGroup<'a> {
    masters: Vec<&'a IcsComponent>,
    overrides: Vec<&'a IcsComponent>,
}

/// Plans a parsed file. Components are grouped by UID in one pass over a
/// `BTreeMap` (O(n log n) for n events), and each TZID is resolved once.
pub fn plan_import(file: &IcsFile, options: &ImportOptions) -> ImportPlan {
    let mut resolver = ZoneResolver::new(options.user_zone, &file.timezones);
    let users: BTreeMap<String, String> = options
        .users
        .iter()
        .map(|name| (name.to_lowercase(), name.clone()))
        .collect();
    let mut planner = Planner {
        options,
        resolver: &mut resolver,
        users,
    };

    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, UidGroup> = BTreeMap::new();
    for (index, event) in file.events.iter().enumerate() {
        let uid = match event.value("UID") {
            Some(uid) if !uid.is_empty() => uid.to_string(),
            _ => format!("event-{}", index + 1),
        };
        let group = groups.entry(uid.clone()).or_insert_with(|| {
            order.push(uid.clone());
            UidGroup::default()
        });
        if event.first("RECURRENCE-ID").is_some() {
            group.overrides.push(event);
        } else {
            group.masters.push(event);
        }
    }

    let mut plan = ImportPlan::default();
    for uid in order {
        let group = &groups[&uid];
        planner.plan_group(&uid, group, &mut plan.items);
    }
    plan
}

struct Planner<'a> {
    options: &'a ImportOptions,
    resolver: &'a mut ZoneResolver,
    /// Registered usernames by lowercase name.
    users: BTreeMap<String, String>,
}

impl Planner<'_> {
    fn plan_group(&mut self, uid: &str, group: &UidGroup, items: &mut Vec<PlanItem>) {
        let Some((master, duplicates)) = group.masters.split_first() else {
            // Overrides whose series is not in the file: each is one event.
            for moved in &group.overrides {
                let mut item = self.plan_single(uid, moved);
                item.notes.push(
                    "the file has this occurrence but not its series, \
                     so it was imported as a one-off event"
                        .into(),
                );
                items.push(item);
            }
            return;
        };
        let mut item = self.plan_single(uid, master);
        if !duplicates.is_empty() {
            item.notes.push(format!(
                "{} more VEVENT(s) with this UID and no RECURRENCE-ID were ignored",
                duplicates.len()
            ));
        }
        let mut extra = match &mut item.action {
            PlanAction::Schedule { draft, moved } => {
                self.attach_overrides(draft, moved, &group.overrides, &mut item.notes)
            }
            PlanAction::Skip { .. } => Vec::new(),
        };
        if let PlanAction::Schedule { draft, moved } = &mut item.action {
            let strays = match_rule(draft, moved, &mut item.notes);
            extra.extend(
                strays
                    .into_iter()
                    .map(|stray| stray_item(uid, draft, stray)),
            );
        }
        let rdates = match &item.action {
            PlanAction::Schedule { draft, .. } => self.rdate_events(uid, master, draft),
            PlanAction::Skip { .. } => Vec::new(),
        };
        items.push(item);
        items.extend(extra);
        items.extend(rdates);
    }

    /// Plans one VEVENT as an event of its own, with its RRULE and EXDATEs.
    fn plan_single(&mut self, uid: &str, event: &IcsComponent) -> PlanItem {
        let mut notes = Vec::new();
        let title = self.title(event, &mut notes);
        let action = match self.draft(event, &title, &mut notes) {
            Ok(draft) => PlanAction::Schedule {
                draft,
                moved: Vec::new(),
            },
            Err(reason) => PlanAction::Skip {
                reason: format!("invalid event {uid}: {reason}"),
            },
        };
        ignored_properties(event, &mut notes);
        PlanItem {
            uid: uid.to_string(),
            title,
            action,
            notes,
        }
    }

    fn draft(
        &mut self,
        event: &IcsComponent,
        title: &str,
        notes: &mut Vec<String>,
    ) -> Result<EventDraft, String> {
        let times = self.times(event, notes)?;
        let description = description(event, notes);
        let visibility = self.visibility(event, notes);
        let recurrence = match event.first("RRULE") {
            Some(rule) => Some(self.recurrence(event, &rule.value, &times, notes)?),
            None => None,
        };
        Ok(EventDraft {
            title: title.to_string(),
            description,
            start: times.start,
            zone: times.zone.name().to_string(),
            duration_minutes: times.duration_minutes,
            visibility,
            recurrence,
            timing: times.timing,
        })
    }

    fn title(&self, event: &IcsComponent, notes: &mut Vec<String>) -> String {
        let summary = event.value("SUMMARY").unwrap_or("");
        // Titles are one line: line breaks and tabs become spaces.
        let cleaned: String = summary
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let cleaned = cleaned.trim();
        if cleaned.is_empty() {
            notes.push(format!("no SUMMARY, so the title is \"{UNTITLED}\""));
            return UNTITLED.to_string();
        }
        if cleaned != summary.trim() {
            notes.push("line breaks in the SUMMARY became spaces in the title".into());
        }
        let chars = cleaned.chars().count();
        if chars > MAX_TITLE_CHARS {
            notes.push(format!(
                "the SUMMARY has {chars} characters, so the title keeps the first {MAX_TITLE_CHARS}"
            ));
            return cleaned.chars().take(MAX_TITLE_CHARS).collect();
        }
        cleaned.to_string()
    }

    fn visibility(&self, event: &IcsComponent, notes: &mut Vec<String>) -> Visibility {
        let public = event
            .value("CLASS")
            .is_some_and(|class| class.eq_ignore_ascii_case("PUBLIC"));
        if public {
            return Visibility::Public;
        }
        let mut guests: Vec<String> = Vec::new();
        for attendee in event.all("ATTENDEE") {
            let address = attendee.value.trim();
            let address = address
                .strip_prefix("mailto:")
                .or_else(|| address.strip_prefix("MAILTO:"))
                .unwrap_or(address);
            let local_part = address.split('@').next().unwrap_or(address);
            let candidates = [attendee.param("CN").unwrap_or(""), address, local_part];
            let found = candidates
                .iter()
                .find_map(|name| self.users.get(&name.trim().to_lowercase()));
            match found {
                Some(user) if user.eq_ignore_ascii_case(&self.options.username) => {}
                Some(user) => {
                    if !guests.contains(user) {
                        guests.push(user.clone());
                    }
                }
                None => notes.push(format!(
                    "attendee {address} is not an Almanac user and was not invited"
                )),
            }
        }
        Visibility::Private { guests }
    }
}

fn push_once(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

fn description(event: &IcsComponent, notes: &mut Vec<String>) -> String {
    let text = event.value("DESCRIPTION").unwrap_or("");
    let cleaned: String = text
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect();
    let chars = cleaned.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        push_once(
            notes,
            format!(
                "the DESCRIPTION has {chars} characters, so the first \
                 {MAX_DESCRIPTION_CHARS} were kept"
            ),
        );
        return cleaned.chars().take(MAX_DESCRIPTION_CHARS).collect();
    }
    cleaned
}

fn ignored_properties(event: &IcsComponent, notes: &mut Vec<String>) {
    let mut ignored: Vec<&str> = event
        .properties
        .iter()
        .map(|property| property.name.as_str())
        .filter(|name| !HANDLED_PROPERTIES.contains(name))
        .collect();
    ignored.extend(event.children.iter().map(|child| child.name.as_str()));
    ignored.sort_unstable();
    ignored.dedup();
    if !ignored.is_empty() {
        notes.push(format!(
            "ignored unsupported properties: {}",
            ignored.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ical::read::read_file;

    fn options() -> ImportOptions {
        ImportOptions {
            username: "alice".into(),
            user_zone: chrono_tz::Europe::Berlin,
            users: vec!["alice".into(), "bob".into()],
            lenient: false,
        }
    }

    fn calendar(events: &str) -> Vec<u8> {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{events}END:VCALENDAR\r\n").into_bytes()
    }

    fn plan_of(events: &str) -> ImportPlan {
        plan_import(&read_file(&calendar(events)).unwrap(), &options())
    }

    fn draft_of(item: &PlanItem) -> &EventDraft {
        match &item.action {
            PlanAction::Schedule { draft, .. } => draft,
            PlanAction::Skip { reason } => panic!("{} was skipped: {reason}", item.uid),
        }
    }

    #[test]
    fn title_is_one_line_and_bounded() {
        let long = "x".repeat(MAX_TITLE_CHARS + 5);
        let plan = plan_of(&format!(
            "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:one\\ntwo\r\nDTSTART:20250101T100000Z\r\n\
             END:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\nSUMMARY:{long}\r\n\
             DTSTART:20250102T100000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:c\r\n\
             DTSTART:20250103T100000Z\r\nEND:VEVENT\r\n"
        ));
        assert_eq!(draft_of(&plan.items[0]).title, "one two");
        assert_eq!(
            draft_of(&plan.items[1]).title.chars().count(),
            MAX_TITLE_CHARS
        );
        assert_eq!(draft_of(&plan.items[2]).title, UNTITLED);
    }

    #[test]
    fn missing_dtstart_is_skipped() {
        let plan = plan_of("BEGIN:VEVENT\r\nUID:x\r\nSUMMARY:No start\r\nEND:VEVENT\r\n");
        let PlanAction::Skip { reason } = &plan.items[0].action else {
            panic!("planned without DTSTART");
        };
        assert_eq!(reason, "invalid event x: it has no DTSTART");
    }

    #[test]
    fn end_before_start_is_skipped() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T100000Z\r\n\
             DTEND:20250101T090000Z\r\nEND:VEVENT\r\n",
        );
        let PlanAction::Skip { reason } = &plan.items[0].action else {
            panic!("planned with its end before its start");
        };
        assert!(reason.contains("ends before it starts"), "{reason}");
    }

    #[test]
    fn overlong_event_is_skipped() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:P15D\r\nEND:VEVENT\r\n",
        );
        let PlanAction::Skip { reason } = &plan.items[0].action else {
            panic!("planned a 15-day event");
        };
        assert!(reason.contains("longer than the 20160 minutes"), "{reason}");
    }

    #[test]
    fn out_of_range_times_are_skipped() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:P999999999W\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:y\r\nDTSTART;VALUE=DATE:99991231\r\nEND:VEVENT\r\n",
        );
        let reasons: Vec<&str> = plan
            .items
            .iter()
            .map(|item| match &item.action {
                PlanAction::Skip { reason } => reason.as_str(),
                PlanAction::Schedule { .. } => panic!("{} was planned", item.uid),
            })
            .collect();
        assert!(
            reasons[0].contains("DURATION P999999999W"),
            "{}",
            reasons[0]
        );
        assert!(reasons[1].contains("invalid start"), "{}", reasons[1]);
    }

    #[test]
    fn invalid_rule_is_skipped() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250101T100000Z\r\n\
             RRULE:FREQ=HOURLY\r\nEND:VEVENT\r\n",
        );
        let PlanAction::Skip { reason } = &plan.items[0].action else {
            panic!("planned an hourly rule");
        };
        assert!(reason.contains("FREQ=HOURLY is not supported"), "{reason}");
    }

    #[test]
    fn public_class_and_private_default() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:p\r\nCLASS:PUBLIC\r\nDTSTART:20250101T100000Z\r\n\
             END:VEVENT\r\nBEGIN:VEVENT\r\nUID:q\r\nDTSTART:20250102T100000Z\r\n\
             END:VEVENT\r\n",
        );
        assert_eq!(draft_of(&plan.items[0]).visibility, Visibility::Public);
        assert_eq!(
            draft_of(&plan.items[1]).visibility,
            Visibility::Private { guests: Vec::new() }
        );
    }

    #[test]
    fn cancelled_override_becomes_exception() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID:20250102T100000Z\r\nSTATUS:CANCELLED\r\n\
             DTSTART:20250102T100000Z\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Daily\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:PT30M\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n",
        );
        assert_eq!(plan.items.len(), 1);
        let draft = draft_of(&plan.items[0]);
        let recurrence = draft.recurrence.as_ref().unwrap();
        assert_eq!(recurrence.exceptions, vec![draft.start + 24 * 60]);
    }

    #[test]
    fn stray_exdate_is_dropped() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Daily\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:PT30M\r\nRRULE:FREQ=DAILY;COUNT=3\r\n\
             EXDATE:20250102T110000Z,20250103T100000Z\r\nEND:VEVENT\r\n",
        );
        let draft = draft_of(&plan.items[0]);
        let recurrence = draft.recurrence.as_ref().unwrap();
        assert_eq!(recurrence.exceptions, vec![draft.start + 2 * 24 * 60]);
        assert!(plan.items[0]
            .notes
            .iter()
            .any(|note| note.starts_with("1 EXDATE(s) or cancelled occurrence(s)")));
    }

    #[test]
    fn stray_override_becomes_one_off() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Daily\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:PT30M\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID:20250110T100000Z\r\n\
             SUMMARY:Extra\r\nDTSTART:20250110T120000Z\r\nDURATION:PT30M\r\n\
             END:VEVENT\r\n",
        );
        assert_eq!(plan.items.len(), 2);
        let PlanAction::Schedule { moved, .. } = &plan.items[0].action else {
            panic!("the series was skipped");
        };
        assert!(moved.is_empty());
        let extra = draft_of(&plan.items[1]);
        assert_eq!(extra.title, "Extra");
        assert!(extra.recurrence.is_none());
        assert_eq!(
            extra.start,
            draft_of(&plan.items[0]).start + 9 * 24 * 60 + 120
        );
        assert!(plan.items[1].notes[0].contains("names no occurrence of the series"));
    }

    #[test]
    fn override_without_summary_keeps_title() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:s\r\nSUMMARY:Daily\r\nDTSTART:20250101T100000Z\r\n\
             DURATION:PT30M\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:s\r\nRECURRENCE-ID:20250102T100000Z\r\n\
             DTSTART:20250102T150000\r\nDURATION:PT30M\r\nEND:VEVENT\r\n",
        );
        let PlanAction::Schedule { moved, .. } = &plan.items[0].action else {
            panic!("the series was skipped");
        };
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].changes.title, None);
        assert_eq!(moved[0].changes.description, None);
        // 15:00 floating in Berlin is 14:00Z, four hours after the 10:00Z slot.
        let start = draft_of(&plan.items[0]).start;
        assert_eq!(moved[0].changes.start, Some(start + 24 * 60 + 4 * 60));
        assert!(plan.items[0]
            .notes
            .iter()
            .any(|note| note.contains("with conflicts checked in your zone Europe/Berlin")));
    }

    #[test]
    fn duplicate_masters_are_noted() {
        let plan = plan_of(
            "BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20250101T100000Z\r\nEND:VEVENT\r\n\
             BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20250101T100000Z\r\nEND:VEVENT\r\n",
        );
        assert_eq!(plan.items.len(), 1);
        assert!(plan.items[0]
            .notes
            .iter()
            .any(|note| note.contains("1 more VEVENT(s) with this UID")));
    }

    #[test]
    fn schedule_command_names_caller() {
        let plan = plan_of("BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20250101T100000Z\r\nEND:VEVENT\r\n");
        let Some(Command::Schedule { caller, draft }) = plan.items[0].schedule_command("alice")
        else {
            panic!("no schedule command");
        };
        assert_eq!(caller, "alice");
        assert_eq!(&draft, draft_of(&plan.items[0]));
    }

    /// A generated file of 20,000 events: one-off events in several zones
    /// and weekly series with a moved occurrence each. Only the result is
    /// checked; the planner's O(n log n) grouping keeps it fast.
    #[test]
    fn planner_handles_20k_events() {
        const EVENTS: usize = 20_000;
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "W. Europe Standard Time",
        ];
        let mut text = String::new();

        for index in 0..EVENTS {
            let zone = zones[index % zones.len()];
            let day = 1 + index % 28;
            let month = 1 + (index / 28) % 12;
            let year = 2025 + index / (28 * 12);
            let start = format!("{year}{month:02}{day:02}T{:02}0000", 8 + index % 10);
            if index % 10 == 0 {
                text.push_str(&format!(
                    "BEGIN:VEVENT\r\nUID:s{index}\r\nRECURRENCE-ID;TZID={zone}:{start}\r\n\
                     SUMMARY:Moved {index}\r\nDTSTART;TZID={zone}:{start}\r\n\
                     DURATION:PT45M\r\nEND:VEVENT\r\n\
                     BEGIN:VEVENT\r\nUID:s{index}\r\nSUMMARY:Series {index}\r\n\
                     DTSTART;TZID={zone}:{start}\r\nDURATION:PT30M\r\n\
                     RRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\n"
                ));
            } else {
                text.push_str(&format!(
                    "BEGIN:VEVENT\r\nUID:e{index}\r\nSUMMARY:Event {index}\r\n\
                     DTSTART;TZID={zone}:{start}\r\nDURATION:PT30M\r\nEND:VEVENT\r\n"
                ));
            }
        }

        let file = read_file(&calendar(&text)).unwrap();
        assert_eq!(file.events.len(), EVENTS + EVENTS / 10);

        let plan = plan_import(&file, &options());
        assert_eq!(plan.items.len(), EVENTS);
        assert_eq!(plan.scheduled_count(), EVENTS);

        let moved: usize = plan
            .items
            .iter()
            .map(|item| match &item.action {
                PlanAction::Schedule { moved, .. } => moved.len(),
                PlanAction::Skip { .. } => 0,
            })
            .sum();
        assert_eq!(moved, EVENTS / 10);
        assert_eq!(draft_of(&plan.items[2]).zone, "Europe/Berlin");
    }
}
