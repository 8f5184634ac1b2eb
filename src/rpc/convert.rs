//! Conversions between the calendar's Rust types and the schema's structs.
//!
//! Readers validate what a peer sent: a missing or malformed field becomes a
//! `capnp::Error`, which closes nothing but that call.

use crate::calendar::{
    BusySlot, EventBrief, EventChanges, EventDraft, EventView, Notification, NotificationKind,
    OccurrenceOf, OccurrenceOverride, Recurrence, Rejection, SearchQuery, Timing, Visibility,
};
use crate::rpc::calendar_capnp::{
    busy_slot, event, event_changes, event_draft, notification, occurrence_override, recurrence,
    rejection, search_query, visibility, Timing as WireTiming,
};
use crate::rpc::convert_planning;

/// Every way a client call can be turned down: the calendar's own rejections,
/// and those of the node that served the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiRejection {
    #[error("{0}")]
    Calendar(Rejection),
    #[error("this node is not the primary (view {view}); the primary is {}", display_address(.primary_address))]
    NotPrimary { primary_address: String, view: u64 },
    #[error("the cluster cannot serve this now: {0}; retry shortly")]
    Unavailable(String),
    #[error("not logged in: {0}; log in again")]
    Unauthenticated(String),
    #[error("wrong username or password")]
    WrongPassword,
}

fn display_address(address: &str) -> &str {
    if address.is_empty() {
        "not known yet"
    } else {
        address
    }
}

impl From<Rejection> for ApiRejection {
    fn from(rejection: Rejection) -> Self {
        ApiRejection::Calendar(rejection)
    }
}

fn text(reader: capnp::Result<capnp::text::Reader<'_>>) -> capnp::Result<String> {
    Ok(reader?.to_str()?.to_owned())
}

fn text_list(reader: capnp::text_list::Reader<'_>) -> capnp::Result<Vec<String>> {
    reader.iter().map(text).collect()
}

fn set_text_list(mut builder: capnp::text_list::Builder<'_>, items: &[String]) {
    for (index, item) in items.iter().enumerate() {
        builder.set(index as u32, item.as_str());
    }
}

pub fn write_visibility(mut builder: visibility::Builder<'_>, value: &Visibility) {
    match value {
        Visibility::Public => builder.set_public(()),
        Visibility::Private { guests } => {
            set_text_list(builder.init_private(guests.len() as u32), guests);
        }
    }
}

pub fn read_visibility(reader: visibility::Reader<'_>) -> capnp::Result<Visibility> {
    Ok(match reader.which()? {
        visibility::Public(()) => Visibility::Public,
        visibility::Private(guests) => Visibility::Private {
            guests: text_list(guests?)?,
        },
    })
}

pub fn write_event(mut builder: event::Builder<'_>, value: &EventView) {
    builder.set_id(value.id);
    builder.set_version(value.version);
    builder.set_title(value.title.as_str());
    builder.set_description(value.description.as_str());
    builder.set_start(value.start);
    builder.set_duration_minutes(value.duration_minutes);
    builder.set_zone(value.zone.as_str());
    builder.set_host(value.host.as_str());
    write_visibility(builder.reborrow().init_visibility(), &value.visibility);
    if let Some(recurrence) = &value.recurrence {
        write_recurrence(builder.reborrow().init_recurrence(), recurrence);
    }
    let (timing, label) = wire_timing(&value.timing);
    builder.set_timing(timing);
    builder.set_tzid_label(label);
    let responses = builder.init_responses(value.responses.len() as u32);
    convert_planning::write_responses(responses, &value.responses);
}

/// Splits a `Timing` into the schema's enum and its TZID text, which is
/// empty unless the timing is `Labelled`.
fn wire_timing(value: &Timing) -> (WireTiming, &str) {
    match value {
        Timing::Zoned => (WireTiming::Zoned, ""),
        Timing::Labelled { tzid } => (WireTiming::Zoned, tzid),
        Timing::Floating => (WireTiming::Floating, ""),
        Timing::AllDay => (WireTiming::AllDay, ""),
    }
}

/// Joins the schema's timing enum and TZID text; a TZID text is only
/// accepted with zoned timing.
fn read_timing(
    timing: Result<WireTiming, capnp::NotInSchema>,
    label: capnp::Result<capnp::text::Reader<'_>>,
) -> capnp::Result<Timing> {
    let label = text(label)?;
    let timing = timing.map_err(|error| {
        capnp::Error::failed(format!(
            "invalid timing: enumerant {} is not in the schema; send zoned, floating or allDay",
            error.0
        ))
    })?;
    match (timing, label.is_empty()) {
        (WireTiming::Zoned, true) => Ok(Timing::Zoned),
        (WireTiming::Zoned, false) => Ok(Timing::Labelled { tzid: label }),
        (WireTiming::Floating, true) => Ok(Timing::Floating),
        (WireTiming::AllDay, true) => Ok(Timing::AllDay),
        (other, false) => {
            let kind = match other {
                WireTiming::Floating => "floating",
                _ => "allDay",
            };
            Err(capnp::Error::failed(format!(
                "invalid tzidLabel {label:?}: a TZID text is only kept for zoned events, \
                 not {kind} ones; send an empty tzidLabel"
            )))
        }
    }
}

pub fn read_event(reader: event::Reader<'_>) -> capnp::Result<EventView> {
    Ok(EventView {
        id: reader.get_id(),
        version: reader.get_version(),
        title: text(reader.get_title())?,
        description: text(reader.get_description())?,
        start: reader.get_start(),
        duration_minutes: reader.get_duration_minutes(),
        zone: text(reader.get_zone())?,
        host: text(reader.get_host())?,
        visibility: read_visibility(reader.get_visibility()?)?,
        recurrence: match reader.has_recurrence() {
            true => Some(Box::new(read_recurrence(reader.get_recurrence()?)?)),
            false => None,
        },
        responses: convert_planning::read_responses(reader.get_responses()?)?,
        timing: read_timing(reader.get_timing(), reader.get_tzid_label())?,
    })
}

pub fn write_events(
    mut builder: capnp::struct_list::Builder<'_, event::Owned>,
    events: &[EventView],
) {
    for (index, value) in events.iter().enumerate() {
        write_event(builder.reborrow().get(index as u32), value);
    }
}

pub fn read_events(
    reader: capnp::struct_list::Reader<'_, event::Owned>,
) -> capnp::Result<Vec<EventView>> {
    reader.iter().map(read_event).collect()
}

pub fn write_draft(mut builder: event_draft::Builder<'_>, value: &EventDraft) {
    builder.set_title(value.title.as_str());
    builder.set_description(value.description.as_str());
    builder.set_start(value.start);
    builder.set_zone(value.zone.as_str());
    builder.set_duration_minutes(value.duration_minutes);
    write_visibility(builder.reborrow().init_visibility(), &value.visibility);
    if let Some(recurrence) = &value.recurrence {
        write_recurrence(builder.reborrow().init_recurrence(), recurrence);
    }
    let (timing, label) = wire_timing(&value.timing);
    builder.set_timing(timing);
    builder.set_tzid_label(label);
}

pub fn read_draft(reader: event_draft::Reader<'_>) -> capnp::Result<EventDraft> {
    Ok(EventDraft {
        title: text(reader.get_title())?,
        description: text(reader.get_description())?,
        start: reader.get_start(),
        zone: text(reader.get_zone())?,
        duration_minutes: reader.get_duration_minutes(),
        visibility: read_visibility(reader.get_visibility()?)?,
        recurrence: match reader.has_recurrence() {
            true => Some(read_recurrence(reader.get_recurrence()?)?),
            false => None,
        },
        timing: read_timing(reader.get_timing(), reader.get_tzid_label())?,
    })
}

pub fn write_changes(builder: event_changes::Builder<'_>, value: &EventChanges) {
    let mut builder = builder;
    match &value.title {
        Some(title) => builder.reborrow().init_title().set_set(title.as_str()),
        None => builder.reborrow().init_title().set_keep(()),
    }
    match &value.description {
        Some(description) => builder
            .reborrow()
            .init_description()
            .set_set(description.as_str()),
        None => builder.reborrow().init_description().set_keep(()),
    }
    match value.start {
        Some(start) => builder.reborrow().init_start().set_set(start),
        None => builder.reborrow().init_start().set_keep(()),
    }
    match &value.zone {
        Some(zone) => builder.reborrow().init_zone().set_set(zone.as_str()),
        None => builder.reborrow().init_zone().set_keep(()),
    }
    match value.duration_minutes {
        Some(minutes) => builder.reborrow().init_duration_minutes().set_set(minutes),
        None => builder.reborrow().init_duration_minutes().set_keep(()),
    }
    match &value.visibility {
        Some(visibility) => write_visibility(builder.init_visibility().init_set(), visibility),
        None => builder.init_visibility().set_keep(()),
    }
}

pub fn read_changes(reader: event_changes::Reader<'_>) -> capnp::Result<EventChanges> {
    use event_changes::{description, duration_minutes, start, title, visibility, zone};
    Ok(EventChanges {
        title: match reader.get_title().which()? {
            title::Keep(()) => None,
            title::Set(value) => Some(text(value)?),
        },
        description: match reader.get_description().which()? {
            description::Keep(()) => None,
            description::Set(value) => Some(text(value)?),
        },
        start: match reader.get_start().which()? {
            start::Keep(()) => None,
            start::Set(value) => Some(value),
        },
        zone: match reader.get_zone().which()? {
            zone::Keep(()) => None,
            zone::Set(value) => Some(text(value)?),
        },
        duration_minutes: match reader.get_duration_minutes().which()? {
            duration_minutes::Keep(()) => None,
            duration_minutes::Set(value) => Some(value),
        },
        visibility: match reader.get_visibility().which()? {
            visibility::Keep(()) => None,
            visibility::Set(value) => Some(read_visibility(value?)?),
        },
    })
}

pub fn write_query(mut builder: search_query::Builder<'_>, value: &SearchQuery) {
    builder.set_host(value.host.as_deref().unwrap_or(""));
    builder.set_text(value.text.as_deref().unwrap_or(""));
    builder.set_has_from(value.from.is_some());
    builder.set_from(value.from.unwrap_or(0));
    builder.set_has_to(value.to.is_some());
    builder.set_to(value.to.unwrap_or(0));
}

pub fn read_query(reader: search_query::Reader<'_>) -> capnp::Result<SearchQuery> {
    let non_empty = |value: String| (!value.is_empty()).then_some(value);
    Ok(SearchQuery {
        host: non_empty(text(reader.get_host())?),
        text: non_empty(text(reader.get_text())?),
        from: reader.get_has_from().then_some(reader.get_from()),
        to: reader.get_has_to().then_some(reader.get_to()),
    })
}

pub fn write_notification(mut builder: notification::Builder<'_>, value: &Notification) {
    builder.set_seq(value.seq);
    builder.set_at_ms(value.at_ms);
    builder.set_kind(match value.kind {
        NotificationKind::Invited => notification::Kind::Invited,
        NotificationKind::Changed => notification::Kind::Changed,
        NotificationKind::Cancelled => notification::Kind::Cancelled,
        NotificationKind::RemovedFromGuests => notification::Kind::RemovedFromGuests,
        NotificationKind::Responded => notification::Kind::Responded,
    });
    builder.set_actor(value.actor.as_str());
    write_event(builder.init_event(), &value.event);
}

pub fn read_notification(reader: notification::Reader<'_>) -> capnp::Result<Notification> {
    Ok(Notification {
        seq: reader.get_seq(),
        at_ms: reader.get_at_ms(),
        kind: match reader.get_kind()? {
            notification::Kind::Invited => NotificationKind::Invited,
            notification::Kind::Changed => NotificationKind::Changed,
            notification::Kind::Cancelled => NotificationKind::Cancelled,
            notification::Kind::RemovedFromGuests => NotificationKind::RemovedFromGuests,
            notification::Kind::Responded => NotificationKind::Responded,
        },
        event: read_event(reader.get_event()?)?,
        actor: text(reader.get_actor())?,
    })
}

pub fn write_notifications(
    mut builder: capnp::struct_list::Builder<'_, notification::Owned>,
    values: &[Notification],
) {
    for (index, value) in values.iter().enumerate() {
        write_notification(builder.reborrow().get(index as u32), value);
    }
}

pub fn read_notifications(
    reader: capnp::struct_list::Reader<'_, notification::Owned>,
) -> capnp::Result<Vec<Notification>> {
    reader.iter().map(read_notification).collect()
}

fn write_busy_slot(mut builder: busy_slot::Builder<'_>, value: &BusySlot) {
    builder.set_participant(value.participant.as_str());
    builder.set_start(value.start);
    builder.set_end(value.end);
    match &value.event {
        None => builder.init_event().set_hidden(()),
        Some(brief) => {
            let mut visible = builder.init_event().init_visible();
            visible.set_id(brief.id);
            visible.set_title(brief.title.as_str());
            visible.set_host(brief.host.as_str());
        }
    }
}

fn read_busy_slot(reader: busy_slot::Reader<'_>) -> capnp::Result<BusySlot> {
    let event = match reader.get_event().which()? {
        busy_slot::event::Hidden(()) => None,
        busy_slot::event::Visible(brief) => {
            let brief = brief?;
            Some(EventBrief {
                id: brief.get_id(),
                title: text(brief.get_title())?,
                host: text(brief.get_host())?,
            })
        }
    };
    Ok(BusySlot {
        participant: text(reader.get_participant())?,
        start: reader.get_start(),
        end: reader.get_end(),
        event,
    })
}

pub fn write_rejection(mut builder: rejection::Builder<'_>, value: &ApiRejection) {
    match value {
        ApiRejection::Calendar(rejection) => write_calendar_rejection(builder, rejection),
        ApiRejection::NotPrimary {
            primary_address,
            view,
        } => {
            let mut group = builder.init_not_primary();
            group.set_primary_address(primary_address.as_str());
            group.set_view(*view);
        }
        ApiRejection::Unavailable(reason) => builder.set_unavailable(reason.as_str()),
        ApiRejection::Unauthenticated(reason) => builder.set_unauthenticated(reason.as_str()),
        ApiRejection::WrongPassword => builder.set_wrong_password(()),
    }
}

fn write_calendar_rejection(mut builder: rejection::Builder<'_>, value: &Rejection) {
    match value {
        Rejection::Conflict { slots } => {
            let mut list = builder.init_conflict(slots.len() as u32);
            for (index, slot) in slots.iter().enumerate() {
                write_busy_slot(list.reborrow().get(index as u32), slot);
            }
        }
        Rejection::NotFound { what } => builder.set_not_found(what.as_str()),
        Rejection::Forbidden { reason } => builder.set_forbidden(reason.as_str()),
        Rejection::Invalid { field, message } => {
            let mut group = builder.init_invalid();
            group.set_field(field.as_str());
            group.set_message(message.as_str());
        }
        Rejection::StaleVersion {
            event_id,
            expected,
            current,
        } => {
            let mut group = builder.init_stale_version();
            group.set_event_id(*event_id);
            group.set_expected(*expected);
            group.set_current(*current);
        }
        Rejection::AlreadyExists { what } => builder.set_already_exists(what.as_str()),
        Rejection::StaleRequest { seq, last_seq, .. } => {
            let mut group = builder.init_stale_request();
            group.set_seq(*seq);
            group.set_last_seq(*last_seq);
        }
    }
}

pub fn read_rejection(reader: rejection::Reader<'_>) -> capnp::Result<ApiRejection> {
    use rejection::Which;
    let calendar = |rejection: Rejection| Ok(ApiRejection::Calendar(rejection));
    match reader.which()? {
        Which::Conflict(list) => calendar(Rejection::Conflict {
            slots: list?
                .iter()
                .map(read_busy_slot)
                .collect::<capnp::Result<_>>()?,
        }),
        Which::NotFound(what) => calendar(Rejection::NotFound { what: text(what)? }),
        Which::Forbidden(reason) => calendar(Rejection::Forbidden {
            reason: text(reason)?,
        }),
        Which::Invalid(group) => calendar(Rejection::Invalid {
            field: text(group.get_field())?,
            message: text(group.get_message())?,
        }),
        Which::StaleVersion(group) => calendar(Rejection::StaleVersion {
            event_id: group.get_event_id(),
            expected: group.get_expected(),
            current: group.get_current(),
        }),
        Which::AlreadyExists(what) => calendar(Rejection::AlreadyExists { what: text(what)? }),
        Which::StaleRequest(group) => calendar(Rejection::StaleRequest {
            client_id: 0,
            seq: group.get_seq(),
            last_seq: group.get_last_seq(),
        }),
        Which::NotPrimary(group) => Ok(ApiRejection::NotPrimary {
            primary_address: text(group.get_primary_address())?,
            view: group.get_view(),
        }),
        Which::Unavailable(reason) => Ok(ApiRejection::Unavailable(text(reason)?)),
        Which::Unauthenticated(reason) => Ok(ApiRejection::Unauthenticated(text(reason)?)),
        Which::WrongPassword(()) => Ok(ApiRejection::WrongPassword),
    }
}

pub fn write_recurrence(mut builder: recurrence::Builder<'_>, value: &Recurrence) {
    builder.set_rule(value.rule.as_str());
    let mut exceptions = builder
        .reborrow()
        .init_exceptions(value.exceptions.len() as u32);
    for (index, exception) in value.exceptions.iter().enumerate() {
        exceptions.set(index as u32, *exception);
    }
    let mut overrides = builder
        .reborrow()
        .init_overrides(value.overrides.len() as u32);
    for (index, moved) in value.overrides.iter().enumerate() {
        write_override(overrides.reborrow().get(index as u32), moved);
    }
    let mut occurrence = builder.get_occurrence();
    match value.occurrence {
        None => occurrence.set_series(()),
        Some(of) => {
            let mut instance = occurrence.init_instance();
            instance.set_original_start(of.original_start);
            instance.set_series_start(of.series_start);
        }
    }
}

pub fn read_recurrence(reader: recurrence::Reader<'_>) -> capnp::Result<Recurrence> {
    use recurrence::occurrence;
    let overrides = reader.get_overrides()?;
    Ok(Recurrence {
        rule: text(reader.get_rule())?,
        exceptions: reader.get_exceptions()?.iter().collect(),
        overrides: overrides
            .iter()
            .map(read_override)
            .collect::<capnp::Result<_>>()?,
        occurrence: match reader.get_occurrence().which()? {
            occurrence::Series(()) => None,
            occurrence::Instance(instance) => Some(OccurrenceOf {
                original_start: instance.get_original_start(),
                series_start: instance.get_series_start(),
            }),
        },
    })
}

fn write_override(mut builder: occurrence_override::Builder<'_>, value: &OccurrenceOverride) {
    builder.set_original_start(value.original_start);
    builder.set_start(value.start);
    builder.set_duration_minutes(value.duration_minutes);
    match &value.title {
        Some(title) => builder.reborrow().init_title().set_set(title.as_str()),
        None => builder.reborrow().init_title().set_keep(()),
    }
    match &value.description {
        Some(description) => builder.init_description().set_set(description.as_str()),
        None => builder.init_description().set_keep(()),
    }
}

fn read_override(reader: occurrence_override::Reader<'_>) -> capnp::Result<OccurrenceOverride> {
    use occurrence_override::{description, title};
    Ok(OccurrenceOverride {
        original_start: reader.get_original_start(),
        start: reader.get_start(),
        duration_minutes: reader.get_duration_minutes(),
        title: match reader.get_title().which()? {
            title::Keep(()) => None,
            title::Set(value) => Some(text(value)?),
        },
        description: match reader.get_description().which()? {
            description::Keep(()) => None,
            description::Set(value) => Some(text(value)?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(timing: Timing) -> EventDraft {
        EventDraft {
            title: "Review".into(),
            description: String::new(),
            start: 28_684_050,
            zone: "Europe/Zurich".into(),
            duration_minutes: 30,
            visibility: Visibility::Public,
            recurrence: None,
            timing,
        }
    }

    fn round_trip(value: &EventDraft) -> capnp::Result<EventDraft> {
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<event_draft::Builder<'_>>();
        write_draft(root.reborrow(), value);
        read_draft(root.into_reader())
    }

    #[test]
    fn draft_timing_round_trips() {
        for timing in [
            Timing::Zoned,
            Timing::Floating,
            Timing::AllDay,
            Timing::Labelled {
                tzid: "(UTC+01:00) Zürich, Bern, Genève".into(),
            },
        ] {
            let value = draft(timing);
            assert_eq!(round_trip(&value).unwrap(), value);
        }
    }

    #[test]
    fn event_timing_round_trips() {
        let value = EventView {
            id: 3,
            version: 1,
            title: "Fair".into(),
            description: String::new(),
            start: 29_276_640,
            duration_minutes: 24 * 60,
            zone: "UTC".into(),
            host: "alice".into(),
            visibility: Visibility::Public,
            recurrence: None,
            responses: Vec::new(),
            timing: Timing::AllDay,
        };
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<event::Builder<'_>>();
        write_event(root.reborrow(), &value);
        assert_eq!(read_event(root.into_reader()).unwrap(), value);
    }

    #[test]
    fn tzid_label_needs_zoned_timing() {
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<event_draft::Builder<'_>>();
        write_draft(root.reborrow(), &draft(Timing::Floating));
        root.set_tzid_label("W. Europe Standard Time");
        let error = read_draft(root.into_reader()).unwrap_err().to_string();
        assert!(error.contains("invalid tzidLabel"), "{error}");
        assert!(error.contains("not floating ones"), "{error}");
    }
}
