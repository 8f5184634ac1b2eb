//! What each simulated client asked and what it got back, with simulated
//! times: the input of the checkers in [`crate::check`].
//!
//! A [`SimClient`] wraps the real [`Client`] over turmoil's TCP and records
//! every call as an [`Operation`]. A call that is still running when the run
//! ends, or that gave up after its deadline, has no response: it may or may
//! not have taken effect.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use almanac::calendar::{
    EventChanges, EventDraft, EventView, Rejection, Timing, UnixMinute, Visibility,
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
    Schedule {
        title: String,
    },
    /// A schedule sent again under the request id of the previous call.
    Resend {
        title: String,
    },
    Edit {
        event_id: u64,
        title: String,
    },
    Read {
        event_id: u64,
    },
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A session was granted.
    Session,
    /// A write took effect and produced this version of this event.
    Written { event_id: u64, version: u64 },
    /// A read returned the event at this version.
    Read { version: u64, title: String },
    /// The cluster rejected the call (a domain outcome): it had no effect.
    Rejected(String),
    /// The client gave up without a response, so the call may or may not
    /// have taken effect.
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
    /// Notifications and node switches; drained so the channel stays small.
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
        first_start: UnixMinute,
    ) -> SimClient {
        let (sender, events) = mpsc::unbounded_channel();
        SimClient {
            name: name.to_owned(),
            user: user.to_owned(),
            client: Client::with_connector(TurmoilConnector, addresses, sender, seed),
            history,
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

    fn end(&mut self, index: usize, response: Response) -> Response {
        while self.events.try_recv().is_ok() {}
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

    fn draft(&mut self, title: &str) -> EventDraft {
        let start = self.next_start;
        self.next_start += 60;
        EventDraft {
            title: title.to_owned(),
            description: format!("written by {} as {}", self.name, self.user),
            start,
            zone: ZONE.to_owned(),
            duration_minutes: EVENT_MINUTES,
            visibility: Visibility::Private { guests: Vec::new() },
            recurrence: None,
            timing: Timing::Zoned,
        }
    }

    /// Schedules a private event in a slot of its own.
    pub async fn schedule(&mut self, title: &str) -> Response {
        let index = self.begin(Call::Schedule {
            title: title.to_owned(),
        });
        let draft = self.draft(title);
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
            title: title.to_owned(),
        });
        let changes = EventChanges {
            title: Some(title.to_owned()),
            ..EventChanges::default()
        };
        let result = self.client.edit(event_id, version, &changes).await;
        self.end(index, write_response(result))
    }

    /// Reads one event through a linearizable read.
    pub async fn read(&mut self, event_id: u64) -> Response {
        let index = self.begin(Call::Read { event_id });
        let result = self.client.event(event_id).await;
        self.end(index, read_response(result))
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
        ClientError::Rejected(rejection) => Response::Rejected(rejection.to_string()),
        other => Response::Unknown(other.to_string()),
    }
}
