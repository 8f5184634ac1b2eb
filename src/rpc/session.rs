//! A logged-in user's capability: every calendar operation, with the caller
//! fixed to the user the session was opened for.

use std::cell::Cell;
use std::rc::Rc;

use capnp::capability::Rc as CapRc;
use tokio::sync::oneshot;
use tracing::debug;

use crate::calendar::{Command, Effect, Outcome};
use crate::node::service::Service;
use crate::rpc::calendar_capnp::{ack, event_result, listener, session, subscription};
use crate::rpc::convert::{self, write_rejection, ApiRejection};
use crate::rpc::convert_planning;

/// Calls one session may have in flight at once. Each waiting call keeps
/// its decoded request and a reply slot, so a client that pipelines without
/// waiting must not grow them without bound. The REPL sends one call at a
/// time and a notification subscription returns at once, so 16 leaves room
/// for clients that overlap a few reads with a write.
pub const SESSION_CALLS_IN_FLIGHT_MAX: usize = 16;

/// Largest encoded command a session submits for the log, in bytes (half the
/// log's maximum record size). The client port's message limit keeps
/// requests far below it already. This check keeps a request that slips past
/// that estimate from failing the log write, which would stop the node.
pub const LOGGED_COMMAND_BYTES_MAX: usize = crate::wal::PAYLOAD_BYTES_MAX / 2;

pub struct SessionServer {
    service: Rc<Service>,
    username: String,
    token_digest: [u8; 32],
    /// Calls of this session that started and have not returned.
    in_flight: Rc<Cell<usize>>,
}

/// Counts one call as in flight until dropped.
struct InFlightCall {
    in_flight: Rc<Cell<usize>>,
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        self.in_flight.set(self.in_flight.get() - 1);
    }
}

impl SessionServer {
    pub fn new(service: Rc<Service>, username: String, token_digest: [u8; 32]) -> Self {
        SessionServer {
            service,
            username,
            token_digest,
            in_flight: Rc::new(Cell::new(0)),
        }
    }

    /// Counts a call in flight, or fails with an overloaded error when the
    /// session already has `SESSION_CALLS_IN_FLIGHT_MAX`.
    fn start_call(&self) -> Result<InFlightCall, capnp::Error> {
        let count = self.in_flight.get();
        if count >= SESSION_CALLS_IN_FLIGHT_MAX {
            debug!(node = self.service.replica_id + 1, user = %self.username, count,
                "rejected a call: the session has the maximum number of calls in flight");
            return Err(capnp::Error::overloaded(format!(
                "this session already has {count} calls in flight, the maximum; \
                 wait for their replies before sending more"
            )));
        }
        self.in_flight.set(count + 1);
        Ok(InFlightCall {
            in_flight: self.in_flight.clone(),
        })
    }

    /// Fails unless the session is still open: a logout, an account deletion
    /// or a failover to a node that never saw it closes it.
    fn check_open(&self) -> Result<(), ApiRejection> {
        let calendar = self.service.calendar();
        match calendar.session_user(&self.token_digest) {
            Some(user) if user == self.username => Ok(()),
            _ => Err(ApiRejection::Unauthenticated(
                "this session was closed".into(),
            )),
        }
    }

    async fn write(
        &self,
        request_id: crate::rpc::calendar_capnp::request_id::Reader<'_>,
        command: Command,
    ) -> Result<Effect, ApiRejection> {
        // A backup's copy of the sessions may lag, so only the primary's is
        // checked; a backup redirects before looking.
        self.service.ensure_primary()?;
        self.check_open()?;
        check_command_size(&command)?;
        let outcome = self
            .service
            .submit(request_id.get_client_id(), request_id.get_seq(), command)
            .await?;
        match outcome {
            Outcome::Done(effect) => Ok(effect),
            Outcome::Rejected(rejection) => Err(rejection.into()),
        }
    }

    async fn read<T>(
        &self,
        query: impl FnOnce(&crate::calendar::Calendar, &str) -> Result<T, ApiRejection>,
    ) -> Result<T, ApiRejection> {
        self.service.read_barrier().await?;
        self.check_open()?;
        query(&self.service.calendar(), &self.username)
    }
}

/// Rejects a command whose log record would exceed
/// `LOGGED_COMMAND_BYTES_MAX`.
fn check_command_size(command: &Command) -> Result<(), ApiRejection> {
    let bytes = crate::calendar::types::encode_value(command).len();
    if bytes > LOGGED_COMMAND_BYTES_MAX {
        return Err(ApiRejection::Calendar(
            crate::calendar::Rejection::Invalid {
                field: "request".into(),
                message: format!(
                "the request is {bytes} bytes, more than the maximum {LOGGED_COMMAND_BYTES_MAX}; \
                 send fewer or shorter fields"
            ),
            },
        ));
    }
    Ok(())
}

fn write_ack(builder: ack::Builder<'_>, result: Result<Effect, ApiRejection>) {
    match result {
        Ok(_) => {
            let mut builder = builder;
            builder.set_ok(());
        }
        Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
    }
}

fn write_event_result(builder: event_result::Builder<'_>, result: Result<Effect, ApiRejection>) {
    let ids = match result {
        Ok(Effect::Scheduled { event_id, version }) | Ok(Effect::Edited { event_id, version }) => {
            Ok((event_id, version, None))
        }
        Ok(Effect::SeriesWritten {
            event_id,
            version,
            conflicts_checked_until,
        }) => Ok((event_id, version, conflicts_checked_until)),
        Ok(other) => Err(ApiRejection::Unavailable(format!(
            "unexpected outcome of an event write: {other:?}"
        ))),
        Err(rejection) => Err(rejection),
    };
    match ids {
        Ok((event_id, version, checked_until)) => {
            let mut ok = builder.init_ok();
            ok.set_event_id(event_id);
            ok.set_version(version);
            ok.set_conflicts_checked_until(checked_until.unwrap_or(0));
        }
        Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
    }
}

impl session::Server for SessionServer {
    async fn username(
        self: CapRc<Self>,
        _params: session::UsernameParams,
        mut results: session::UsernameResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        results.get().set_username(self.username.as_str());
        Ok(())
    }

    async fn logout(
        self: CapRc<Self>,
        params: session::LogoutParams,
        mut results: session::LogoutResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let request_id = params.get()?.get_request_id()?;
        let command = Command::CloseSession {
            token_digest: self.token_digest,
        };
        let result = self.write(request_id, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn delete_account(
        self: CapRc<Self>,
        params: session::DeleteAccountParams,
        mut results: session::DeleteAccountResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let request_id = params.get()?.get_request_id()?;
        let command = Command::DeleteAccount {
            caller: self.username.clone(),
        };
        let result = self.write(request_id, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn users(
        self: CapRc<Self>,
        params: session::UsersParams,
        mut results: session::UsersResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let pattern = params.get()?.get_pattern()?.to_str()?.to_owned();
        let found = self.read(|calendar, _| Ok(calendar.users(&pattern))).await;
        let builder = results.get().init_result();
        match found {
            Ok(names) => {
                let mut list = builder.init_ok(names.len() as u32);
                for (index, name) in names.iter().enumerate() {
                    list.set(index as u32, name.as_str());
                }
            }
            Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
        }
        Ok(())
    }

    async fn user_exists(
        self: CapRc<Self>,
        params: session::UserExistsParams,
        mut results: session::UserExistsResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let name = params.get()?.get_username()?.to_str()?.to_owned();
        let found = self
            .read(|calendar, _| Ok(calendar.user_exists(&name)))
            .await;
        let mut builder = results.get().init_result();
        match found {
            Ok(exists) => builder.set_ok(exists),
            Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
        }
        Ok(())
    }

    async fn schedule(
        self: CapRc<Self>,
        params: session::ScheduleParams,
        mut results: session::ScheduleResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let draft = convert::read_draft(params.get_draft()?)?;
        let command = Command::Schedule {
            caller: self.username.clone(),
            draft,
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_event_result(results.get().init_result(), result);
        Ok(())
    }

    async fn edit(
        self: CapRc<Self>,
        params: session::EditParams,
        mut results: session::EditResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::Edit {
            caller: self.username.clone(),
            event_id: params.get_event_id(),
            expected_version: params.get_expected_version(),
            changes: convert::read_changes(params.get_changes()?)?,
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_event_result(results.get().init_result(), result);
        Ok(())
    }

    async fn delete(
        self: CapRc<Self>,
        params: session::DeleteParams,
        mut results: session::DeleteResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::Delete {
            caller: self.username.clone(),
            event_id: params.get_event_id(),
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn edit_occurrence(
        self: CapRc<Self>,
        params: session::EditOccurrenceParams,
        mut results: session::EditOccurrenceResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::EditOccurrence {
            caller: self.username.clone(),
            event_id: params.get_event_id(),
            expected_version: params.get_expected_version(),
            occurrence_start: params.get_occurrence_start(),
            changes: convert::read_changes(params.get_changes()?)?,
            following: params.get_following(),
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_event_result(results.get().init_result(), result);
        Ok(())
    }

    async fn delete_occurrence(
        self: CapRc<Self>,
        params: session::DeleteOccurrenceParams,
        mut results: session::DeleteOccurrenceResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::DeleteOccurrence {
            caller: self.username.clone(),
            event_id: params.get_event_id(),
            occurrence_start: params.get_occurrence_start(),
            following: params.get_following(),
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn get_event(
        self: CapRc<Self>,
        params: session::GetEventParams,
        mut results: session::GetEventResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let id = params.get()?.get_event_id();
        let found = self
            .read(|calendar, caller| Ok(vec![calendar.event(caller, id)?]))
            .await;
        write_events_result(results.get().init_result(), found);
        Ok(())
    }

    async fn agenda(
        self: CapRc<Self>,
        params: session::AgendaParams,
        mut results: session::AgendaResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let (from, to) = (params.get_from(), params.get_to());
        let found = self
            .read(|calendar, caller| Ok(calendar.agenda(caller, from, to)))
            .await;
        write_events_result(results.get().init_result(), found);
        Ok(())
    }

    async fn search(
        self: CapRc<Self>,
        params: session::SearchParams,
        mut results: session::SearchResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let query = convert::read_query(params.get()?.get_query()?)?;
        let found = self
            .read(|calendar, caller| Ok(calendar.search(caller, &query)?))
            .await;
        write_events_result(results.get().init_result(), found);
        Ok(())
    }

    async fn inbox(
        self: CapRc<Self>,
        params: session::InboxParams,
        mut results: session::InboxResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let after = params.get()?.get_after_seq();
        let found = self
            .read(|calendar, caller| {
                Ok((
                    calendar.notifications(caller, after),
                    calendar.acked_seq(caller),
                ))
            })
            .await;
        let builder = results.get().init_result();
        match found {
            Ok((notifications, acked)) => {
                let mut ok = builder.init_ok();
                ok.set_acked_seq(acked);
                convert::write_notifications(
                    ok.init_notifications(notifications.len() as u32),
                    &notifications,
                );
            }
            Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
        }
        Ok(())
    }

    async fn ack(
        self: CapRc<Self>,
        params: session::AckParams,
        mut results: session::AckResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::AckNotifications {
            caller: self.username.clone(),
            up_to_seq: params.get_up_to_seq(),
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn subscribe(
        self: CapRc<Self>,
        params: session::SubscribeParams,
        mut results: session::SubscribeResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let listener = params.get_listener()?;
        let after = params.get_after_seq();
        self.check_open()
            .map_err(|e| capnp::Error::failed(e.to_string()))?;
        let (cancel, cancelled) = oneshot::channel();
        let push = push_notifications(
            self.service.clone(),
            self.username.clone(),
            listener,
            after,
            cancelled,
        );
        tokio::task::spawn_local(push);
        results
            .get()
            .set_subscription(capnp_rpc::new_client(SubscriptionServer {
                _cancel: cancel,
            }));
        Ok(())
    }

    async fn respond(
        self: CapRc<Self>,
        params: session::RespondParams,
        mut results: session::RespondResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::Respond {
            caller: self.username.clone(),
            event_id: params.get_event_id(),
            response: convert_planning::from_wire_response(params.get_response()?),
            occurrence_start: params
                .get_has_occurrence()
                .then(|| params.get_occurrence_start()),
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }

    async fn free_slots(
        self: CapRc<Self>,
        params: session::FreeSlotsParams,
        mut results: session::FreeSlotsResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let query = convert_planning::read_free_query(params.get()?.get_query()?)?;
        let found = self
            .read(|calendar, caller| Ok(calendar.free_slots(caller, &query)?))
            .await;
        write_slots_result(results.get().init_result(), found);
        Ok(())
    }

    async fn suggest(
        self: CapRc<Self>,
        params: session::SuggestParams,
        mut results: session::SuggestResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let query = convert_planning::read_free_query(params.get()?.get_query()?)?;
        let found = self
            .read(|calendar, caller| Ok(calendar.suggest(caller, &query)?))
            .await;
        write_slots_result(results.get().init_result(), found);
        Ok(())
    }

    async fn history(
        self: CapRc<Self>,
        params: session::HistoryParams,
        mut results: session::HistoryResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let id = params.get()?.get_event_id();
        let found = self
            .read(|calendar, caller| Ok(calendar.history(caller, id)?))
            .await;
        let builder = results.get().init_result();
        match found {
            Ok(entries) => {
                convert_planning::write_history(builder.init_ok(entries.len() as u32), &entries)
            }
            Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
        }
        Ok(())
    }

    async fn set_working_hours(
        self: CapRc<Self>,
        params: session::SetWorkingHoursParams,
        mut results: session::SetWorkingHoursResults,
    ) -> Result<(), capnp::Error> {
        let _call = self.start_call()?;
        let params = params.get()?;
        let command = Command::SetWorkingHours {
            caller: self.username.clone(),
            hours: convert_planning::read_working_hours(params.get_hours()?)?,
        };
        let result = self.write(params.get_request_id()?, command).await;
        write_ack(results.get().init_result(), result);
        Ok(())
    }
}

fn write_slots_result(
    builder: crate::rpc::calendar_capnp::slots_result::Builder<'_>,
    found: Result<Vec<crate::calendar::TimeSlot>, ApiRejection>,
) {
    match found {
        Ok(slots) => convert_planning::write_slots(builder.init_ok(slots.len() as u32), &slots),
        Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
    }
}

fn write_events_result(
    builder: crate::rpc::calendar_capnp::events_result::Builder<'_>,
    found: Result<Vec<crate::calendar::EventView>, ApiRejection>,
) {
    match found {
        Ok(events) => convert::write_events(builder.init_ok(events.len() as u32), &events),
        Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
    }
}

/// Ends its push task when the client drops its last reference: dropping the
/// sender resolves the task's receiver.
struct SubscriptionServer {
    _cancel: oneshot::Sender<()>,
}

impl subscription::Server for SubscriptionServer {}

/// Sends every notification after `after` to the listener, then each new one
/// as entries are applied, until cancelled or the listener fails.
async fn push_notifications(
    service: Rc<Service>,
    username: String,
    listener: listener::Client,
    mut after: u64,
    mut cancelled: oneshot::Receiver<()>,
) {
    let mut applied = service.watch_applied();
    loop {
        let fresh = service.calendar().notifications(&username, after);
        if let Some(last) = fresh.last() {
            let last_seq = last.seq;
            let mut request = listener.notify_request();
            convert::write_notifications(
                request.get().init_notifications(fresh.len() as u32),
                &fresh,
            );
            if let Err(error) = request.send().await {
                debug!(node = service.replica_id + 1, user = %username, %error,
                    "stopped pushing notifications: the listener failed");
                return;
            }
            after = last_seq;
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => return,
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::driver::{self, ReplicaSettings, StartMode};

    #[test]
    fn calls_in_flight_stop_at_maximum() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let settings = ReplicaSettings {
            replica_count: 1,
            replica_id: 0,
            client_addresses: vec![String::new()],
            snapshot: crate::node::config::SnapshotPolicy::default(),
        };
        let host = crate::node::host::Host::simulated(1, 0);
        let (service, _driver, _inbound) = driver::open(
            settings,
            crate::wal::StdDisk,
            dir.path(),
            StartMode::Init,
            host,
        )
        .unwrap();

        let session = SessionServer::new(service, "alice".into(), [0; 32]);
        let mut calls: Vec<InFlightCall> = (0..SESSION_CALLS_IN_FLIGHT_MAX)
            .map(|_| session.start_call().expect("below the maximum"))
            .collect();
        let error = session.start_call().err().expect("one call too many");
        assert_eq!(error.kind, capnp::ErrorKind::Overloaded);
        assert!(error.extra.contains("16 calls in flight"), "{error}");

        calls.pop();
        assert!(
            session.start_call().is_ok(),
            "a finished call frees its place"
        );
    }

    fn schedule_with_description(description: String) -> Command {
        Command::Schedule {
            caller: "alice".into(),
            draft: crate::calendar::EventDraft {
                title: "Huge".into(),
                description,
                start: 29_000_000,
                zone: "UTC".into(),
                duration_minutes: 30,
                visibility: crate::calendar::Visibility::Public,
                recurrence: None,
                timing: crate::calendar::types::Timing::Zoned,
            },
        }
    }

    #[test]
    fn command_over_logged_size_rejected() {
        let command = schedule_with_description("x".repeat(LOGGED_COMMAND_BYTES_MAX));
        let error = check_command_size(&command).unwrap_err();
        assert!(
            error.to_string().contains("more than the maximum"),
            "{error}"
        );
    }

    #[test]
    fn command_within_logged_size_passes() {
        let command = schedule_with_description("x".repeat(LOGGED_COMMAND_BYTES_MAX - 1024));
        assert!(check_command_size(&command).is_ok());
    }
}
