//! What each simulated client asked and what it got back, with simulated
//! times: the input of the checkers in [`crate::check`].
//!
//! A [`SimClient`] wraps the real [`Client`] over turmoil's TCP and records
//! every call as an [`Operation`]. A call that is still running when the run
//! ends, or that gave up after its deadline, has no response: it may or may
//! not have taken effect.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use almanac::calendar::{
    EventChanges, EventDraft, EventView, Notification, NotificationKind, Rejection, SearchQuery,
    Timing, UnixMinute, Visibility,
};
use almanac::client::{Client, ClientError, ClientEvent};
use almanac::node::net::TurmoilConnector;
use almanac::rpc::convert::ApiRejection;
use tokio::sync::mpsc;

/// Password of every simulated user.
const PASSWORD: &str = "correct horse battery";

/// Zone of every simulated event.
const ZONE: &str = "Europe/Berlin";

/// Length of every simulated event in minutes.
const EVENT_MINUTES: u32 = 30;

/// The request of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Register {
        user: String,
    },
    Login {
        user: String,
    },
    /// A new event: private without guests, or public (every user is
    /// invited), starting at `start`.
    Schedule {
        title: String,
        start: UnixMinute,
        public: bool,
    },
    /// A schedule sent again under the request id of the previous call.
    Resend {
        title: String,
    },
    /// A new title for an event, expected at `version`.
    Edit {
        event_id: u64,
        version: u64,
        title: String,
    },
    Delete {
        event_id: u64,
    },
    Read {
        event_id: u64,
    },
    /// The events visible to the user that overlap `[from, to)`.
    Agenda {
        from: UnixMinute,
        to: UnixMinute,
    },
    /// The visible events whose title or description contains `text`.
    Search {
        text: String,
    },
    /// Every notification of the user.
    Inbox,
}

/// One event as a read returned it: id, version and title.
pub type EventSummary = (u64, u64, String);

/// One notification as a read returned it: sequence number, kind and event id.
pub type NotificationSummary = (u64, NotificationKind, u64);

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A session was granted.
    Session,
    /// A write took effect and produced this version of this event.
    Written { event_id: u64, version: u64 },
    /// A delete took effect.
    Deleted,
    /// A read returned the event at this version.
    Read { version: u64, title: String },
    /// An agenda or search returned these events, in its order.
    Events(Vec<EventSummary>),
    /// An inbox read returned these notifications.
    Inbox(Vec<NotificationSummary>),
    /// The calendar rejected the call (a domain outcome): it changed
    /// nothing but the client table.
    Rejected(Rejection),
    /// The client gave up without a domain outcome (a timeout, or a node
    /// that could not serve), so the call may or may not have taken effect.
    Unknown(String),
}

/// One call of one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: String,
    pub user: String,
    pub call: Call,
    /// Simulated time at which the call began.
    pub invoked: Duration,
    /// Simulated time of the response; None while the call runs.
    pub completed: Option<Duration>,
    pub response: Option<Response>,
}

impl Operation {
    /// Returns the written (event id, version) if the call was acknowledged.
    pub fn written(&self) -> Option<(u64, u64)> {
        match self.response {
            Some(Response::Written { event_id, version }) => Some((event_id, version)),
            _ => None,
        }
    }

    /// Returns whether the call certainly had no effect.
    pub fn failed(&self) -> bool {
        matches!(self.response, Some(Response::Rejected(_)))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) {:?} at {:?} -> ",
            self.client, self.user, self.call, self.invoked
        )?;
        match (&self.response, self.completed) {
            (Some(response), Some(at)) => write!(f, "{response:?} at {at:?}"),
            _ => write!(f, "no response"),
        }
    }
}

/// Every client's operations in invocation order, shared by the clients of
/// one run.
pub type History = Rc<RefCell<Vec<Operation>>>;

/// The notifications each client received on its stream, in arrival order,
/// by client name.
pub type Deliveries = Rc<RefCell<BTreeMap<String, Vec<Delivery>>>>;

/// One notification a client's stream delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub user: String,
    pub seq: u64,
    pub kind: NotificationKind,
    pub event_id: u64,
    /// Simulated time of the delivery.
    pub at: Duration,
}

/// Simulated time since the run began. Must run inside a turmoil host.
pub fn now() -> Duration {
    turmoil::sim_elapsed().expect("sim_elapsed is known inside a simulated host")
}

/// Sleeps until simulated time `at`; returns at once if it has passed.
pub async fn sleep_until(at: Duration) {
    let now = now();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

/// A real [`Client`] that records each call in the run's history.
pub struct SimClient {
    /// The host name of this client.
    pub name: String,
    /// The user this client registers or logs in as.
    pub user: String,
    client: Client<TurmoilConnector>,
    history: History,
    deliveries: Deliveries,
    /// Notifications and node switches; drained after every call into
    /// `deliveries`, so the channel stays small.
    events: mpsc::UnboundedReceiver<ClientEvent>,
    /// Minute at which this client's next event starts; each event gets a
    /// slot of its own, so no two events of one user conflict.
    next_start: UnixMinute,
    /// The draft of the last schedule, for a resend.
    last_draft: Option<EventDraft>,
}

impl SimClient {
    pub(crate) fn new(
        name: &str,
        user: &str,
        addresses: Vec<String>,
        seed: u64,
        history: History,
        deliveries: Deliveries,
        first_start: UnixMinute,
    ) -> SimClient {
        let (sender, events) = mpsc::unbounded_channel();
        SimClient {
            name: name.to_owned(),
            user: user.to_owned(),
            client: Client::with_connector(TurmoilConnector, addresses, sender, seed),
            history,
            deliveries,
            events,
            next_start: first_start,
            last_draft: None,
        }
    }

    fn begin(&self, call: Call) -> usize {
        let mut history = self.history.borrow_mut();
        history.push(Operation {
            client: self.name.clone(),
            user: self.user.clone(),
            call,
            invoked: now(),
            completed: None,
            response: None,
        });
        history.len() - 1
    }

    /// Moves the notifications the stream delivered so far into the run's
    /// deliveries.
    pub fn drain_notifications(&mut self) {
        let mut deliveries = self.deliveries.borrow_mut();
        let received = deliveries.entry(self.name.clone()).or_default();
        while let Ok(event) = self.events.try_recv() {
            if let ClientEvent::Notification(notification) = event {
                received.push(Delivery {
                    user: self.user.clone(),
                    seq: notification.seq,
                    kind: notification.kind,
                    event_id: notification.event.id,
                    at: now(),
                });
            }
        }
    }

    fn end(&mut self, index: usize, response: Response) -> Response {
        self.drain_notifications();
        let mut history = self.history.borrow_mut();
        let operation = &mut history[index];
        operation.completed = Some(now());
        operation.response = Some(response.clone());
        tracing::debug!(operation = %operation, "completed");
        response
    }

    /// Registers this client's user, and logs in if another client already
    /// registered it. Returns whether a session was granted.
    pub async fn register(&mut self) -> bool {
        let index = self.begin(Call::Register {
            user: self.user.clone(),
        });
        let result = self.client.register(&self.user, PASSWORD).await;
        let taken = matches!(
            &result,
            Err(ClientError::Rejected(ApiRejection::Calendar(
                Rejection::AlreadyExists { .. }
            )))
        );
        let response = self.end(index, session_response(result.map(|_| ())));
        if taken {
            return self.login().await;
        }
        response == Response::Session
    }

    /// Logs in as this client's user. Returns whether a session was granted.
    pub async fn login(&mut self) -> bool {
        let index = self.begin(Call::Login {
            user: self.user.clone(),
        });
        let result = self.client.login(&self.user, PASSWORD).await;
        self.end(index, session_response(result.map(|_| ()))) == Response::Session
    }

    /// Returns the start of the next slot of this client's own, so that no
    /// two of its events overlap.
    pub fn next_slot(&mut self) -> UnixMinute {
        let start = self.next_start;
        self.next_start += 60;
        start
    }

    /// Schedules a private event in a slot of its own.
    pub async fn schedule(&mut self, title: &str) -> Response {
        let start = self.next_slot();
        self.schedule_at(title, start, false).await
    }

    /// Schedules an event at `start`, public (every user invited) or
    /// private without guests.
    pub async fn schedule_at(&mut self, title: &str, start: UnixMinute, public: bool) -> Response {
        let index = self.begin(Call::Schedule {
            title: title.to_owned(),
            start,
            public,
        });
        let draft = draft(&self.name, &self.user, title, start, public);
        let result = self.client.schedule(&draft).await;
        self.last_draft = Some(draft);
        self.end(index, write_response(result))
    }

    /// Sends the last schedule again under the same request id, as a client
    /// that lost the reply would.
    ///
    /// # Panics
    ///
    /// If the client scheduled nothing yet, or `title` is not the title of
    /// its last schedule.
    pub async fn resend_last_schedule(&mut self, title: &str) -> Response {
        let draft = self
            .last_draft
            .clone()
            .expect("resend_last_schedule needs an earlier schedule");
        assert_eq!(draft.title, title, "only the last schedule can be resent");
        let index = self.begin(Call::Resend {
            title: title.to_owned(),
        });
        self.client.reuse_last_request_id();
        let result = self.client.schedule(&draft).await;
        self.end(index, write_response(result))
    }

    /// Changes the title of an event the user hosts.
    pub async fn edit_title(&mut self, event_id: u64, version: u64, title: &str) -> Response {
        let index = self.begin(Call::Edit {
            event_id,
            version,
            title: title.to_owned(),
        });
        let changes = EventChanges {
            title: Some(title.to_owned()),
            ..EventChanges::default()
        };
        let result = self.client.edit(event_id, version, &changes).await;
        self.end(index, write_response(result))
    }

    /// Deletes an event the user hosts.
    pub async fn delete(&mut self, event_id: u64) -> Response {
        let index = self.begin(Call::Delete { event_id });
        let response = match self.client.delete(event_id).await {
            Ok(()) => Response::Deleted,
            Err(error) => failure(error),
        };
        self.end(index, response)
    }

    /// Reads one event through a linearizable read.
    pub async fn read(&mut self, event_id: u64) -> Response {
        let index = self.begin(Call::Read { event_id });
        let result = self.client.event(event_id).await;
        self.end(index, read_response(result))
    }

    /// Reads the user's agenda for `[from, to)`.
    pub async fn agenda(&mut self, from: UnixMinute, to: UnixMinute) -> Response {
        let index = self.begin(Call::Agenda { from, to });
        let result = self.client.agenda(from, to).await;
        self.end(index, events_response(result))
    }

    /// Searches the visible events for `text`.
    pub async fn search(&mut self, text: &str) -> Response {
        let index = self.begin(Call::Search {
            text: text.to_owned(),
        });
        let query = SearchQuery {
            text: Some(text.to_owned()),
            ..SearchQuery::default()
        };
        let result = self.client.search(&query).await;
        self.end(index, events_response(result))
    }

    /// Reads every notification of the user.
    pub async fn inbox(&mut self) -> Response {
        let index = self.begin(Call::Inbox);
        let response = match self.client.inbox_after(Some(0)).await {
            Ok((notifications, _)) => Response::Inbox(summarize_notifications(&notifications)),
            Err(error) => failure(error),
        };
        self.end(index, response)
    }

    /// Starts the notification stream. Returns whether it started; the
    /// notifications that were waiting are not recorded, because the stream
    /// check follows only what the stream pushed.
    pub async fn start_notifications(&mut self) -> bool {
        self.client.start_notifications().await.is_ok()
    }
}

/// Returns the draft of one simulated event.
pub fn draft(client: &str, user: &str, title: &str, start: UnixMinute, public: bool) -> EventDraft {
    EventDraft {
        title: title.to_owned(),
        description: format!("written by {client} as {user}"),
        start,
        zone: ZONE.to_owned(),
        duration_minutes: EVENT_MINUTES,
        visibility: if public {
            Visibility::Public
        } else {
            Visibility::Private { guests: Vec::new() }
        },
        recurrence: None,
        timing: Timing::Zoned,
    }
}

/// Returns the (seq, kind, event id) of each notification.
pub fn summarize_notifications(notifications: &[Notification]) -> Vec<NotificationSummary> {
    notifications
        .iter()
        .map(|notification| (notification.seq, notification.kind, notification.event.id))
        .collect()
}

/// Returns the (id, version, title) of each event.
pub fn summarize_events(events: &[EventView]) -> Vec<EventSummary> {
    events
        .iter()
        .map(|event| (event.id, event.version, event.title.clone()))
        .collect()
}

fn events_response(result: Result<Vec<EventView>, ClientError>) -> Response {
    match result {
        Ok(events) => Response::Events(summarize_events(&events)),
        Err(error) => failure(error),
    }
}

fn session_response(result: Result<(), ClientError>) -> Response {
    match result {
        Ok(()) => Response::Session,
        Err(error) => failure(error),
    }
}

fn write_response(result: Result<(u64, u64), ClientError>) -> Response {
    match result {
        Ok((event_id, version)) => Response::Written { event_id, version },
        Err(error) => failure(error),
    }
}

fn read_response(result: Result<EventView, ClientError>) -> Response {
    match result {
        Ok(event) => Response::Read {
            version: event.version,
            title: event.title,
        },
        Err(error) => failure(error),
    }
}

fn failure(error: ClientError) -> Response {
    match error {
        ClientError::Rejected(ApiRejection::Calendar(rejection)) => Response::Rejected(rejection),
        other => Response::Unknown(other.to_string()),
    }
}

/// Builders of recorded operations for the checkers' unit tests.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// Start of every event [`schedule`] builds.
    pub const START: UnixMinute = 31_557_600;

    pub fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Returns a completed call of `client`, whose user has the same name,
    /// invoked and completed at the milliseconds of `span`.
    pub fn operation(client: &str, call: Call, span: (u64, u64), response: Response) -> Operation {
        Operation {
            client: client.into(),
            user: client.into(),
            call,
            invoked: at(span.0),
            completed: Some(at(span.1)),
            response: Some(response),
        }
    }

    pub fn register(client: &str, span: (u64, u64)) -> Operation {
        let call = Call::Register {
            user: client.into(),
        };
        operation(client, call, span, Response::Session)
    }

    /// Returns an acknowledged public schedule at [`START`] that created
    /// `event_id` at version 1.
    pub fn schedule(client: &str, title: &str, span: (u64, u64), event_id: u64) -> Operation {
        let call = Call::Schedule {
            title: title.into(),
            start: START,
            public: true,
        };
        let written = Response::Written {
            event_id,
            version: 1,
        };
        operation(client, call, span, written)
    }
}
