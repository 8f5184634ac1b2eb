//! The client's calls and the retry policy they share.

use std::future::Future;

// tokio's clock, so that the operation deadline follows simulated time under
// turmoil; outside a simulation it reads the monotonic system clock.
use tokio::time::Instant;
use tracing::debug;

use super::{backoff, Attempt, Client, ClientError, ClientEvent, SessionState};
use super::{CALL_TIMEOUT, OPERATION_DEADLINE};
use crate::calendar::{EventChanges, EventDraft, EventView, Notification, SearchQuery};
use crate::node::net::Connector;
use crate::rpc::calendar_capnp::{
    ack, events_result, gateway, listener, node_status, request_id, session, session_result,
};
use crate::rpc::convert::{self, read_rejection, ApiRejection};

pub(super) type Reply<T> = capnp::Result<Result<T, ApiRejection>>;

/// The session the server granted on register, login or resume.
struct Grant {
    session: session::Client,
    token: Vec<u8>,
    username: String,
}

/// The status of one node, as `Gateway.status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    pub id: u8,
    pub role: String,
    pub view: u64,
    pub op: u64,
    pub commit: u64,
    pub primary_address: String,
    pub lag: u64,
    pub users: u64,
    pub events: u64,
}

pub(super) fn set_request_id(mut builder: request_id::Builder<'_>, (client_id, seq): (u64, u64)) {
    builder.set_client_id(client_id);
    builder.set_seq(seq);
}

fn read_grant(reader: session_result::Reader<'_>) -> Reply<Grant> {
    Ok(match reader.which()? {
        session_result::Ok(ok) => Ok(Grant {
            session: ok.get_session()?,
            token: ok.get_token()?.to_vec(),
            username: ok.get_username()?.to_str()?.to_owned(),
        }),
        session_result::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

pub(super) fn read_ack(reader: ack::Reader<'_>) -> Reply<()> {
    Ok(match reader.which()? {
        ack::Ok(()) => Ok(()),
        ack::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

fn read_events(reader: events_result::Reader<'_>) -> Reply<Vec<EventView>> {
    Ok(match reader.which()? {
        events_result::Ok(list) => Ok(convert::read_events(list?)?),
        events_result::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

/// Receives pushed notifications and forwards each new one exactly once.
struct ListenerServer {
    last_seen: std::rc::Rc<std::cell::Cell<u64>>,
    events: tokio::sync::mpsc::UnboundedSender<ClientEvent>,
}

impl listener::Server for ListenerServer {
    async fn notify(
        self: capnp::capability::Rc<Self>,
        params: listener::NotifyParams,
    ) -> Result<(), capnp::Error> {
        let notifications = convert::read_notifications(params.get()?.get_notifications()?)?;
        for notification in notifications {
            if notification.seq > self.last_seen.get() {
                self.last_seen.set(notification.seq);
                let _ = self
                    .events
                    .send(ClientEvent::Notification(Box::new(notification)));
            }
        }
        Ok(())
    }
}

impl<C: Connector> Client<C> {
    /// Runs one call against the gateway of some node, with the retry policy.
    async fn with_gateway<T, F, Fut>(&mut self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(gateway::Client) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        let started = Instant::now();
        let mut retry = 0;
        let mut last_error = String::from("none");
        loop {
            let outcome = match self.connection().await {
                Ok(connection) => run_attempt(attempt(connection.gateway.clone())).await,
                Err(error) => Attempt::Lost(error),
            };
            match self.judge(outcome, &mut last_error) {
                Some(result) => return result,
                None => self.pause(started, &mut retry, &last_error).await?,
            }
        }
    }

    /// Runs one call against the session on some node, resuming the session
    /// there first if needed, with the retry policy.
    pub(super) async fn with_session<T, F, Fut>(&mut self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(session::Client) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        if self.session.is_none() {
            return Err(ClientError::NotLoggedIn);
        }
        let started = Instant::now();
        let mut retry = 0;
        let mut last_error = String::from("none");
        loop {
            let outcome = match self.session_capability().await {
                Ok(capability) => run_attempt(attempt(capability)).await,
                Err(lost_or_rejected) => lost_or_rejected,
            };
            match self.judge(outcome, &mut last_error) {
                Some(result) => return result,
                None => self.pause(started, &mut retry, &last_error).await?,
            }
        }
    }

    /// Decides whether an attempt ends the call (Some) or is retried (None).
    fn judge<T>(
        &mut self,
        outcome: Attempt<T>,
        last_error: &mut String,
    ) -> Option<Result<T, ClientError>> {
        match outcome {
            Attempt::Done(value) => Some(Ok(value)),
            Attempt::Lost(error) => {
                debug!(%error, "call lost; trying another node");
                *last_error = error;
                self.move_on(None);
                None
            }
            Attempt::Rejected(ApiRejection::NotPrimary {
                primary_address, ..
            }) => {
                *last_error = format!("not primary; primary is {primary_address:?}");
                let hint = (!primary_address.is_empty()).then_some(primary_address.as_str());
                self.move_on(hint);
                None
            }
            Attempt::Rejected(ApiRejection::Unavailable(reason)) => {
                *last_error = reason;
                None
            }
            Attempt::Rejected(rejection) => Some(Err(ClientError::Rejected(rejection))),
        }
    }

    async fn pause(
        &mut self,
        started: Instant,
        retry: &mut u32,
        last_error: &str,
    ) -> Result<(), ClientError> {
        if self.stop_when_none_listens && self.refused_in_a_row >= 2 * self.addresses.len() {
            return Err(ClientError::NoneListening {
                addresses: self.addresses.join(", "),
            });
        }
        if started.elapsed() >= OPERATION_DEADLINE {
            return Err(ClientError::Unreachable {
                seconds: OPERATION_DEADLINE.as_secs(),
                addresses: self.addresses.join(", "),
                last_error: last_error.to_owned(),
            });
        }
        tokio::time::sleep(backoff(*retry, &self.rng)).await;
        *retry += 1;
        Ok(())
    }

    /// The session capability on the current connection, resuming the
    /// session by token (and the notification stream) on a new connection.
    async fn session_capability<T>(&mut self) -> Result<session::Client, Attempt<T>> {
        let gateway = match self.connection().await {
            Ok(connection) => connection.gateway.clone(),
            Err(error) => return Err(Attempt::Lost(error)),
        };
        let session = self.session.as_mut().expect("checked by the caller");
        if let Some(capability) = &session.capability {
            return Ok(capability.clone());
        }
        let mut request = gateway.resume_request();
        request.get().set_token(&session.token);
        let grant = run_attempt(async move {
            let response = request.send().promise.await?;
            read_grant(response.get()?.get_result()?)
        })
        .await;
        match grant {
            Attempt::Done(grant) => {
                let capability = grant.session.clone();
                session.capability = Some(grant.session);
                if session.subscribed {
                    self.subscribe_on(capability.clone()).await?;
                }
                Ok(capability)
            }
            Attempt::Rejected(ApiRejection::Unauthenticated(reason)) => {
                Err(Attempt::Rejected(ApiRejection::Unauthenticated(reason)))
            }
            Attempt::Rejected(other) => Err(Attempt::Rejected(other)),
            Attempt::Lost(error) => Err(Attempt::Lost(error)),
        }
    }

    async fn subscribe_on<T>(&mut self, capability: session::Client) -> Result<(), Attempt<T>> {
        let listener: listener::Client = capnp_rpc::new_client(ListenerServer {
            last_seen: self.last_seen.clone(),
            events: self.events.clone(),
        });
        let mut request = capability.subscribe_request();
        request.get().set_listener(listener);
        request.get().set_after_seq(self.last_seen.get());
        let subscribed = run_attempt(async move {
            let response = request.send().promise.await?;
            Ok(Ok(response.get()?.get_subscription()?))
        })
        .await;
        match subscribed {
            Attempt::Done(subscription) => {
                if let Some(session) = &mut self.session {
                    session.subscription = Some(subscription);
                }
                Ok(())
            }
            Attempt::Rejected(rejection) => Err(Attempt::Rejected(rejection)),
            Attempt::Lost(error) => Err(Attempt::Lost(error)),
        }
    }

    /// Returns whether the notification stream is down: the user is logged
    /// in with notifications started, but its connection has closed.
    pub fn stream_lost(&self) -> bool {
        let Some(session) = &self.session else {
            return false;
        };
        let connected = self.connection.as_ref().is_some_and(|c| c.is_alive());
        session.subscribed && (!connected || session.subscription.is_none())
    }

    /// Reconnects, resumes the session and restarts the notification stream
    /// after the last notification seen, without waiting for a command. It
    /// makes one attempt, and the caller tries again later if no node replies.
    pub async fn resume_stream(&mut self) -> Result<(), ClientError> {
        match self.session_capability::<()>().await {
            Ok(_) => Ok(()),
            Err(Attempt::Rejected(ApiRejection::NotPrimary {
                primary_address, ..
            })) => {
                let hint = (!primary_address.is_empty()).then_some(primary_address.as_str());
                self.move_on(hint);
                Ok(())
            }
            Err(Attempt::Rejected(ApiRejection::Unavailable(_))) => Ok(()),
            Err(Attempt::Rejected(rejection)) => Err(ClientError::Rejected(rejection)),
            Err(Attempt::Lost(error)) => {
                self.move_on(None);
                Err(ClientError::Unreachable {
                    seconds: 0,
                    addresses: self.addresses.join(", "),
                    last_error: error,
                })
            }
            Err(Attempt::Done(())) => Ok(()),
        }
    }

    fn adopt(&mut self, grant: Grant) {
        self.session = Some(SessionState {
            username: grant.username,
            token: grant.token,
            capability: Some(grant.session),
            subscription: None,
            subscribed: false,
        });
        self.last_seen.set(0);
    }

    /// Creates an account and logs it in.
    pub async fn register(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<String, ClientError> {
        let id = self.next_request_id();
        let grant = self
            .with_gateway(|gateway| {
                let mut request = gateway.register_request();
                set_request_id(request.get().init_request_id(), id);
                request.get().set_username(username);
                request.get().set_password(password);
                async move { read_grant(request.send().promise.await?.get()?.get_result()?) }
            })
            .await?;
        let username = grant.username.clone();
        self.adopt(grant);
        Ok(username)
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Result<String, ClientError> {
        let id = self.next_request_id();
        let grant = self
            .with_gateway(|gateway| {
                let mut request = gateway.login_request();
                set_request_id(request.get().init_request_id(), id);
                request.get().set_username(username);
                request.get().set_password(password);
                async move { read_grant(request.send().promise.await?.get()?.get_result()?) }
            })
            .await?;
        let username = grant.username.clone();
        self.adopt(grant);
        Ok(username)
    }

    /// Starts the notification stream after the user's last acknowledged
    /// notification, returning the ones that were waiting.
    pub async fn start_notifications(&mut self) -> Result<Vec<Notification>, ClientError> {
        let (waiting, acked) = self.inbox_after(None).await?;
        let last = waiting.last().map_or(acked, |n| n.seq);
        self.last_seen.set(last);
        if let Some(session) = &mut self.session {
            session.subscribed = true;
        }
        let capability = match self.session_capability::<()>().await {
            Ok(capability) => capability,
            Err(Attempt::Rejected(rejection)) => return Err(ClientError::Rejected(rejection)),
            Err(_) => return Ok(waiting),
        };
        if let Err(Attempt::Rejected(rejection)) = self.subscribe_on::<()>(capability).await {
            return Err(ClientError::Rejected(rejection));
        }
        Ok(waiting)
    }

    /// Notifications after `after` (None: after the acknowledged one), and
    /// the user's acknowledged sequence number.
    pub async fn inbox_after(
        &mut self,
        after: Option<u64>,
    ) -> Result<(Vec<Notification>, u64), ClientError> {
        let first = self
            .with_session(|session| {
                let mut request = session.inbox_request();
                request.get().set_after_seq(after.unwrap_or(0));
                async move {
                    use crate::rpc::calendar_capnp::inbox_result;
                    let response = request.send().promise.await?;
                    Ok(match response.get()?.get_result()?.which()? {
                        inbox_result::Ok(ok) => Ok((
                            convert::read_notifications(ok.get_notifications()?)?,
                            ok.get_acked_seq(),
                        )),
                        inbox_result::Rejected(r) => Err(read_rejection(r?)?),
                    })
                }
            })
            .await?;
        match after {
            Some(_) => Ok(first),
            None => {
                let (all, acked) = first;
                Ok((all.into_iter().filter(|n| n.seq > acked).collect(), acked))
            }
        }
    }

    pub async fn ack(&mut self, up_to_seq: u64) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.ack_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_up_to_seq(up_to_seq);
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn logout(&mut self) -> Result<(), ClientError> {
        let id = self.next_request_id();
        let result = self
            .with_session(|session| {
                let mut request = session.logout_request();
                set_request_id(request.get().init_request_id(), id);
                async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
            })
            .await;
        self.session = None;
        result
    }

    pub async fn delete_account(&mut self) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.delete_account_request();
            set_request_id(request.get().init_request_id(), id);
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await?;
        self.session = None;
        Ok(())
    }

    pub async fn users(&mut self, pattern: &str) -> Result<Vec<String>, ClientError> {
        self.with_session(|session| {
            let mut request = session.users_request();
            request.get().set_pattern(pattern);
            async move {
                use crate::rpc::calendar_capnp::users_result;
                let response = request.send().promise.await?;
                Ok(match response.get()?.get_result()?.which()? {
                    users_result::Ok(names) => Ok(names?
                        .iter()
                        .map(|name| Ok(name?.to_str()?.to_owned()))
                        .collect::<capnp::Result<Vec<_>>>()?),
                    users_result::Rejected(r) => Err(read_rejection(r?)?),
                })
            }
        })
        .await
    }

    pub async fn user_exists(&mut self, username: &str) -> Result<bool, ClientError> {
        self.with_session(|session| {
            let mut request = session.user_exists_request();
            request.get().set_username(username);
            async move {
                use crate::rpc::calendar_capnp::exists_result;
                let response = request.send().promise.await?;
                Ok(match response.get()?.get_result()?.which()? {
                    exists_result::Ok(exists) => Ok(exists),
                    exists_result::Rejected(r) => Err(read_rejection(r?)?),
                })
            }
        })
        .await
    }

    /// Schedules an event, returning its id and version.
    pub async fn schedule(&mut self, draft: &EventDraft) -> Result<(u64, u64), ClientError> {
        let receipt = self.schedule_series(draft).await?;
        Ok((receipt.event_id, receipt.version))
    }

    pub async fn edit(
        &mut self,
        event_id: u64,
        expected_version: u64,
        changes: &EventChanges,
    ) -> Result<(u64, u64), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.edit_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_event_id(event_id);
            request.get().set_expected_version(expected_version);
            convert::write_changes(request.get().init_changes(), changes);
            async move { read_event_result(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn delete(&mut self, event_id: u64) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.delete_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_event_id(event_id);
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn event(&mut self, event_id: u64) -> Result<EventView, ClientError> {
        let mut events = self
            .with_session(|session| {
                let mut request = session.get_event_request();
                request.get().set_event_id(event_id);
                async move { read_events(request.send().promise.await?.get()?.get_result()?) }
            })
            .await?;
        events.pop().ok_or_else(|| {
            ClientError::Rejected(ApiRejection::Unavailable(
                "the node returned no event".into(),
            ))
        })
    }

    pub async fn agenda(&mut self, from: i64, to: i64) -> Result<Vec<EventView>, ClientError> {
        self.with_session(|session| {
            let mut request = session.agenda_request();
            request.get().set_from(from);
            request.get().set_to(to);
            async move { read_events(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    pub async fn search(&mut self, query: &SearchQuery) -> Result<Vec<EventView>, ClientError> {
        self.with_session(|session| {
            let mut request = session.search_request();
            convert::write_query(request.get().init_query(), query);
            async move { read_events(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    /// Schedules an event that may recur, returning how far its conflicts
    /// were checked as well.
    pub async fn schedule_series(
        &mut self,
        draft: &EventDraft,
    ) -> Result<SeriesReceipt, ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.schedule_request();
            set_request_id(request.get().init_request_id(), id);
            convert::write_draft(request.get().init_draft(), draft);
            async move { read_series_receipt(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    /// Changes the occurrence of a recurring event that the rule starts at
    /// `occurrence_start`, or with `following` it and every later one; then
    /// the receipt names the new event that continues the series.
    pub async fn edit_occurrence(
        &mut self,
        event_id: u64,
        expected_version: u64,
        occurrence_start: i64,
        changes: &EventChanges,
        following: bool,
    ) -> Result<SeriesReceipt, ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.edit_occurrence_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_event_id(event_id);
            request.get().set_expected_version(expected_version);
            request.get().set_occurrence_start(occurrence_start);
            request.get().set_following(following);
            convert::write_changes(request.get().init_changes(), changes);
            async move { read_series_receipt(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    /// Cancels one occurrence of a recurring event, or with `following` it
    /// and every later one.
    pub async fn delete_occurrence(
        &mut self,
        event_id: u64,
        occurrence_start: i64,
        following: bool,
    ) -> Result<(), ClientError> {
        let id = self.next_request_id();
        self.with_session(|session| {
            let mut request = session.delete_occurrence_request();
            set_request_id(request.get().init_request_id(), id);
            request.get().set_event_id(event_id);
            request.get().set_occurrence_start(occurrence_start);
            request.get().set_following(following);
            async move { read_ack(request.send().promise.await?.get()?.get_result()?) }
        })
        .await
    }

    /// The status of every configured node that answers within the call
    /// timeout, each with its address; unreachable nodes carry the error.
    pub async fn cluster_status(&mut self) -> Vec<(String, Result<NodeReport, String>)> {
        let mut reports = Vec::new();
        for address in self.addresses.clone() {
            let report = node_status_of(&self.connector, &address).await;
            reports.push((address, report));
        }
        reports
    }
}

fn read_event_result(
    reader: crate::rpc::calendar_capnp::event_result::Reader<'_>,
) -> Reply<(u64, u64)> {
    let receipt = read_series_receipt(reader)?;
    Ok(receipt.map(|receipt| (receipt.event_id, receipt.version)))
}

/// The outcome of a write to an event that may recur.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesReceipt {
    pub event_id: u64,
    pub version: u64,
    /// For a series without an end: conflicts were checked only for
    /// occurrences starting before this minute.
    pub conflicts_checked_until: Option<i64>,
}

fn read_series_receipt(
    reader: crate::rpc::calendar_capnp::event_result::Reader<'_>,
) -> Reply<SeriesReceipt> {
    use crate::rpc::calendar_capnp::event_result;
    Ok(match reader.which()? {
        event_result::Ok(ok) => {
            let checked_until = ok.get_conflicts_checked_until();
            Ok(SeriesReceipt {
                event_id: ok.get_event_id(),
                version: ok.get_version(),
                conflicts_checked_until: (checked_until != 0).then_some(checked_until),
            })
        }
        event_result::Rejected(rejection) => Err(read_rejection(rejection?)?),
    })
}

/// Asks one node for its status on a connection of its own.
pub async fn node_status_of<C: Connector>(
    connector: &C,
    address: &str,
) -> Result<NodeReport, String> {
    let connection = super::connection::Connection::open(connector, address, CALL_TIMEOUT).await?;
    let request = connection.gateway.status_request();
    let call = async move {
        let response = request.send().promise.await?;
        let status = response.get()?.get_status()?;
        let role = match status.get_role()? {
            node_status::Role::Primary => "primary",
            node_status::Role::Backup => "backup",
            node_status::Role::ViewChange => "view change",
            node_status::Role::Recovering => "recovering",
        };
        Ok::<_, capnp::Error>(NodeReport {
            id: status.get_id(),
            role: role.to_owned(),
            view: status.get_view(),
            op: status.get_op(),
            commit: status.get_commit(),
            primary_address: status.get_primary_address()?.to_str()?.to_owned(),
            lag: status.get_lag(),
            users: status.get_users(),
            events: status.get_events(),
        })
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(error)) => Err(format!("status call to {address} failed: {error}")),
        Err(_) => Err(format!("status call to {address} timed out")),
    }
}

/// Runs one attempt under the per-call deadline.
async fn run_attempt<T>(call: impl Future<Output = Reply<T>>) -> Attempt<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Attempt::Lost(format!("call timed out after {} s", CALL_TIMEOUT.as_secs())),
        Ok(Err(error)) => Attempt::Lost(error.to_string()),
        Ok(Ok(Err(rejection))) => Attempt::Rejected(rejection),
        Ok(Ok(Ok(value))) => Attempt::Done(value),
    }
}
