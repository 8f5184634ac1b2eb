//! Conversions for responses, working hours, free time and history between the
//! calendar's Rust types and the schema's structs.

use crate::calendar::{
    Change, FieldChange, FreeQuery, GuestResponse, HistoryEntry, Response, TimeSlot, WorkingHours,
};
use crate::rpc::calendar_capnp::Response as WireResponse;
use crate::rpc::calendar_capnp::{
    field_change, free_query, guest_response, history_entry, time_slot, working_hours,
};

fn text(reader: capnp::Result<capnp::text::Reader<'_>>) -> capnp::Result<String> {
    Ok(reader?.to_str()?.to_owned())
}

pub fn to_wire_response(value: Response) -> WireResponse {
    match value {
        Response::NeedsAction => WireResponse::NeedsAction,
        Response::Accepted => WireResponse::Accepted,
        Response::Tentative => WireResponse::Tentative,
        Response::Declined => WireResponse::Declined,
    }
}

pub fn from_wire_response(value: WireResponse) -> Response {
    match value {
        WireResponse::NeedsAction => Response::NeedsAction,
        WireResponse::Accepted => Response::Accepted,
        WireResponse::Tentative => Response::Tentative,
        WireResponse::Declined => Response::Declined,
    }
}

pub fn write_responses(
    mut builder: capnp::struct_list::Builder<'_, guest_response::Owned>,
    values: &[GuestResponse],
) {
    for (index, value) in values.iter().enumerate() {
        let mut entry = builder.reborrow().get(index as u32);
        entry.set_guest(value.guest.as_str());
        entry.set_response(to_wire_response(value.response));
        entry.set_has_occurrence(value.occurrence.is_some());
        entry.set_occurrence_start(value.occurrence.unwrap_or(0));
    }
}

pub fn read_responses(
    reader: capnp::struct_list::Reader<'_, guest_response::Owned>,
) -> capnp::Result<Vec<GuestResponse>> {
    let read = |entry: guest_response::Reader<'_>| {
        Ok(GuestResponse {
            guest: text(entry.get_guest())?,
            response: from_wire_response(entry.get_response()?),
            occurrence: entry
                .get_has_occurrence()
                .then(|| entry.get_occurrence_start()),
        })
    };
    reader.iter().map(read).collect()
}

pub fn write_working_hours(mut builder: working_hours::Builder<'_>, value: &WorkingHours) {
    builder.set_start_minute(value.start_minute);
    builder.set_end_minute(value.end_minute);
    builder.set_weekdays(value.weekdays);
    builder.set_zone(value.zone.as_str());
}

pub fn read_working_hours(reader: working_hours::Reader<'_>) -> capnp::Result<WorkingHours> {
    Ok(WorkingHours {
        start_minute: reader.get_start_minute(),
        end_minute: reader.get_end_minute(),
        weekdays: reader.get_weekdays(),
        zone: text(reader.get_zone())?,
    })
}

pub fn write_free_query(mut builder: free_query::Builder<'_>, value: &FreeQuery) {
    let mut users = builder.reborrow().init_users(value.users.len() as u32);
    for (index, user) in value.users.iter().enumerate() {
        users.set(index as u32, user.as_str());
    }
    builder.set_from(value.from);
    builder.set_to(value.to);
    builder.set_min_minutes(value.min_minutes);
    builder.set_default_zone(value.default_zone.as_str());
}

pub fn read_free_query(reader: free_query::Reader<'_>) -> capnp::Result<FreeQuery> {
    let users = reader
        .get_users()?
        .iter()
        .map(text)
        .collect::<capnp::Result<_>>()?;
    Ok(FreeQuery {
        users,
        from: reader.get_from(),
        to: reader.get_to(),
        min_minutes: reader.get_min_minutes(),
        default_zone: text(reader.get_default_zone())?,
    })
}

pub fn write_slots(
    mut builder: capnp::struct_list::Builder<'_, time_slot::Owned>,
    values: &[TimeSlot],
) {
    for (index, value) in values.iter().enumerate() {
        let mut slot = builder.reborrow().get(index as u32);
        slot.set_start(value.start);
        slot.set_end(value.end);
    }
}

pub fn read_slots(
    reader: capnp::struct_list::Reader<'_, time_slot::Owned>,
) -> capnp::Result<Vec<TimeSlot>> {
    let read = |slot: time_slot::Reader<'_>| TimeSlot {
        start: slot.get_start(),
        end: slot.get_end(),
    };
    Ok(reader.iter().map(read).collect())
}

pub fn write_history(
    mut builder: capnp::struct_list::Builder<'_, history_entry::Owned>,
    values: &[HistoryEntry],
) {
    for (index, value) in values.iter().enumerate() {
        let mut entry = builder.reborrow().get(index as u32);
        entry.set_at_ms(value.at_ms);
        entry.set_actor(value.actor.as_str());
        entry.set_has_occurrence(value.occurrence.is_some());
        entry.set_occurrence_start(value.occurrence.unwrap_or(0));
        let mut change = entry.init_change();
        match &value.change {
            Change::Created => change.set_created(()),
            Change::Edited { fields } => {
                let mut list = change.init_edited(fields.len() as u32);
                for (position, field) in fields.iter().enumerate() {
                    write_field_change(list.reborrow().get(position as u32), field);
                }
            }
            Change::Responded { response } => change.set_responded(to_wire_response(*response)),
            Change::GuestRemoved { guest } => change.set_guest_removed(guest.as_str()),
        }
    }
}

fn write_field_change(mut builder: field_change::Builder<'_>, value: &FieldChange) {
    builder.set_field(value.field.as_str());
    builder.set_before(value.before.as_str());
    builder.set_after(value.after.as_str());
}

fn read_field_change(reader: field_change::Reader<'_>) -> capnp::Result<FieldChange> {
    Ok(FieldChange {
        field: text(reader.get_field())?,
        before: text(reader.get_before())?,
        after: text(reader.get_after())?,
    })
}

pub fn read_history(
    reader: capnp::struct_list::Reader<'_, history_entry::Owned>,
) -> capnp::Result<Vec<HistoryEntry>> {
    let read = |entry: history_entry::Reader<'_>| {
        use history_entry::change;
        let change = match entry.get_change().which()? {
            change::Created(()) => Change::Created,
            change::Edited(fields) => Change::Edited {
                fields: fields?
                    .iter()
                    .map(read_field_change)
                    .collect::<capnp::Result<_>>()?,
            },
            change::Responded(response) => Change::Responded {
                response: from_wire_response(response?),
            },
            change::GuestRemoved(guest) => Change::GuestRemoved {
                guest: text(guest)?,
            },
        };
        Ok(HistoryEntry {
            at_ms: entry.get_at_ms(),
            actor: text(entry.get_actor())?,
            change,
            occurrence: entry
                .get_has_occurrence()
                .then(|| entry.get_occurrence_start()),
        })
    };
    reader.iter().map(read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_round_trip_with_occurrence() {
        let responses = vec![
            GuestResponse {
                guest: "bob".into(),
                response: Response::Accepted,
                occurrence: None,
            },
            GuestResponse {
                guest: "bob".into(),
                response: Response::Declined,
                occurrence: Some(29_993_760),
            },
            // An original start of 0 still names an occurrence.
            GuestResponse {
                guest: "carol".into(),
                response: Response::Tentative,
                occurrence: Some(0),
            },
        ];
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<crate::rpc::calendar_capnp::event::Builder<'_>>();
        write_responses(
            root.reborrow().init_responses(responses.len() as u32),
            &responses,
        );
        let reader = root.into_reader();
        assert_eq!(
            read_responses(reader.get_responses().unwrap()).unwrap(),
            responses
        );
    }

    #[test]
    fn history_round_trips() {
        let entries = vec![
            HistoryEntry {
                occurrence: None,
                at_ms: 5,
                actor: "alice".into(),
                change: Change::Created,
            },
            HistoryEntry {
                occurrence: None,
                at_ms: 6,
                actor: "alice".into(),
                change: Change::Edited {
                    fields: vec![FieldChange {
                        field: "title".into(),
                        before: "A".into(),
                        after: "B".into(),
                    }],
                },
            },
            HistoryEntry {
                occurrence: None,
                at_ms: 7,
                actor: "bob".into(),
                change: Change::Responded {
                    response: Response::Tentative,
                },
            },
            HistoryEntry {
                occurrence: None,
                at_ms: 8,
                actor: "bob".into(),
                change: Change::GuestRemoved {
                    guest: "bob".into(),
                },
            },
        ];
        let mut message = capnp::message::Builder::new_default();
        let mut root =
            message.init_root::<crate::rpc::calendar_capnp::history_result::Builder<'_>>();
        write_history(root.reborrow().init_ok(entries.len() as u32), &entries);
        let reader = root.into_reader();
        let crate::rpc::calendar_capnp::history_result::Ok(list) = reader.which().unwrap() else {
            panic!("the result is not ok");
        };
        assert_eq!(read_history(list.unwrap()).unwrap(), entries);
    }

    #[test]
    fn free_query_and_hours_round_trip() {
        let query = FreeQuery {
            users: vec!["bob".into(), "carol".into()],
            from: 10,
            to: 500,
            min_minutes: 30,
            default_zone: "Europe/Paris".into(),
        };
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<free_query::Builder<'_>>();
        write_free_query(root.reborrow(), &query);
        assert_eq!(read_free_query(root.into_reader()).unwrap(), query);

        let hours = WorkingHours::standard("UTC");
        let mut message = capnp::message::Builder::new_default();
        let mut root = message.init_root::<working_hours::Builder<'_>>();
        write_working_hours(root.reborrow(), &hours);
        assert_eq!(read_working_hours(root.into_reader()).unwrap(), hours);
    }
}
