//! The client's calls for responses, working hours, free time and history.

use super::operations::{read_ack, set_request_id, Reply};
use super::{Client, ClientError};
use crate::calendar::{FreeQuery, HistoryEntry, Response, TimeSlot, UnixMinute, WorkingHours};
use crate::rpc::calendar_capnp::{history_result, slots_result};
use crate::rpc::convert::read_rejection;
use crate::rpc::convert_planning;

fn read_slots(reader: slots_result::Reader<'_>) -> Reply<Vec<TimeSlot>> {
    Ok(match reader.which()? {
        slots_result::Ok(list) => Ok(convert_planning::read_slots(list?)?),
        slots_result::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

fn read_history(reader: history_result::Reader<'_>) -> Reply<Vec<HistoryEntry>> {
    Ok(match reader.which()? {
        history_result::Ok(list) => Ok(convert_planning::read_history(list?)?),
        history_result::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

impl Client {
    /// Responds to an invitation as the logged-in guest.
    pub async fn respond(&mut self, event_id: u64, response: Response) -> Result<(), ClientError> {
        self.respond_at(event_id, response, None).await
    }

    /// Responds to an invitation as the logged-in guest, with
    /// `occurrence_start` to the occurrence of a series with that original
    /// start only.
    pub async fn respond_at(
        &mut self,
        event_id: u64,
        response: Response,
        occurrence_start: Option<UnixMinute>,
    ) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.respond_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_event_id(event_id);
            request
                .get()
                .set_response(convert_planning::to_wire_response(response));
            request.get().set_has_occurrence(occurrence_start.is_some());
            request
                .get()
                .set_occurrence_start(occurrence_start.unwrap_or(0));
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn set_working_hours(&mut self, hours: &WorkingHours) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.set_working_hours_request();
            set_request_id(request.get().init_request_id(), id);
            convert_planning::write_working_hours(request.get().init_hours(), hours);
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn free_slots(&mut self, query: &FreeQuery) -> Result<Vec<TimeSlot>, ClientError> {
        self.with_session(|session| {
            let mut request = session.free_slots_request();
            convert_planning::write_free_query(request.get().init_query(), query);
            async move { read_slots(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    /// Proposes meeting slots for the logged-in user and `query.users`.
    pub async fn suggest(&mut self, query: &FreeQuery) -> Result<Vec<TimeSlot>, ClientError> {
        self.with_session(|session| {
            let mut request = session.suggest_request();
            convert_planning::write_free_query(request.get().init_query(), query);
            async move { read_slots(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn history(&mut self, event_id: u64) -> Result<Vec<HistoryEntry>, ClientError> {
        self.with_session(|session| {
            let mut request = session.history_request();
            request.get().set_event_id(event_id);
            async move { read_history(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }
}
