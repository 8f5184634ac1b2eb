//! The REPL's main loop: read a line (rustyline in a terminal, plain lines
//! from a pipe), parse it, prompt for a password where needed, hand it to the
//! executor thread and print the reply.
//!
//! Scripted mode (stdin is not a terminal) skips blank lines and `#`
//! comments, reads each password from the next line, and stops at the first
//! failed command with exit status 1 unless `--keep-going` is given. It does
//! not ask to confirm `delete-account`, which a terminal does.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::repl::dates::{format_local, zone_from_name, DateContext, When};
use crate::repl::executor::{self, Job, Printer, Reply, View};
use crate::repl::grammar::{self, GrammarError, ReplCommand, COMMANDS};
use crate::repl::helper::{KnownUsers, ReplHelper};
use crate::repl::render::Style;

/// The REPL's output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The REPL's settings, from the command line.
#[derive(Clone, Debug)]
pub struct ReplOptions {
    pub zone: Tz,
    pub keep_going: bool,
    pub output: OutputFormat,
    /// Fixed reference time for date expressions; None means the clock.
    pub now: Option<DateTime<Utc>>,
    pub history: Option<PathBuf>,
}

impl ReplOptions {
    /// Builds the options from flags. The zone comes from `--tz`, then `TZ`,
    /// then the system's zone, then UTC. A `TZ` that names no IANA zone is
    /// an error, as the same value in `--tz` is, because a wrong zone would
    /// place every typed event at the wrong instant.
    pub fn from_flags(
        tz: Option<&str>,
        keep_going: bool,
        output: OutputFormat,
        now: Option<&str>,
        history: Option<PathBuf>,
    ) -> Result<ReplOptions, String> {
        let zone = match tz {
            Some(name) => zone_from_name(name).ok_or_else(|| {
                format!("unknown time zone {name:?} in --tz: use an IANA name such as Europe/Paris")
            })?,
            None => default_zone(std::env::var("TZ").ok().as_deref())?,
        };
        let now = match now {
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|error| {
                        format!("invalid --now {text:?}: {error}; use RFC 3339, e.g. 2027-01-04T09:00:00Z")
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        Ok(ReplOptions {
            zone,
            keep_going,
            output,
            now,
            history,
        })
    }

    fn date_context(&self) -> DateContext {
        DateContext {
            now: self.now.unwrap_or_else(Utc::now),
            zone: self.zone,
        }
    }
}

/// Returns the zone that `TZ` names, or the system's zone when `TZ` is
/// unset, empty or names the system's zone file.
fn default_zone(tz: Option<&str>) -> Result<Tz, String> {
    let system = || {
        iana_time_zone::get_timezone()
            .ok()
            .and_then(|name| zone_from_name(&name))
            .unwrap_or(Tz::UTC)
    };
    // POSIX allows a leading colon, and a path into the zone database.
    let name = tz.unwrap_or_default().trim_start_matches(':');
    let name = match name.split_once("zoneinfo/") {
        Some((_, zone)) => zone,
        None => name,
    };
    if name.is_empty() || name == "/etc/localtime" {
        return Ok(system());
    }
    zone_from_name(name).ok_or_else(|| {
        format!(
            "unknown time zone {name:?} in TZ: set TZ to an IANA name such as Europe/Paris, \
             unset it, or pass --tz"
        )
    })
}

/// The source of input lines.
enum Input {
    /// A terminal, with the history file that each entered line is appended
    /// to at once, so that a killed REPL keeps its history.
    Terminal(
        Box<rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory>>,
        HeldLines,
        Option<PathBuf>,
    ),
    Script(std::io::Lines<std::io::StdinLock<'static>>),
}

/// The outcome of a password prompt.
enum PasswordInput {
    Typed(String),
    /// Ctrl-C, or Ctrl-D on an empty line, at a terminal's prompt.
    Cancelled,
}

/// Notification lines held back while a password prompt, which rustyline
/// does not manage, owns the terminal line. `None` means lines print at once.
#[derive(Clone, Default)]
struct HeldLines(Arc<Mutex<Option<Vec<String>>>>);

impl HeldLines {
    /// Starts holding lines back until [`HeldLines::release`].
    fn hold(&self) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some(Vec::new());
        }
    }

    /// Stops holding lines back and returns those held, oldest first.
    fn release(&self) -> Vec<String> {
        match self.0.lock() {
            Ok(mut held) => held.take().unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Keeps `line` while lines are held, or returns it to print now.
    fn keep(&self, line: String) -> Option<String> {
        match self.0.lock() {
            Ok(mut held) => match held.as_mut() {
                Some(lines) => {
                    lines.push(line);
                    None
                }
                None => Some(line),
            },
            Err(_) => Some(line),
        }
    }
}

impl Input {
    /// Returns the next line to run, or None at the end of input.
    fn next_line(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Terminal(editor, _, history) => loop {
                match editor.readline(prompt) {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                            // Appending keeps the lines of other REPLs.
                            let failed = history.as_ref().and_then(|path| {
                                editor.append_history(path).err().map(|error| (path, error))
                            });
                            if let Some((path, error)) = failed {
                                eprintln!(
                                    "warning: cannot write the history file {}: {error}; \
                                     this session's lines are not kept (choose another with --history)",
                                    path.display()
                                );
                                *history = None;
                            }
                        }
                        return Some(line);
                    }
                    // Ctrl-C clears the line, as in a shell.
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(_) => return None,
                }
            },
            Input::Script(lines) => loop {
                let line = lines.next()?.ok()?;
                let trimmed = line.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                return Some(line);
            },
        }
    }

    /// Reads a password: hidden from the terminal, or the next script line.
    /// Returns None when a script ended or the terminal cannot be read.
    fn password(&mut self, prompt: &str) -> Option<PasswordInput> {
        match self {
            Input::Terminal(_, held, _) => {
                held.hold();
                let read = rpassword::prompt_password(prompt);
                let password = match read {
                    Ok(password) => Some(PasswordInput::Typed(password)),
                    // Ctrl-C already ended the prompt's line; Ctrl-D did not.
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {
                        Some(PasswordInput::Cancelled)
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                        println!();
                        Some(PasswordInput::Cancelled)
                    }
                    Err(error) => {
                        eprintln!("error: cannot read the password from the terminal: {error}");
                        None
                    }
                };
                for line in held.release() {
                    println!("{line}");
                }
                password
            }
            Input::Script(lines) => Some(PasswordInput::Typed(lines.next()?.ok()?)),
        }
    }

    /// Asks a yes/no question in a terminal and returns true only for the
    /// answer "yes". A script is not asked, because it means every command
    /// it contains. Returns None when the input ended at the question.
    fn confirm(&mut self, prompt: &str) -> Option<bool> {
        match self {
            Input::Terminal(editor, ..) => match editor.readline(prompt) {
                Ok(answer) => Some(is_yes(&answer)),
                Err(
                    rustyline::error::ReadlineError::Interrupted
                    | rustyline::error::ReadlineError::Eof,
                ) => Some(false),
                Err(_) => None,
            },
            Input::Script(_) => Some(true),
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Input::Terminal(..))
    }
}

/// Checks the no-color.org convention: colours are off when `NO_COLOR`
/// is set to a non-empty value.
pub fn no_color_requested(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_some_and(|value| !value.is_empty())
}

/// Decides whether to print colours: only to a terminal, and not when
/// [`no_color_requested`].
fn wants_color(stdin_tty: bool, stdout_tty: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stdin_tty && stdout_tty && !no_color_requested(no_color)
}

fn is_yes(answer: &str) -> bool {
    answer.trim().eq_ignore_ascii_case("yes")
}

/// Builds the reply for a `delete-account` the user did not confirm. It is
/// not ok, so the shell keeps the user logged in.
fn deletion_declined() -> Reply {
    Reply {
        ok: false,
        text: "nothing was deleted: answer yes to delete your account".into(),
        json: json!({ "command": "delete-account", "ok": false,
                      "error": { "message": "deletion not confirmed" } }),
    }
}

fn history_path(options: &ReplOptions) -> Option<PathBuf> {
    options.history.clone().or_else(|| {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".almanac_history"))
    })
}

/// Runs the REPL against the nodes at `addresses` until `quit`, the end of
/// input, or (in scripted mode) the first failure.
pub fn run(addresses: Vec<String>, options: ReplOptions) -> ExitCode {
    let interactive = std::io::stdin().is_terminal();
    let color = wants_color(
        interactive,
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let users: KnownUsers = Arc::new(Mutex::new(Vec::new()));
    let mut input = if interactive {
        match terminal_input(&users, color, &options) {
            Ok(editor) => Input::Terminal(
                Box::new(editor),
                HeldLines::default(),
                history_path(&options),
            ),
            Err(error) => {
                eprintln!("error: cannot set up the terminal: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Input::Script(std::io::stdin().lock().lines())
    };
    let printer = make_printer(&mut input);
    let view = View {
        zone: options.zone,
        style: Style::new(color),
        json: options.output == OutputFormat::Json,
        now: options.now,
    };
    let catch_interrupts = input.is_terminal();
    let jobs = match executor::spawn(addresses.clone(), view, printer, users, catch_interrupts) {
        Ok(jobs) => jobs,
        Err(error) => {
            eprintln!("error: cannot start the client thread: {error}");
            return ExitCode::FAILURE;
        }
    };
    if input.is_terminal() {
        println!(
            "Almanac, with nodes at {}, times in {}. Type help to list commands, quit to leave.",
            addresses.join(", "),
            options.zone.name()
        );
    }
    read_eval_print(&mut input, &jobs, &options)
}

fn terminal_input(
    users: &KnownUsers,
    color: bool,
    options: &ReplOptions,
) -> rustyline::Result<rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory>> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor = rustyline::Editor::with_config(config)?;
    editor.set_helper(Some(ReplHelper {
        users: users.clone(),
        color,
    }));
    if let Some(path) = history_path(options) {
        let _ = editor.load_history(&path);
    }
    Ok(editor)
}

/// Notifications go above the prompt in a terminal (rustyline redraws the
/// half-typed line), after the answer while a password prompt is open, and
/// to stdout otherwise.
fn make_printer(input: &mut Input) -> Printer {
    if let Input::Terminal(editor, held, _) = input {
        if let Ok(mut external) = editor.create_external_printer() {
            use rustyline::ExternalPrinter;
            let held = held.clone();
            return Box::new(move |line: String| {
                if let Some(line) = held.keep(line) {
                    let _ = external.print(format!("{line}\n"));
                }
            });
        }
    }
    Box::new(|line: String| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    })
}

fn read_eval_print(
    input: &mut Input,
    jobs: &mpsc::UnboundedSender<Job>,
    options: &ReplOptions,
) -> ExitCode {
    let json = options.output == OutputFormat::Json;
    let mut failed = false;
    let mut user: Option<String> = None;
    loop {
        let prompt = match &user {
            Some(name) => format!("{name}> "),
            None => "almanac> ".to_owned(),
        };
        let Some(line) = input.next_line(&prompt) else {
            break;
        };
        let reply = match grammar::parse_command(&line, &options.date_context()) {
            Err(GrammarError::Empty) => continue,
            Err(error) => Reply {
                ok: false,
                text: format!("error: {error}"),
                json: json!({ "command": line.split_whitespace().next(), "ok": false,
                              "error": { "message": error.to_string() } }),
            },
            Ok(ReplCommand::Quit) => break,
            Ok(ReplCommand::Help { command }) => help_reply(command),
            Ok(ReplCommand::When(when)) => when_reply(&when, options.zone),
            Ok(command) => {
                let name = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                match run_remote(input, jobs, command) {
                    Some(reply) => reply,
                    None if input.is_terminal() => break,
                    None => {
                        // A script that ends at a password prompt is missing
                        // the password line: that is a failed command.
                        let message = format!(
                            "the input ended before the password for `{}`; put it on the line after the command",
                            line.trim()
                        );
                        print_reply(
                            &Reply {
                                ok: false,
                                text: format!("error: {message}"),
                                json: json!({ "command": name, "ok": false,
                                              "error": { "message": message } }),
                            },
                            json,
                        );
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        if reply.ok {
            if let Some(name) = logged_in_user(&reply) {
                user = name;
            }
        }
        print_reply(&reply, json);
        if !reply.ok {
            failed = true;
            if !input.is_terminal() && !options.keep_going {
                return ExitCode::FAILURE;
            }
        }
    }
    if failed && !input.is_terminal() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The user a reply logged in (Some(Some)) or out (Some(None)), if any.
fn logged_in_user(reply: &Reply) -> Option<Option<String>> {
    match reply.json.get("command").and_then(|c| c.as_str()) {
        Some("login" | "register") => Some(reply.json["user"].as_str().map(str::to_owned)),
        Some("logout" | "delete-account") => Some(None),
        _ => None,
    }
}

fn print_reply(reply: &Reply, json: bool) {
    let mut stdout = std::io::stdout().lock();
    if json {
        let _ = writeln!(stdout, "{}", reply.json);
    } else if reply.ok {
        let _ = writeln!(stdout, "{}", reply.text);
    } else {
        drop(stdout);
        eprintln!("{}", reply.text);
        return;
    }
    let _ = stdout.flush();
}

/// Sends a command to the executor, prompting for a password first where
/// the command needs one. None when the input ended at a password prompt.
fn run_remote(
    input: &mut Input,
    jobs: &mpsc::UnboundedSender<Job>,
    command: ReplCommand,
) -> Option<Reply> {
    let password = match &command {
        ReplCommand::Login { user } => match input.password(&format!("Password for {user}: "))? {
            PasswordInput::Typed(password) => Some(password),
            PasswordInput::Cancelled => return Some(password_cancelled("login")),
        },
        ReplCommand::Register { user } => {
            let first = match input.password(&format!("Choose a password for {user}: "))? {
                PasswordInput::Typed(password) => password,
                PasswordInput::Cancelled => return Some(password_cancelled("register")),
            };
            if input.is_terminal() {
                let again = match input.password("Repeat it: ")? {
                    PasswordInput::Typed(password) => password,
                    PasswordInput::Cancelled => return Some(password_cancelled("register")),
                };
                if again != first {
                    return Some(Reply {
                        ok: false,
                        text: "error: the two passwords differ; nothing was registered".into(),
                        json: json!({ "command": "register", "ok": false,
                                      "error": { "message": "the two passwords differ" } }),
                    });
                }
            }
            Some(first)
        }
        ReplCommand::DeleteAccount => {
            let question = "Delete your account and cancel every event you host? \
                            Type yes to confirm: ";
            if !input.confirm(question)? {
                return Some(deletion_declined());
            }
            None
        }
        _ => None,
    };
    let (reply, receiver) = oneshot::channel();
    let job = Job {
        command,
        password,
        reply,
    };
    if jobs.send(job).is_err() {
        return Some(client_thread_gone());
    }
    Some(
        receiver
            .blocking_recv()
            .unwrap_or_else(|_| client_thread_gone()),
    )
}

/// Builds the reply to a password prompt left with Ctrl-C or Ctrl-D.
fn password_cancelled(command: &str) -> Reply {
    Reply {
        ok: false,
        text: format!("{command} cancelled; nothing was sent"),
        json: json!({ "command": command, "ok": false,
                      "error": { "message": "cancelled at the password prompt" } }),
    }
}

fn client_thread_gone() -> Reply {
    Reply {
        ok: false,
        text: "error: the client thread stopped; restart almanac".into(),
        json: json!({ "ok": false, "error": { "message": "the client thread stopped" } }),
    }
}

fn help_reply(command: Option<&'static str>) -> Reply {
    let text = match command.and_then(grammar::find_command) {
        Some(help) => {
            let mut text = format!("{}\n  {}", help.usage, help.summary);
            if !help.examples.is_empty() {
                text.push_str("\nexamples:");
                for example in help.examples {
                    text.push_str(&format!("\n  {example}"));
                }
            }
            text
        }
        None => {
            let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let mut lines = vec!["commands (help COMMAND for details):".to_owned()];
            for help in COMMANDS {
                lines.push(format!("  {:width$}  {}", help.name, help.summary));
            }
            lines.join("\n")
        }
    };
    Reply {
        ok: true,
        json: json!({ "command": "help", "ok": true, "text": text }),
        text,
    }
}

fn when_reply(when: &When, viewer_zone: Tz) -> Reply {
    let mut text = match when.all_day {
        Some(date) => format!("all day {date} ({})", when.zone.name()),
        None => {
            let mut text = format!(
                "{} ({})",
                format_local(when.instant, when.zone),
                when.zone.name()
            );
            if when.zone != viewer_zone {
                text.push_str(&format!(
                    ", {} in {}",
                    format_local(when.instant, viewer_zone),
                    viewer_zone.name()
                ));
            }
            text.push_str(&format!(", {}", when.instant.format("%Y-%m-%dT%H:%MZ")));
            text
        }
    };
    for notice in &when.notices {
        text.push_str(&format!("\nnote: {notice}"));
    }
    Reply {
        ok: true,
        json: json!({ "command": "when", "ok": true,
                      "instant": when.instant.to_rfc3339(),
                      "zone": when.zone.name(),
                      "local": format_local(when.instant, when.zone),
                      "all_day": when.all_day.map(|d| d.to_string()),
                      "notices": when.notices }),
        text,
    }
}

/// `almanac status`: one row per configured node.
pub fn print_status(addresses: Vec<String>, output: OutputFormat) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let reports = local.block_on(&runtime, async move {
        let mut reports = Vec::new();
        for address in addresses {
            let report =
                crate::client::node_status_of(&crate::node::net::TokioConnector, &address).await;
            reports.push((address, report));
        }
        reports
    });
    let reply = executor::status_reply(reports);
    match output {
        OutputFormat::Json => println!("{}", reply.json),
        OutputFormat::Text => println!("{}", reply.text),
    }
    if reply.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_only_on_terminal_without_no_color() {
        assert!(wants_color(true, true, None));
        assert!(wants_color(true, true, Some("".into())));
        assert!(!wants_color(true, true, Some("1".into())));
        assert!(!wants_color(false, true, None));
        assert!(!wants_color(true, false, None));
    }

    #[test]
    fn tz_names_iana_zone() {
        assert_eq!(default_zone(Some("Europe/Paris")), Ok(Tz::Europe__Paris));
        assert_eq!(default_zone(Some(":Asia/Tokyo")), Ok(Tz::Asia__Tokyo));
        assert_eq!(
            default_zone(Some("/usr/share/zoneinfo/America/New_York")),
            Ok(Tz::America__New_York)
        );
    }

    #[test]
    fn tz_unknown_is_error() {
        let error = default_zone(Some("Foo/Bar")).unwrap_err();
        assert!(error.contains("\"Foo/Bar\" in TZ"), "{error}");
        assert!(error.contains("Europe/Paris"), "{error}");
        let posix = default_zone(Some("CET-1CEST,M3.5.0,M10.5.0/3"));
        assert!(posix.is_err(), "{posix:?}");
    }

    #[test]
    fn tz_unset_or_empty_is_system() {
        assert_eq!(default_zone(None), default_zone(Some("")));
        assert_eq!(default_zone(None), default_zone(Some(":/etc/localtime")));
    }

    #[test]
    fn held_lines_wait_for_release() {
        let held = HeldLines::default();
        assert_eq!(held.keep("before".into()), Some("before".into()));
        held.hold();
        assert_eq!(held.keep("first".into()), None);
        assert_eq!(held.keep("second".into()), None);
        assert_eq!(held.release(), ["first", "second"]);
        assert_eq!(held.keep("after".into()), Some("after".into()));
        assert!(held.release().is_empty());
    }

    #[test]
    fn confirmation_needs_yes() {
        assert!(is_yes("yes"));
        assert!(is_yes("  YES \n"));
        assert!(!is_yes("y"));
        assert!(!is_yes(""));
        assert!(!is_yes("yes please"));
    }

    #[test]
    fn declined_deletion_is_failure() {
        let reply = deletion_declined();
        assert!(!reply.ok);
        assert_eq!(reply.json["command"], "delete-account");
        assert_eq!(reply.json["ok"], false);
    }
}
