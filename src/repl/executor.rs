//! The REPL's connection to the cluster: a thread with a current-thread
//! runtime and a `LocalSet` that owns the [`Client`], runs one command at a
//! time and prints notifications as they arrive.

use chrono_tz::Tz;
use serde_json::{json, Value};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::calendar::timing::{agenda_for_viewer, scan_range};
use crate::calendar::Visibility;
use crate::calendar::{EventChanges, EventDraft, EventView, SearchQuery, Timing, UnixMinute};
use crate::client::{Client, ClientError, ClientEvent};
use crate::ical;
use crate::repl::grammar::{Edit, ReplCommand, Schedule};
use crate::repl::helper::KnownUsers;
use crate::repl::plan_run;
use crate::repl::recurrence;
use crate::repl::render::{self, StatusRow, Style};
use crate::rpc::convert::ApiRejection;

/// How often an idle REPL checks that its notification stream is still
/// connected, so that notifications keep arriving after a failover even
/// when the user types nothing.
const STREAM_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// One command for the executor, with the password the shell prompted for.
pub struct Job {
    pub command: ReplCommand,
    pub password: Option<String>,
    pub reply: oneshot::Sender<Reply>,
}

/// The result of a command: text for people, JSON for `--output json`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub ok: bool,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub(super) fn ok(text: String, json: Value) -> Reply {
        Reply {
            ok: true,
            text,
            json,
        }
    }
}

/// The sink for notifications and node switches printed while the user types.
pub type Printer = Box<dyn FnMut(String) + Send>;

/// Settings the executor needs to render.
pub struct View {
    pub zone: Tz,
    pub style: Style,
    pub json: bool,
    /// The instant `show` lists coming occurrences from; the clock's when
    /// unset (the shell's `--now` sets it for tests).
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

impl View {
    /// Returns the width of the terminal that replies print to, or None
    /// when standard output is not a terminal, so that scripts get the
    /// same layout whatever runs them.
    pub fn terminal_columns(&self) -> Option<usize> {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            return None;
        }
        terminal_size::terminal_size_of(std::io::stdout())
            .map(|(terminal_size::Width(columns), _)| usize::from(columns))
    }
}

/// Starts the executor thread and returns the sender for its jobs.
///
/// With `catch_interrupts`, Ctrl-C (SIGINT) no longer ends the process: it
/// stops the command that is waiting for the cluster, and is ignored while
/// no command runs. The handler is in place before this returns, so that a
/// Ctrl-C at a password prompt cannot end the process either. A scripted
/// REPL keeps the default, so that Ctrl-C stops the whole script.
pub fn spawn(
    addresses: Vec<String>,
    view: View,
    printer: Printer,
    users: KnownUsers,
    catch_interrupts: bool,
) -> std::io::Result<mpsc::UnboundedSender<Job>> {
    let (jobs, receiver) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let interrupts = if catch_interrupts {
        let _context = runtime.enter();
        Some(signal(SignalKind::interrupt())?)
    } else {
        None
    };
    std::thread::Builder::new()
        .name("repl-client".into())
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            let session = run(addresses, view, printer, users, receiver, interrupts);
            local.block_on(&runtime, session);
        })?;
    Ok(jobs)
}

/// Waits for the next Ctrl-C, or forever when they are not caught.
async fn interrupted(interrupts: &mut Option<Signal>) {
    match interrupts {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Builds the reply to a command stopped by Ctrl-C while it waited for the
/// cluster.
fn stopped_reply(command: &ReplCommand) -> Reply {
    let name = command_name(command);
    let text = match command {
        ReplCommand::Register { user } => format!(
            "stopped waiting for `{name}`: the cluster may still create the account; \
             try `login {user}` before registering again"
        ),
        _ if command.changes_state() => format!(
            "stopped waiting for `{name}`: the cluster may still carry it out; \
             check with agenda, show or inbox before trying again"
        ),
        _ => format!("stopped waiting for `{name}`"),
    };
    Reply {
        ok: false,
        json: json!({ "command": name, "ok": false,
                      "error": { "message": text, "interrupted": true } }),
        // The terminal echoed ^C without ending its line.
        text: format!("\nerror: {text}"),
    }
}

async fn run(
    addresses: Vec<String>,
    view: View,
    printer: Printer,
    users: KnownUsers,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut interrupts: Option<Signal>,
) {
    let (events_sender, mut events) = mpsc::unbounded_channel();
    let mut executor = Executor {
        client: Client::new(addresses, events_sender),
        view,
        users,
        last_suggestion: None,
        printer,
    };
    let mut watchdog = tokio::time::interval(STREAM_CHECK_INTERVAL);
    loop {
        let job = tokio::select! {
            biased;
            // A Ctrl-C while no command runs, for example the one a password
            // prompt sends, stops nothing.
            () = interrupted(&mut interrupts) => None,
            _ = watchdog.tick() => {
                if !executor.client.stream_lost() {
                    continue;
                }
                // Resuming the stream can wait seconds for a cluster without
                // a quorum, so a command or a Ctrl-C ends it; the next tick
                // tries again.
                tokio::select! {
                    biased;
                    () = interrupted(&mut interrupts) => None,
                    job = jobs.recv() => Some(job),
                    () = executor.restore_stream() => None,
                }
            }
            Some(event) = events.recv() => {
                let mut batch = vec![event];
                while let Ok(more) = events.try_recv() {
                    batch.push(more);
                }
                executor.show_events(batch).await;
                None
            }
            job = jobs.recv() => Some(job),
        };
        let Some(job) = job else { continue };
        let Some(job) = job else { return };
        let stopped = stopped_reply(&job.command);
        let reply = tokio::select! {
            reply = executor.execute(job.command, job.password) => reply,
            () = interrupted(&mut interrupts) => stopped,
        };
        let _ = job.reply.send(reply);
    }
}

struct Executor {
    client: Client,
    view: View,
    users: KnownUsers,
    /// The proposals of the last `suggest`, for `schedule suggestion N`.
    last_suggestion: Option<plan_run::Suggestion>,
    /// Prints notifications and import progress above the prompt.
    printer: Printer,
}

fn rejection_reply(command: &str, error: ClientError, view: &View) -> Reply {
    let (text, detail) = match &error {
        ClientError::Rejected(ApiRejection::Calendar(rejection)) => (
            render::render_rejection(rejection, view.zone, view.style),
            render::rejection_json(rejection),
        ),
        other => (other.to_string(), json!({ "message": other.to_string() })),
    };
    Reply {
        ok: false,
        text: format!("error: {text}"),
        json: json!({ "command": command, "ok": false, "error": detail }),
    }
}

impl Executor {
    /// Prints pushed notifications and acknowledges them, so that the next
    /// login does not show them again.
    async fn show_events(&mut self, batch: Vec<ClientEvent>) {
        let mut last_seq = None;
        for event in batch {
            let line = match event {
                ClientEvent::Notification(notification) => {
                    last_seq = Some(notification.seq);
                    if self.view.json {
                        json!({ "notification": render::notification_json(&notification) })
                            .to_string()
                    } else {
                        render::render_notification(&notification, self.view.zone, self.view.style)
                    }
                }
                // JSON output keeps to one object per command and one per
                // notification.
                ClientEvent::SwitchedNode { .. } if self.view.json => continue,
                ClientEvent::SwitchedNode { address } => {
                    format!("(now connected to node {address})")
                }
            };
            (self.printer)(line);
        }
        if let Some(seq) = last_seq {
            if let Err(error) = self.client.ack(seq).await {
                tracing::warn!(%error, seq, "acknowledging notifications failed");
            }
        }
    }

    /// Resumes the notification stream on another node. A failure is only
    /// logged: the watchdog tries again at its next tick.
    async fn restore_stream(&mut self) {
        if let Err(error) = self.client.resume_stream().await {
            tracing::debug!(%error, "resuming the notification stream failed; retrying");
        }
    }

    async fn execute(&mut self, command: ReplCommand, password: Option<String>) -> Reply {
        let name = command_name(&command);
        match self.run(command, password.unwrap_or_default()).await {
            Ok(reply) => reply,
            Err(error) => rejection_reply(name, error, &self.view),
        }
    }

    async fn run(&mut self, command: ReplCommand, password: String) -> Result<Reply, ClientError> {
        match command {
            ReplCommand::Register { user } => {
                let name = self.client.register(&user, &password).await?;
                self.after_login(name, "register", "registered and logged in")
                    .await
            }
            ReplCommand::Login { user } => {
                let name = self.client.login(&user, &password).await?;
                self.after_login(name, "login", "logged in").await
            }
            ReplCommand::Logout => {
                let name = self.client.username().unwrap_or_default().to_owned();
                self.client.logout().await?;
                Ok(Reply::ok(
                    format!("{name} logged out"),
                    json!({ "command": "logout", "ok": true, "user": name }),
                ))
            }
            ReplCommand::DeleteAccount => {
                let name = self.client.username().unwrap_or_default().to_owned();
                self.client.delete_account().await?;
                forget_user(&self.users, &name);
                Ok(Reply::ok(
                    format!("account {name} deleted; its events were cancelled"),
                    json!({ "command": "delete-account", "ok": true, "user": name }),
                ))
            }
            ReplCommand::Users { pattern } => {
                let pattern = pattern.unwrap_or_default();
                let names = self.client.users(&pattern).await?;
                if pattern.is_empty() {
                    replace_users(&self.users, names.clone());
                } else {
                    self.remember_users(&names);
                }
                Ok(Reply::ok(
                    render::render_users(&names),
                    json!({ "command": "users", "ok": true, "users": names }),
                ))
            }
            ReplCommand::Whois { user } => {
                let exists = self.client.user_exists(&user).await?;
                let text = if exists {
                    format!("{user} exists")
                } else {
                    format!("no user named {user}")
                };
                Ok(Reply::ok(
                    text,
                    json!({ "command": "whois", "ok": true, "user": user, "exists": exists }),
                ))
            }
            ReplCommand::Show { id } => {
                let event = self.client.event(id).await?;
                Ok(Reply::ok(
                    self.render_event_and_series(&event),
                    json!({ "command": "show", "ok": true, "event": render::event_json(&event) }),
                ))
            }
            ReplCommand::Delete { id } => {
                self.client.delete(id).await?;
                Ok(Reply::ok(
                    format!("deleted #{id}; its participants were notified"),
                    json!({ "command": "delete", "ok": true, "event_id": id }),
                ))
            }
            ReplCommand::Inbox => self.inbox().await,
            ReplCommand::Schedule(schedule) => self.schedule(schedule).await,
            ReplCommand::Edit(edit) => self.edit(edit).await,
            ReplCommand::Agenda(range) => {
                let from = range.from.timestamp() / 60;
                let to = range.to.timestamp() / 60;
                let events = agenda_in_zone(&mut self.client, from, to, self.view.zone).await?;
                let json_events: Vec<Value> = events.iter().map(render::event_json).collect();
                Ok(Reply::ok(
                    render::render_agenda(&events, from, to, self.view.zone, self.view.style),
                    json!({ "command": "agenda", "ok": true, "events": json_events }),
                ))
            }
            ReplCommand::Search(query) => {
                let from = query.from.map(|t| t.timestamp() / 60);
                let to = query.to.map(|t| t.timestamp() / 60);
                // Widened like an agenda, so that floating and all-day
                // events are matched on the viewer's own days.
                let query = SearchQuery {
                    host: query.host,
                    text: query.text,
                    from: from.map(|from| scan_range(from, from).0),
                    to: to.map(|to| scan_range(to, to).1),
                };
                let found = self.client.search(&query).await?;
                let events = agenda_for_viewer(
                    found,
                    from.unwrap_or(UnixMinute::MIN),
                    to.unwrap_or(UnixMinute::MAX),
                    self.view.zone,
                );
                let json_events: Vec<Value> = events.iter().map(render::event_json).collect();
                let text = if events.is_empty() {
                    "no events match".to_owned()
                } else {
                    render::render_agenda(
                        &events,
                        events[0].start,
                        events.last().map_or(0, |e| e.end()),
                        self.view.zone,
                        self.view.style,
                    )
                };
                Ok(Reply::ok(
                    text,
                    json!({ "command": "search", "ok": true, "events": json_events }),
                ))
            }
            ReplCommand::Status => Ok(self.status().await),
            ReplCommand::DeleteOccurrence { id, occurrence } => {
                self.delete_occurrence(id, occurrence).await
            }
            ReplCommand::Plan(plan) => {
                let suggestion = &mut self.last_suggestion;
                plan_run::run(&mut self.client, &self.view, suggestion, plan).await
            }
            ReplCommand::Import { path, lenient } => Ok(self.import(&path, lenient).await),
            ReplCommand::Export { path, range } => self.export(path, range).await,
            ReplCommand::When(_) | ReplCommand::Help { .. } | ReplCommand::Quit => {
                unreachable!("the shell handles when, help and quit itself")
            }
        }
    }

    async fn import(&mut self, path: &str, lenient: bool) -> Reply {
        let printer = &mut self.printer;
        let result = ical::import_file(
            &mut self.client,
            std::path::Path::new(path),
            self.view.zone,
            lenient,
            |line| {
                if !self.view.json {
                    printer(line)
                }
            },
        )
        .await;
        let report = match result {
            Ok(report) => report,
            Err(message) => {
                return Reply {
                    ok: false,
                    text: format!("error: {message}"),
                    json: json!({ "command": "import", "ok": false,
                                  "error": { "message": message } }),
                }
            }
        };
        let mut lines: Vec<String> = report.events.iter().flat_map(|e| e.lines()).collect();
        lines.push(report.summary());
        if let Some(error) = &report.stopped {
            lines.push(format!("error: the import stopped: {error}"));
        }
        Reply {
            ok: report.stopped.is_none(),
            text: lines.join("\n"),
            json: render::import_json(&report),
        }
    }

    async fn export(
        &mut self,
        path: Option<String>,
        range: crate::repl::grammar::AgendaRange,
    ) -> Result<Reply, ClientError> {
        let from = range.from.timestamp() / 60;
        let to = range.to.timestamp() / 60;
        let stamp = self.view.now.unwrap_or_else(chrono::Utc::now);
        let (text, count) = ical::export_range(&mut self.client, from, to, stamp).await?;
        let Some(path) = path else {
            return Ok(Reply::ok(
                text.trim_end().to_string(),
                json!({ "command": "export", "ok": true, "events": count, "calendar": text }),
            ));
        };
        if let Err(error) = std::fs::write(&path, &text) {
            let message = format!("cannot write {path}: {error}");
            return Ok(Reply {
                ok: false,
                text: format!("error: {message}"),
                json: json!({ "command": "export", "ok": false, "error": { "message": message } }),
            });
        }
        Ok(Reply::ok(
            format!("exported {count} event(s) to {path}"),
            json!({ "command": "export", "ok": true, "events": count, "path": path }),
        ))
    }

    fn remember_users(&self, names: &[String]) {
        if let Ok(mut known) = self.users.lock() {
            for name in names {
                if !known.contains(name) {
                    known.push(name.clone());
                }
            }
        }
    }

    /// Shows what arrived while the user was away and starts the live stream.
    async fn after_login(
        &mut self,
        name: String,
        command: &str,
        verb: &str,
    ) -> Result<Reply, ClientError> {
        let waiting = self.client.start_notifications().await?;
        if let Some(last) = waiting.last() {
            self.client.ack(last.seq).await?;
        }
        if let Ok(names) = self.client.users("").await {
            replace_users(&self.users, names);
        }
        let mut text = format!("{name} {verb}");
        if !waiting.is_empty() {
            text.push_str(&format!(
                "\n{} notification{} while you were away:",
                waiting.len(),
                if waiting.len() == 1 { "" } else { "s" }
            ));
            for notification in &waiting {
                text.push('\n');
                text.push_str(&render::render_notification(
                    notification,
                    self.view.zone,
                    self.view.style,
                ));
            }
        }
        let notifications: Vec<Value> = waiting.iter().map(render::notification_json).collect();
        Ok(Reply::ok(
            text,
            json!({ "command": command, "ok": true, "user": name, "notifications": notifications }),
        ))
    }

    async fn inbox(&mut self) -> Result<Reply, ClientError> {
        let (notifications, _) = self.client.inbox_after(Some(0)).await?;
        let text = if notifications.is_empty() {
            "your inbox is empty".to_owned()
        } else {
            notifications
                .iter()
                .map(|n| render::render_notification(n, self.view.zone, self.view.style))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let items: Vec<Value> = notifications
            .iter()
            .map(render::notification_json)
            .collect();
        Ok(Reply::ok(
            text,
            json!({ "command": "inbox", "ok": true, "notifications": items }),
        ))
    }

    async fn schedule(&mut self, schedule: Schedule) -> Result<Reply, ClientError> {
        if schedule.recurrence.is_some() {
            return self.schedule_series(schedule).await;
        }
        let visibility = if schedule.public {
            Visibility::Public
        } else {
            Visibility::Private {
                guests: schedule.guests.clone(),
            }
        };
        let draft = EventDraft {
            title: schedule.title.clone(),
            description: schedule.description.clone().unwrap_or_default(),
            start: schedule.start.timestamp() / 60,
            zone: schedule.zone.name().to_owned(),
            duration_minutes: schedule.duration_minutes,
            visibility,
            recurrence: None,
            timing: schedule_timing(&schedule),
        };
        let (event_id, version) = self.client.schedule(&draft).await?;
        let mut text = String::new();
        for notice in &schedule.notices {
            text.push_str(&format!("note: {notice}\n"));
        }
        let event = self.client.event(event_id).await?;
        text.push_str(&format!("scheduled #{event_id}\n"));
        text.push_str(&render::render_event(
            &event,
            self.view.zone,
            self.view.style,
        ));
        Ok(Reply::ok(
            text,
            json!({ "command": "schedule", "ok": true, "event_id": event_id,
                    "version": version, "notices": schedule.notices,
                    "event": render::event_json(&event) }),
        ))
    }

    async fn edit(&mut self, edit: Edit) -> Result<Reply, ClientError> {
        if edit.occurrence.is_some() {
            return self.edit_occurrence(edit).await;
        }
        let current = self.client.event(edit.id).await?;
        let visibility = match (edit.public, edit.guests) {
            (Some(true), _) => Some(Visibility::Public),
            (_, Some(guests)) => Some(Visibility::Private { guests }),
            (Some(false), None) => Some(Visibility::Private {
                guests: current.guests().to_vec(),
            }),
            (None, None) => None,
        };
        let notices = edit
            .start
            .as_ref()
            .map(|when| when.notices.clone())
            .unwrap_or_default();
        let changes = EventChanges {
            title: edit.title,
            description: edit.description,
            start: edit
                .start
                .as_ref()
                .map(|when| when.instant.timestamp() / 60),
            zone: edit.start.as_ref().map(|when| when.zone.name().to_owned()),
            duration_minutes: edit.duration_minutes,
            visibility,
        };
        let (event_id, version) = self.client.edit(edit.id, current.version, &changes).await?;
        let event = self.client.event(event_id).await?;
        let mut text = String::new();
        for notice in &notices {
            text.push_str(&format!("note: {notice}\n"));
        }
        text.push_str(&format!("updated #{event_id} to version {version}\n"));
        text.push_str(&render::render_event(
            &event,
            self.view.zone,
            self.view.style,
        ));
        Ok(Reply::ok(
            text,
            json!({ "command": "edit", "ok": true, "event_id": event_id, "version": version,
                    "event": render::event_json(&event) }),
        ))
    }

    async fn status(&mut self) -> Reply {
        let reports = self.client.cluster_status().await;
        status_command_reply(status_reply(reports))
    }
}

/// Wraps the node array of [`status_reply`] in the object every REPL command
/// prints in JSON mode; `almanac status` prints the bare array.
/// Recurring events: scheduling a series, and changing or cancelling one
/// occurrence or an occurrence and the following ones.
impl Executor {
    fn now_minute(&self) -> i64 {
        self.view.now.unwrap_or_else(chrono::Utc::now).timestamp() / 60
    }

    fn render_event_and_series(&self, event: &crate::calendar::EventView) -> String {
        let mut text = render::render_event(event, self.view.zone, self.view.style);
        if event.is_recurring() {
            text.push('\n');
            text.push_str(&render::render_series(
                event,
                self.view.zone,
                self.now_minute(),
                self.view.style,
            ));
        }
        text
    }

    /// Invalid input found by the REPL before any call, as a reply.
    fn invalid(&self, command: &str, field: &str, message: String) -> Result<Reply, ClientError> {
        let rejection = crate::calendar::Rejection::Invalid {
            field: field.to_string(),
            message,
        };
        let error = ClientError::Rejected(ApiRejection::Calendar(rejection));
        Ok(rejection_reply(command, error, &self.view))
    }

    async fn schedule_series(&mut self, schedule: Schedule) -> Result<Reply, ClientError> {
        let rule = schedule.recurrence.clone().expect("a recurring schedule");
        let requested = schedule.start.timestamp() / 60;
        let start = match recurrence::first_occurrence(
            &rule,
            requested,
            schedule.zone,
            schedule.duration_minutes,
        ) {
            Ok(start) => start,
            Err(message) => return self.invalid("schedule", "recurrence", message),
        };
        let visibility = if schedule.public {
            Visibility::Public
        } else {
            Visibility::Private {
                guests: schedule.guests.clone(),
            }
        };
        let draft = EventDraft {
            title: schedule.title.clone(),
            description: schedule.description.clone().unwrap_or_default(),
            start,
            zone: schedule.zone.name().to_owned(),
            duration_minutes: schedule.duration_minutes,
            visibility,
            recurrence: Some(crate::calendar::Recurrence {
                rule,
                ..Default::default()
            }),
            timing: schedule_timing(&schedule),
        };
        let receipt = self.client.schedule_series(&draft).await?;
        let event = self.client.event(receipt.event_id).await?;
        let mut text = String::new();
        for notice in &schedule.notices {
            text.push_str(&format!("note: {notice}\n"));
        }
        if let Some(until) = receipt.conflicts_checked_until {
            text.push_str(&format!(
                "note: the repeat has no end, so conflicts were checked up to {} only\n",
                crate::repl::dates::format_local(minute_time(until), self.view.zone)
            ));
        }
        text.push_str(&format!("scheduled #{} (repeats)\n", receipt.event_id));
        text.push_str(&self.render_event_and_series(&event));
        Ok(Reply::ok(
            text,
            json!({ "command": "schedule", "ok": true, "event_id": receipt.event_id,
                    "version": receipt.version, "notices": schedule.notices,
                    "conflicts_checked_until_minute": receipt.conflicts_checked_until,
                    "event": render::event_json(&event) }),
        ))
    }

    async fn edit_occurrence(&mut self, edit: Edit) -> Result<Reply, ClientError> {
        let wanted = edit.occurrence.clone().expect("an occurrence edit");
        let current = self.client.event(edit.id).await?;
        let original = match recurrence::resolve_occurrence(&current, &wanted) {
            Ok(original) => original,
            Err(message) => return self.invalid("edit", "occurrence", message),
        };
        let visibility = match (edit.public, edit.guests) {
            (Some(true), _) => Some(Visibility::Public),
            (_, Some(guests)) => Some(Visibility::Private { guests }),
            (Some(false), None) => Some(Visibility::Private {
                guests: current.guests().to_vec(),
            }),
            (None, None) => None,
        };
        // One occurrence keeps the series' zone; a new zone is sent only for
        // the following ones, and only when it differs.
        let zone = edit
            .start
            .as_ref()
            .map(|when| when.zone.name().to_owned())
            .filter(|zone| wanted.following && *zone != current.zone);
        let changes = EventChanges {
            title: edit.title,
            description: edit.description,
            start: edit
                .start
                .as_ref()
                .map(|when| when.instant.timestamp() / 60),
            zone,
            duration_minutes: edit.duration_minutes,
            visibility,
        };
        let receipt = self
            .client
            .edit_occurrence(
                edit.id,
                current.version,
                original,
                &changes,
                wanted.following,
            )
            .await?;
        let event = self.client.event(receipt.event_id).await?;
        let mut text = String::new();
        for notice in edit.start.iter().flat_map(|when| when.notices.iter()) {
            text.push_str(&format!("note: {notice}\n"));
        }
        if receipt.event_id != edit.id {
            text.push_str(&format!(
                "#{} now ends before {}; the following occurrences continue as #{}\n",
                edit.id, wanted.text, receipt.event_id
            ));
        } else {
            text.push_str(&format!(
                "updated the occurrence on {} of #{} (version {})\n",
                wanted.text, edit.id, receipt.version
            ));
        }
        text.push_str(&self.render_event_and_series(&event));
        Ok(Reply::ok(
            text,
            json!({ "command": "edit", "ok": true, "event_id": receipt.event_id,
                    "version": receipt.version, "occurrence_start_minute": original,
                    "following": wanted.following, "event": render::event_json(&event) }),
        ))
    }

    async fn delete_occurrence(
        &mut self,
        id: u64,
        wanted: recurrence::OccurrenceRef,
    ) -> Result<Reply, ClientError> {
        let current = self.client.event(id).await?;
        let original = match recurrence::resolve_occurrence(&current, &wanted) {
            Ok(original) => original,
            Err(message) => return self.invalid("delete", "occurrence", message),
        };
        self.client
            .delete_occurrence(id, original, wanted.following)
            .await?;
        let what = if wanted.following {
            format!("the occurrences of #{id} from {} on", wanted.text)
        } else {
            format!("the occurrence of #{id} on {}", wanted.text)
        };
        Ok(Reply::ok(
            format!("cancelled {what}; its participants were notified"),
            json!({ "command": "delete", "ok": true, "event_id": id,
                    "occurrence_start_minute": original, "following": wanted.following }),
        ))
    }
}

fn minute_time(minute: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or_default()
}

fn status_command_reply(reply: Reply) -> Reply {
    Reply {
        json: json!({ "command": "status", "ok": reply.ok, "nodes": reply.json }),
        ..reply
    }
}

/// Renders the reports of `Client::cluster_status` as a table or JSON.
pub fn status_reply(reports: Vec<(String, Result<crate::client::NodeReport, String>)>) -> Reply {
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (address, report) in reports {
        match report {
            Ok(report) => {
                items.push(
                    json!({ "id": report.id, "address": address, "role": report.role,
                    "view": report.view, "op": report.op, "commit": report.commit,
                    "lag": report.lag }),
                );
                rows.push(StatusRow {
                    id: report.id,
                    address,
                    role: report.role,
                    view: report.view,
                    op: report.op,
                    commit: report.commit,
                    lag: report.lag,
                    reachable: true,
                    error: String::new(),
                });
            }
            Err(error) => {
                items.push(json!({ "address": address, "error": error }));
                rows.push(StatusRow {
                    id: 0,
                    address,
                    role: String::new(),
                    view: 0,
                    op: 0,
                    commit: 0,
                    lag: 0,
                    reachable: false,
                    error,
                });
            }
        }
    }
    // A node in normal status (primary or backup) belongs to a working
    // view; reachable nodes that are all electing or recovering do not.
    let ok = rows
        .iter()
        .any(|row| row.reachable && (row.role == "primary" || row.role == "backup"));
    Reply {
        ok,
        text: render::render_status(&rows),
        json: Value::Array(items),
    }
}

/// Sets the names that Tab completes to a full listing, which drops the
/// accounts deleted since the last one.
fn replace_users(users: &KnownUsers, names: Vec<String>) {
    if let Ok(mut known) = users.lock() {
        *known = names;
    }
}

fn forget_user(users: &KnownUsers, name: &str) {
    if let Ok(mut known) = users.lock() {
        known.retain(|known_name| known_name != name);
    }
}

fn command_name(command: &ReplCommand) -> &'static str {
    match command {
        ReplCommand::Register { .. } => "register",
        ReplCommand::Login { .. } => "login",
        ReplCommand::Logout => "logout",
        ReplCommand::DeleteAccount => "delete-account",
        ReplCommand::Users { .. } => "users",
        ReplCommand::Whois { .. } => "whois",
        ReplCommand::Show { .. } => "show",
        ReplCommand::Delete { .. } => "delete",
        ReplCommand::Inbox => "inbox",
        ReplCommand::Status => "status",
        ReplCommand::When(_) => "when",
        ReplCommand::Help { .. } => "help",
        ReplCommand::Quit => "quit",
        ReplCommand::Schedule(_) => "schedule",
        ReplCommand::Edit(_) => "edit",
        ReplCommand::Agenda(_) => "agenda",
        ReplCommand::Search(_) => "search",
        ReplCommand::DeleteOccurrence { .. } => "delete",
        ReplCommand::Plan(plan) => plan.name(),
        ReplCommand::Import { .. } => "import",
        ReplCommand::Export { .. } => "export",
    }
}

/// Timing of a typed event: `all day` makes an all-day event, in the zone
/// the date was entered in; everything else is zoned.
fn schedule_timing(schedule: &Schedule) -> Timing {
    match schedule.all_day {
        Some(_) => Timing::AllDay,
        None => Timing::Zoned,
    }
}

/// Fetches the agenda of `[from, to)` for a viewer in `zone`. The
/// server returns events at instants resolved in each event's own zone, so
/// the scan is widened for floating and all-day events, which move into the
/// viewer's zone, and then cut back to the range there.
pub(crate) async fn agenda_in_zone(
    client: &mut Client,
    from: UnixMinute,
    to: UnixMinute,
    zone: Tz,
) -> Result<Vec<EventView>, ClientError> {
    let (scan_from, scan_to) = scan_range(from, to);
    let events = client.agenda(scan_from, scan_to).await?;
    Ok(agenda_for_viewer(events, from, to, zone))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn known(names: &[&str]) -> KnownUsers {
        Arc::new(Mutex::new(
            names.iter().map(|name| name.to_string()).collect(),
        ))
    }

    fn names(users: &KnownUsers) -> Vec<String> {
        users.lock().expect("lock").clone()
    }

    #[test]
    fn status_command_is_object() {
        let reports = vec![(
            "127.0.0.1:1".to_owned(),
            Err::<crate::client::NodeReport, _>("refused".to_owned()),
        )];
        let reply = status_command_reply(status_reply(reports));
        assert!(!reply.ok);
        assert_eq!(reply.json["command"], "status");
        assert_eq!(reply.json["ok"], false);
        assert_eq!(reply.json["nodes"][0]["address"], "127.0.0.1:1");
        assert_eq!(reply.json["nodes"][0]["error"], "refused");
    }

    #[test]
    fn stopped_read_only_warns_nothing() {
        let reply = stopped_reply(&ReplCommand::Show { id: 7 });
        assert!(!reply.ok);
        assert_eq!(reply.text, "\nerror: stopped waiting for `show`");
        assert_eq!(reply.json["command"], "show");
        assert_eq!(reply.json["error"]["interrupted"], true);
    }

    #[test]
    fn stopped_change_may_still_happen() {
        let reply = stopped_reply(&ReplCommand::Delete { id: 7 });
        assert!(!reply.ok);
        assert!(
            reply.text.contains("the cluster may still carry it out"),
            "{}",
            reply.text
        );
        assert_eq!(reply.json["command"], "delete");
    }

    #[test]
    fn full_listing_replaces_known_users() {
        let users = known(&["alice", "carol"]);
        replace_users(&users, vec!["alice".into(), "bob".into()]);
        assert_eq!(names(&users), ["alice", "bob"]);
    }

    #[test]
    fn deleted_account_is_forgotten() {
        let users = known(&["alice", "bob", "carol"]);
        forget_user(&users, "bob");
        assert_eq!(names(&users), ["alice", "carol"]);
        forget_user(&users, "nobody");
        assert_eq!(names(&users), ["alice", "carol"]);
    }
}
