//! The REPL's command language: one line in, one [`ReplCommand`] out.
//!
//! A line is split into words at whitespace. A word that starts with a double
//! quote (`"` or `“`) runs to the matching closing quote and may contain
//! spaces. Inside it, `\"` is a quote and `\\` a backslash. Quoted words are
//! always values, never keywords, so `search "to"` searches for the word
//! "to". Command names and keywords ignore letter case.
//!
//! [`COMMANDS`] lists every command with its usage line, for `help`, `help
//! COMMAND` and tab completion. Dates, times and durations are read by
//! [`crate::repl::dates`].

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::calendar::Rejection;
use crate::repl::dates::{
    self, parse_duration, parse_point, parse_span, resolve_end, resolve_start, Cursor, DateContext,
    DateError, Role, When,
};
use crate::repl::planning::{self, PlanCommand};
use crate::repl::recurrence::{self, OccurrenceRef, RepeatEnd};

/// An event id as the calendar shows it.
pub type EventId = u64;

/// One command's entry in `help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHelp {
    /// The word that starts the command.
    pub name: &'static str,
    /// The usage line: `[ ]` marks optional parts, `|` alternatives.
    pub usage: &'static str,
    /// A one-line description of the command.
    pub summary: &'static str,
    /// Lines that parse, to show under `help COMMAND`.
    pub examples: &'static [&'static str],
}

/// Every command, in the order `help` lists them. `exit` and `exists` are
/// listed as their own entries so that completion offers them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "register",
        usage: "register USER",
        summary: "create an account (asks for a password) and log in",
        examples: &["register alice"],
    },
    CommandHelp {
        name: "login",
        usage: "login USER",
        summary: "log in to an existing account (asks for the password)",
        examples: &["login alice"],
    },
    CommandHelp {
        name: "logout",
        usage: "logout",
        summary: "end the session",
        examples: &["logout"],
    },
    CommandHelp {
        name: "delete-account",
        usage: "delete-account",
        summary: "delete your account and cancel the events you host; a terminal asks first",
        examples: &["delete-account"],
    },
    CommandHelp {
        name: "users",
        usage: "users [PATTERN]",
        summary: "list user names, optionally only those matching a * and ? pattern",
        examples: &["users", "users b*"],
    },
    CommandHelp {
        name: "whois",
        usage: "whois USER",
        summary: "tell whether a user exists",
        examples: &["whois bob"],
    },
    CommandHelp {
        name: "exists",
        usage: "exists USER",
        summary: "tell whether a user exists (same as whois)",
        examples: &["exists bob"],
    },
    CommandHelp {
        name: "schedule",
        usage: "schedule [public|private] [\"TITLE\"] [REPEAT] WHEN [END | to END | for DURATION] \
                [N times] [TITLE...] [until DATE] [with USER, USER...] [about \"DESCRIPTION\"]",
        summary: "create an event; private with no guests unless told otherwise; REPEAT is \
                  daily, weekdays, every monday, every 2 weeks on tue,thu, monthly on the last \
                  friday, yearly, ...",
        examples: &[
            "schedule \"Standup\" weekdays 9:15 for 15m with bob, carol",
            "schedule \"Review\" every 2 weeks on tue,thu 14:00 for 1h until 2027-06-30",
            "schedule \"Retro\" monthly on the last friday 16:00 for 1h 5 times",
            "schedule \"Team sync\" tomorrow 10:00 for 45m with bob, carol",
            "schedule public \"Town hall\" 2027-01-05 18:00 for 2h",
            "schedule tomorrow 20:00 24:00 Farewell party",
            "schedule \"Offsite\" 2027-03-01 all day for 2d about \"Bring boots\"",
        ],
    },
    CommandHelp {
        name: "edit",
        usage: "edit ID [occurrence DATE [and following]] [title \"TITLE\"] \
                [description \"TEXT\"] [at WHEN] [for DURATION] [with USER, USER...] \
                [public|private]",
        summary: "change one or more fields of an event you host, or of one occurrence \
                  (and the following ones) of a recurring event",
        examples: &[
            "edit 12 occurrence 2027-01-11 at 2027-01-11 10:00",
            "edit 12 occurrence 2027-02-01 and following at 2027-02-01 9:30 for 20m",
            "edit 12 at fri 14:00 for 1h30m",
            "edit 12 title \"Team sync (moved)\" with bob dave",
            "edit 12 public",
        ],
    },
    CommandHelp {
        name: "show",
        usage: "show ID",
        summary: "show one event with its time, host, visibility and guests, and for a \
                  recurring event its rule and next occurrences",
        examples: &["show 12"],
    },
    CommandHelp {
        name: "delete",
        usage: "delete ID [occurrence DATE [and following]]",
        summary: "delete an event you host, or one occurrence (and the following ones) of a \
                  recurring event; guests are notified",
        examples: &[
            "delete 12",
            "delete 12 occurrence 2027-01-18",
            "delete 12 occurrence 2027-03-01 and following",
        ],
    },
    CommandHelp {
        name: "agenda",
        usage: "agenda [today | tomorrow | week | next week | DATE | FROM to TO]",
        summary: "list your events in a range; the default is the 7 days from today",
        examples: &[
            "agenda",
            "agenda tomorrow",
            "agenda next week",
            "agenda 2027-01-05",
            "agenda mon to fri",
        ],
    },
    CommandHelp {
        name: "search",
        usage: "search [host USER] [from WHEN] [to WHEN] [TEXT...]",
        summary: "find visible events by host, time range and words in title or description",
        examples: &[
            "search budget",
            "search host bob from 2027-01-01 to 2027-01-31",
            "search from tomorrow \"town hall\"",
        ],
    },
    CommandHelp {
        name: "accept",
        usage: "accept ID [occurrence DATE]",
        summary: "accept an invitation, or one occurrence of a recurring one; the host is notified",
        examples: &["accept 12", "accept 12 occurrence 2027-01-18"],
    },
    CommandHelp {
        name: "decline",
        usage: "decline ID [occurrence DATE]",
        summary: "decline an invitation, or one occurrence of a recurring one; it no longer \
                  blocks your time",
        examples: &["decline 12", "decline 12 occurrence 2027-01-18"],
    },
    CommandHelp {
        name: "tentative",
        usage: "tentative ID [occurrence DATE]",
        summary: "respond to an invitation, or one occurrence of a recurring one, with maybe; \
                  your time stays blocked",
        examples: &["tentative 12", "tentative 12 occurrence 2027-01-18 9:00"],
    },
    CommandHelp {
        name: "history",
        usage: "history ID",
        summary: "list every change of an event: who, what and when, and the responses",
        examples: &["history 12"],
    },
    CommandHelp {
        name: "workhours",
        usage: "workhours HH:MM-HH:MM DAYS [ZONE]",
        summary: "set your working hours, which free and suggest search within",
        examples: &[
            "workhours 08:30-16:30 mon-fri",
            "workhours 10:00-18:00 mon,tue,thu Europe/Paris",
        ],
    },
    CommandHelp {
        name: "free",
        usage: "free USER[, USER...] [on DATE | between DATE and DATE] [for DURATION]",
        summary: "list the slots in which all these users are in working hours and free",
        examples: &[
            "free bob, carol",
            "free bob on fri for 1h",
            "free bob carol between mon and wed",
        ],
    },
    CommandHelp {
        name: "suggest",
        usage: "suggest \"TITLE\" for DURATION with USER[, USER...] \
                [this week | next week | on DATE | between DATE and DATE]",
        summary: "propose the first slots that fit you and the guests; then schedule suggestion N",
        examples: &[
            "suggest \"Planning\" for 1h with bob, carol this week",
            "suggest \"Retro\" for 30m with bob next week",
        ],
    },
    CommandHelp {
        name: "week",
        usage: "week [DATE | next week]",
        summary: "show the week (Monday to Sunday) as a grid of the hours that have events",
        examples: &["week", "week next week", "week 2027-01-14"],
    },
    CommandHelp {
        name: "month",
        usage: "month [next | YYYY-MM | MONTH [YEAR]]",
        summary: "show a month as a calendar with your busy days marked",
        examples: &["month", "month next", "month 2027-02", "month march 2027"],
    },
    CommandHelp {
        name: "inbox",
        usage: "inbox",
        summary: "list all your notifications, including those already shown",
        examples: &["inbox"],
    },
    CommandHelp {
        name: "status",
        usage: "status",
        summary: "show each node's role, view, op and commit numbers",
        examples: &["status"],
    },
    CommandHelp {
        name: "import",
        usage: "import FILE.ics [lenient]",
        summary: "add the events of an iCalendar file, reporting each one imported or skipped; \
                  lenient accepts events with both DTEND and DURATION (DTEND wins)",
        examples: &[
            "import holidays.ics",
            "import \"my calendar.ics\"",
            "import outlook.ics lenient",
        ],
    },
    CommandHelp {
        name: "export",
        usage: "export [FILE.ics] [today | tomorrow | week | next week | DATE | FROM to TO]",
        summary: "write your visible events as iCalendar to a file or the screen; \
                  the default range is a year back to two years ahead",
        examples: &[
            "export",
            "export backup.ics",
            "export team.ics 2027-01-01 to 2027-03-31",
        ],
    },
    CommandHelp {
        name: "when",
        usage: "when WHEN",
        summary: "show how a date or time expression is read, without changing anything",
        examples: &[
            "when fri 14:00",
            "when 2027-01-05 10:00 Europe/Paris",
            "when in 3 days",
        ],
    },
    CommandHelp {
        name: "help",
        usage: "help [COMMAND]",
        summary: "list the commands, or show one command's usage and examples",
        examples: &["help", "help schedule"],
    },
    CommandHelp {
        name: "quit",
        usage: "quit",
        summary: "leave the REPL",
        examples: &["quit"],
    },
    CommandHelp {
        name: "exit",
        usage: "exit",
        summary: "leave the REPL (same as quit)",
        examples: &["exit"],
    },
];

/// Looks up a command's help entry by name, ignoring letter case.
pub fn find_command(name: &str) -> Option<&'static CommandHelp> {
    COMMANDS
        .iter()
        .find(|help| help.name.eq_ignore_ascii_case(name))
}

/// A parsed REPL line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplCommand {
    Register {
        user: String,
    },
    Login {
        user: String,
    },
    Logout,
    DeleteAccount,
    /// `users [PATTERN]`: the pattern is passed on as typed.
    Users {
        pattern: Option<String>,
    },
    /// `whois USER` or `exists USER`.
    Whois {
        user: String,
    },
    Show {
        id: EventId,
    },
    Delete {
        id: EventId,
    },
    Inbox,
    Status,
    When(When),
    /// `help [COMMAND]`, with the command's canonical name.
    Help {
        command: Option<&'static str>,
    },
    /// `quit` or `exit`.
    Quit,
    Schedule(Schedule),
    Edit(Edit),
    Agenda(AgendaRange),
    Search(SearchQuery),
    /// `delete ID occurrence DATE [and following]`.
    DeleteOccurrence {
        id: EventId,
        occurrence: OccurrenceRef,
    },
    /// Responses, free time, history and the week and month views.
    Plan(PlanCommand),
    /// `import FILE.ics [lenient]`.
    Import {
        path: String,
        lenient: bool,
    },
    /// `export [FILE.ics] [RANGE]`; without a file the calendar is printed.
    Export {
        path: Option<String>,
        range: AgendaRange,
    },
}

impl ReplCommand {
    /// Checks whether the command requests a change of the cluster's state,
    /// which may still take effect after the command is stopped.
    pub fn changes_state(&self) -> bool {
        match self {
            ReplCommand::Register { .. }
            | ReplCommand::Logout
            | ReplCommand::DeleteAccount
            | ReplCommand::Delete { .. }
            | ReplCommand::Schedule(_)
            | ReplCommand::Edit(_)
            | ReplCommand::DeleteOccurrence { .. }
            | ReplCommand::Import { .. } => true,
            ReplCommand::Plan(plan) => plan.changes_state(),
            ReplCommand::Login { .. }
            | ReplCommand::Users { .. }
            | ReplCommand::Whois { .. }
            | ReplCommand::Show { .. }
            | ReplCommand::Inbox
            | ReplCommand::Status
            | ReplCommand::When(_)
            | ReplCommand::Help { .. }
            | ReplCommand::Quit
            | ReplCommand::Agenda(_)
            | ReplCommand::Search(_)
            | ReplCommand::Export { .. } => false,
        }
    }
}

/// A new event, as `schedule` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub title: String,
    pub description: Option<String>,
    /// The first minute, in UTC.
    pub start: DateTime<Utc>,
    /// The zone the start was entered in.
    pub zone: Tz,
    pub duration_minutes: u32,
    /// The first date of an all-day event.
    pub all_day: Option<NaiveDate>,
    pub public: bool,
    /// Guests in the order typed, without duplicates.
    pub guests: Vec<String>,
    /// Adjustments to show the user, such as a start moved out of a DST gap.
    pub notices: Vec<String>,
    /// The RFC 5545 rule of a recurring event, with its end; `start` is then
    /// the earliest start the user named, before it is moved to the rule's
    /// first occurrence.
    pub recurrence: Option<String>,
}

/// Changes to an event, as `edit` reads them; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub id: EventId,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The new start; its notices are for the user.
    pub start: Option<When>,
    pub duration_minutes: Option<u32>,
    /// The new guest list, replacing the old one.
    pub guests: Option<Vec<String>>,
    pub public: Option<bool>,
    /// The occurrence of a recurring event to change, instead of the event.
    pub occurrence: Option<OccurrenceRef>,
}

/// The range `agenda` lists: events overlapping `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgendaRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The zone the range's days were read in.
    pub zone: Tz,
}

/// The criteria of `search`; at least one is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    pub host: Option<String>,
    /// Events ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events starting before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Words to find in the title or description, joined by single spaces.
    pub text: Option<String>,
}

/// Rejection of a command line. Messages name the offending word and, for a
/// known command, end with its usage line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    /// The line is blank; the REPL shows a new prompt.
    #[error("nothing to run: type a command, or help to list them")]
    Empty,
    #[error("unknown command \"{word}\": {}", suggest_text(*.suggestion))]
    UnknownCommand {
        word: String,
        suggestion: Option<&'static str>,
    },
    #[error("unterminated quote starting at character {column}: close it with \"")]
    UnterminatedQuote { column: usize },
    #[error("{message}\nusage: {usage}")]
    Invalid {
        command: &'static str,
        message: String,
        usage: &'static str,
    },
    #[error("{error}\nusage: {usage}")]
    Date {
        command: &'static str,
        error: DateError,
        usage: &'static str,
    },
}

fn suggest_text(suggestion: Option<&'static str>) -> String {
    match suggestion {
        Some(name) => format!("did you mean {name}? Type help to list commands"),
        None => "type help to list commands".to_string(),
    }
}

/// Parses one REPL line. `ctx` supplies "now" and the user's zone for dates.
pub fn parse_command(line: &str, ctx: &DateContext) -> Result<ReplCommand, GrammarError> {
    let tokens = tokenize(line)?;
    let Some((first, args)) = tokens.split_first() else {
        return Err(GrammarError::Empty);
    };
    let Some(help) = find_command(&first.text).filter(|_| !first.quoted) else {
        return Err(GrammarError::UnknownCommand {
            word: first.text.clone(),
            suggestion: closest_command(&first.text),
        });
    };
    let args = Args::new(help, args);
    match help.name {
        "register" => Ok(ReplCommand::Register {
            user: args.one_user()?,
        }),
        "login" => Ok(ReplCommand::Login {
            user: args.one_user()?,
        }),
        "whois" | "exists" => Ok(ReplCommand::Whois {
            user: args.one_user()?,
        }),
        "logout" => args.none(ReplCommand::Logout),
        "delete-account" => args.none(ReplCommand::DeleteAccount),
        "inbox" => args.none(ReplCommand::Inbox),
        "status" => args.none(ReplCommand::Status),
        "quit" | "exit" => args.none(ReplCommand::Quit),
        "users" => parse_users(&args),
        "show" => Ok(ReplCommand::Show { id: args.one_id()? }),
        "delete" => parse_delete(&args, ctx),
        "help" => parse_help(&args),
        "when" => parse_when_command(&args, ctx),
        "schedule" if planning::is_schedule_suggestion(&args) => {
            planning::parse_schedule_suggestion(&args).map(ReplCommand::Plan)
        }
        "schedule" => parse_schedule(&args, ctx).map(ReplCommand::Schedule),
        "accept" | "decline" | "tentative" | "history" | "workhours" | "free" | "suggest"
        | "week" | "month" => planning::parse(help.name, &args, ctx).map(ReplCommand::Plan),
        "edit" => parse_edit(&args, ctx).map(ReplCommand::Edit),
        "agenda" => parse_agenda(&args, ctx).map(ReplCommand::Agenda),
        "search" => parse_search(&args, ctx).map(ReplCommand::Search),
        "import" => parse_import(&args),
        "export" => parse_export(&args, ctx),
        other => unreachable!("command {other} is in COMMANDS but has no parser"),
    }
}

/// A word of the line, with whether it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) text: String,
    pub(super) quoted: bool,
}

impl Token {
    /// Returns whether this is the unquoted keyword `word`.
    pub(super) fn is_keyword(&self, word: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(word)
    }
}

/// Splits a line into words and quoted strings.
fn tokenize(line: &str) -> Result<Vec<Token>, GrammarError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().enumerate().peekable();
    while let Some(&(column, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '“' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(GrammarError::UnterminatedQuote { column: column + 1 }),
                    Some((_, '"' | '”')) => break,
                    Some((_, '\\')) => match chars.peek() {
                        Some(&(_, escaped @ ('"' | '\\'))) => {
                            text.push(escaped);
                            chars.next();
                        }
                        _ => text.push('\\'),
                    },
                    Some((_, other)) => text.push(other),
                }
            }
            tokens.push(Token { text, quoted: true });
            continue;
        }
        let mut text = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() || c == '"' || c == '“' {
                break;
            }
            text.push(c);
            chars.next();
        }
        tokens.push(Token {
            text,
            quoted: false,
        });
    }
    Ok(tokens)
}

/// The arguments of one command, with its help entry for error messages.
pub(super) struct Args<'a> {
    pub(super) help: &'static CommandHelp,
    pub(super) tokens: &'a [Token],
}

impl<'a> Args<'a> {
    fn new(help: &'static CommandHelp, tokens: &'a [Token]) -> Self {
        Args { help, tokens }
    }

    pub(super) fn invalid(&self, message: impl Into<String>) -> GrammarError {
        GrammarError::Invalid {
            command: self.help.name,
            message: message.into(),
            usage: self.help.usage,
        }
    }

    pub(super) fn date_error(&self, error: DateError) -> GrammarError {
        GrammarError::Date {
            command: self.help.name,
            error,
            usage: self.help.usage,
        }
    }

    /// Rejects any argument and returns `command`.
    fn none(&self, command: ReplCommand) -> Result<ReplCommand, GrammarError> {
        match self.tokens.first() {
            None => Ok(command),
            Some(token) => Err(self.invalid(format!(
                "unexpected \"{}\": {} takes no arguments",
                token.text, self.help.name
            ))),
        }
    }

    /// Returns the only argument, or an error naming what is missing or extra.
    fn one(&self, argument: &str) -> Result<&'a Token, GrammarError> {
        match self.tokens {
            [] => Err(self.invalid(format!("missing {argument}"))),
            [token] => Ok(token),
            [_, extra, ..] => Err(self.invalid(format!(
                "unexpected \"{}\": {} takes one {argument}",
                extra.text, self.help.name
            ))),
        }
    }

    fn one_user(&self) -> Result<String, GrammarError> {
        let token = self.one("user name")?;
        check_user(&token.text).map_err(|message| self.invalid(message))?;
        Ok(token.text.clone())
    }

    pub(super) fn one_id(&self) -> Result<EventId, GrammarError> {
        let token = self.one("event id")?;
        parse_id(&token.text).map_err(|message| self.invalid(message))
    }

    /// Returns the unquoted words from `start` up to the first quoted token
    /// or one of `keywords`.
    pub(super) fn words_until(&self, start: usize, keywords: &[&str]) -> Vec<&'a str> {
        self.tokens[start..]
            .iter()
            .take_while(|t| !t.quoted && !keywords.iter().any(|k| t.is_keyword(k)))
            .map(|t| t.text.as_str())
            .collect()
    }
}

/// Checks a user name typed at the prompt with the calendar's own rule, so
/// that a typo fails before a round trip and before `register` asks for a
/// password.
fn check_user(name: &str) -> Result<(), String> {
    match crate::calendar::validate_username(name) {
        Ok(()) => Ok(()),
        Err(Rejection::Invalid { message, .. }) => Err(format!("not a user name: {message}")),
        Err(other) => Err(other.to_string()),
    }
}

/// Reads an event id: a whole number, optionally written `#12`.
pub(super) fn parse_id(text: &str) -> Result<EventId, String> {
    let digits = text.strip_prefix('#').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{text}\" is not an event id: ids are whole numbers as agenda shows them, e.g. 12"
        ));
    }
    digits
        .parse()
        .map_err(|_| format!("\"{text}\" is not an event id: the number is too large"))
}

/// Splits a guest list on commas and whitespace, trims and deduplicates it,
/// keeping the order typed. An empty name (`bob,,carol`, a leading or
/// trailing comma) is an error.
pub(super) fn parse_guests(words: &[&str]) -> Result<Vec<String>, String> {
    if words.is_empty() {
        return Err("missing guest names after \"with\": write e.g. with bob, carol".to_string());
    }
    let joined = words.join(" ");
    let mut guests: Vec<String> = Vec::new();
    for piece in joined.split(',') {
        let piece = piece.trim();
        if piece.is_empty() {
            return Err(format!(
                "empty guest name in \"{joined}\": separate names with one comma or spaces, \
                 e.g. with bob, carol"
            ));
        }
        for name in piece.split_whitespace() {
            check_user(name)?;
            if !guests.iter().any(|g| g == name) {
                guests.push(name.to_string());
            }
        }
    }
    Ok(guests)
}

/// Returns the command name closest to `word`: the only one it is a prefix
/// of, or one within two edits.
fn closest_command(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    let prefixed: Vec<&'static str> = COMMANDS
        .iter()
        .map(|c| c.name)
        .filter(|name| !word.is_empty() && name.starts_with(&word))
        .collect();
    if let [only] = prefixed.as_slice() {
        return Some(only);
    }
    COMMANDS
        .iter()
        .map(|c| (edit_distance(&word, c.name), c.name))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Returns the Levenshtein distance between two strings, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn parse_users(args: &Args<'_>) -> Result<ReplCommand, GrammarError> {
    match args.tokens {
        [] => Ok(ReplCommand::Users { pattern: None }),
        [pattern] => Ok(ReplCommand::Users {
            pattern: Some(pattern.text.clone()),
        }),
        [_, extra, ..] => Err(args.invalid(format!(
            "unexpected \"{}\": users takes one pattern, e.g. users b*",
            extra.text
        ))),
    }
}

fn parse_help(args: &Args<'_>) -> Result<ReplCommand, GrammarError> {
    if args.tokens.is_empty() {
        return Ok(ReplCommand::Help { command: None });
    }
    let token = args.one("command name")?;
    match find_command(&token.text) {
        Some(help) => Ok(ReplCommand::Help {
            command: Some(help.name),
        }),
        None => Err(args.invalid(format!(
            "unknown command \"{}\": {}",
            token.text,
            suggest_text(closest_command(&token.text))
        ))),
    }
}

fn parse_when_command(args: &Args<'_>, ctx: &DateContext) -> Result<ReplCommand, GrammarError> {
    if let Some(token) = args.tokens.iter().find(|t| t.quoted) {
        return Err(args.invalid(format!(
            "unexpected quoted \"{}\": write the date and time without quotes",
            token.text
        )));
    }
    let text: Vec<&str> = args.tokens.iter().map(|t| t.text.as_str()).collect();
    dates::parse_when(&text.join(" "), ctx)
        .map(ReplCommand::When)
        .map_err(|error| args.date_error(error))
}

/// Keywords that end the date and title part of `schedule`.
const SCHEDULE_KEYWORDS: &[&str] = &["with", "about", "until"];

fn parse_schedule(args: &Args<'_>, ctx: &DateContext) -> Result<Schedule, GrammarError> {
    let tokens = args.tokens;
    let mut pos = 0;
    let mut public = false;
    if let Some(token) = tokens.first() {
        if token.is_keyword("public") || token.is_keyword("private") {
            public = token.is_keyword("public");
            pos += 1;
        }
    }
    let mut title = None;
    if let Some(token) = tokens.get(pos).filter(|t| t.quoted) {
        title = Some(token.text.clone());
        pos += 1;
    }

    let mut words = args.words_until(pos, SCHEDULE_KEYWORDS);
    let used = words.len();
    let repeat = recurrence::parse_repeat(&words).map_err(|message| args.invalid(message))?;
    let count = match &repeat {
        Some(_) => recurrence::take_count(&mut words).map_err(|message| args.invalid(message))?,
        None => None,
    };
    if let Some((_, phrase)) = &repeat {
        words.drain(..*phrase);
    }
    if words.is_empty() {
        return Err(match tokens.get(pos + used - words.len()) {
            None => args.invalid("missing the date and time, e.g. tomorrow 10:00"),
            Some(token) => args.invalid(format!(
                "unexpected \"{}\": expected the date and time, e.g. tomorrow 10:00",
                token.text
            )),
        });
    }
    let span = parse_span(&words, ctx).map_err(|error| args.date_error(error))?;
    pos += used;

    if !span.rest.is_empty() {
        if title.is_some() {
            return Err(args.invalid(format!(
                "unexpected \"{}\": the title is already given in quotes",
                span.rest[0]
            )));
        }
        title = Some(span.rest.join(" "));
    }
    if let Some(token) = tokens.get(pos).filter(|t| t.quoted) {
        if title.is_some() {
            return Err(args.invalid(format!(
                "unexpected \"{}\": the event has a title already",
                token.text
            )));
        }
        title = Some(token.text.clone());
        pos += 1;
    }
    let Some(title) = title.filter(|t| !t.trim().is_empty()) else {
        return Err(args
            .invalid("missing the title: write it in quotes before the date, or after the time"));
    };

    let ScheduleClauses {
        guests,
        description,
        until,
    } = parse_schedule_clauses(args, ctx, pos)?;
    let recurrence = match (repeat, count, until) {
        (None, _, Some(_)) => return Err(args.invalid(
            "until ends a repeat: add one before the time, e.g. weekdays 9:15 ... until 2027-06-30",
        )),
        (Some(_), Some(_), Some(_)) => {
            return Err(args.invalid("give only one of until DATE and N times"))
        }
        (Some((rule, _)), Some(count), None) => {
            Some(recurrence::with_end(&rule, Some(RepeatEnd::Count(count))))
        }
        (Some((rule, _)), None, until) => {
            Some(recurrence::with_end(&rule, until.map(RepeatEnd::Until)))
        }
        (None, _, None) => None,
    };
    Ok(Schedule {
        title,
        description,
        start: span.start,
        zone: span.zone,
        duration_minutes: span.duration_minutes(),
        all_day: span.all_day,
        public,
        guests,
        notices: span.notices,
        recurrence,
    })
}

/// The clauses after the time of `schedule`.
struct ScheduleClauses {
    guests: Vec<String>,
    description: Option<String>,
    /// The last date of a repeat.
    until: Option<NaiveDate>,
}

/// Reads `[with USER, USER...] [about "DESCRIPTION"] [until DATE]` in any
/// order.
fn parse_schedule_clauses(
    args: &Args<'_>,
    ctx: &DateContext,
    mut pos: usize,
) -> Result<ScheduleClauses, GrammarError> {
    let tokens = args.tokens;
    let mut guests = None;
    let mut description = None;
    let mut until = None;
    while let Some(token) = tokens.get(pos) {
        if token.is_keyword("until") {
            if until.is_some() {
                return Err(args.invalid("\"until\" is given twice"));
            }
            let words = args.words_until(pos + 1, SCHEDULE_KEYWORDS);
            if words.is_empty() {
                return Err(args.invalid("missing the date after until, e.g. until 2027-06-30"));
            }
            let point = read_whole_point(args, ctx, &words, Role::Start)?;
            let when = resolve_start(&point, ctx).map_err(|e| args.date_error(e))?;
            let date = when
                .all_day
                .unwrap_or_else(|| when.instant.with_timezone(&when.zone).date_naive());
            until = Some(date);
            pos += 1 + words.len();
            continue;
        }
        if token.is_keyword("with") {
            if guests.is_some() {
                return Err(args.invalid("\"with\" is given twice: list all guests after one with"));
            }
            let words = args.words_until(pos + 1, SCHEDULE_KEYWORDS);
            guests = Some(parse_guests(&words).map_err(|message| args.invalid(message))?);
            pos += 1 + words.len();
        } else if token.is_keyword("about") {
            if description.is_some() {
                return Err(args.invalid("\"about\" is given twice"));
            }
            let Some(text) = tokens.get(pos + 1).filter(|t| t.quoted) else {
                return Err(args.invalid(
                    "about takes a quoted description, e.g. about \"Bring slides\"; \
                     to use the word about in a title, quote the title",
                ));
            };
            description = Some(text.text.clone());
            pos += 2;
        } else {
            return Err(args.invalid(format!(
                "unexpected \"{}\": expected with, about or until",
                token.text
            )));
        }
    }
    Ok(ScheduleClauses {
        guests: guests.unwrap_or_default(),
        description,
        until,
    })
}

/// Keywords that start a clause of `edit`.
const EDIT_KEYWORDS: &[&str] = &[
    "title",
    "description",
    "at",
    "for",
    "with",
    "public",
    "private",
];

/// Reads `edit ID CLAUSE...`. Each clause may appear once; `public` and
/// `private` exclude each other, and `with` may be combined with either.
fn parse_edit(args: &Args<'_>, ctx: &DateContext) -> Result<Edit, GrammarError> {
    let Some(id_token) = args.tokens.first() else {
        return Err(args.invalid("missing event id"));
    };
    let id = parse_id(&id_token.text).map_err(|message| args.invalid(message))?;
    let mut edit = Edit {
        id,
        title: None,
        description: None,
        start: None,
        duration_minutes: None,
        guests: None,
        public: None,
        occurrence: None,
    };

    let mut pos = 1;
    if args
        .tokens
        .get(pos)
        .is_some_and(|t| t.is_keyword("occurrence"))
    {
        let (occurrence, used) = parse_occurrence(args, ctx, pos + 1, EDIT_KEYWORDS)?;
        edit.occurrence = Some(occurrence);
        pos += 1 + used;
    }
    while let Some(token) = args.tokens.get(pos) {
        let keyword = EDIT_KEYWORDS
            .iter()
            .copied()
            .find(|k| token.is_keyword(k))
            .ok_or_else(|| {
                args.invalid(format!(
                    "unexpected \"{}\": expected one of {}",
                    token.text,
                    EDIT_KEYWORDS.join(", ")
                ))
            })?;
        pos += 1;
        pos += parse_edit_clause(args, ctx, keyword, pos, &mut edit)?;
    }

    let unchanged = edit.title.is_none()
        && edit.description.is_none()
        && edit.start.is_none()
        && edit.duration_minutes.is_none()
        && edit.guests.is_none()
        && edit.public.is_none();
    if unchanged {
        return Err(args.invalid(format!(
            "nothing to change for event {id}: give at least one of {}",
            EDIT_KEYWORDS.join(", ")
        )));
    }
    Ok(edit)
}

/// Reads `delete ID [occurrence DATE [and following]]`.
fn parse_delete(args: &Args<'_>, ctx: &DateContext) -> Result<ReplCommand, GrammarError> {
    if args.tokens.len() <= 1 {
        return Ok(ReplCommand::Delete { id: args.one_id()? });
    }
    let id = parse_id(&args.tokens[0].text).map_err(|message| args.invalid(message))?;
    if !args.tokens[1].is_keyword("occurrence") {
        return Err(args.invalid(format!(
            "unexpected \"{}\": expected occurrence DATE or nothing after the id",
            args.tokens[1].text
        )));
    }
    let (occurrence, used) = parse_occurrence(args, ctx, 2, &[])?;
    if let Some(extra) = args.tokens.get(2 + used) {
        return Err(args.invalid(format!(
            "unexpected \"{}\" after the occurrence",
            extra.text
        )));
    }
    Ok(ReplCommand::DeleteOccurrence { id, occurrence })
}

/// Reads `DATE [and following]` at `pos`, up to one of `keywords`, and
/// returns it with the number of tokens used. A date alone names a local
/// day; a date with a time names one start.
pub(super) fn parse_occurrence(
    args: &Args<'_>,
    ctx: &DateContext,
    pos: usize,
    keywords: &[&str],
) -> Result<(OccurrenceRef, usize), GrammarError> {
    let mut stops: Vec<&str> = keywords.to_vec();
    stops.extend(["and", "following"]);
    let words = args.words_until(pos, &stops);
    if words.is_empty() {
        return Err(args.invalid("missing the date after occurrence, e.g. occurrence 2027-01-11"));
    }
    let mut used = words.len();
    let mut following = false;
    let rest = &args.tokens[pos + used..];
    if rest.first().is_some_and(|t| t.is_keyword("and"))
        && rest.get(1).is_some_and(|t| t.is_keyword("following"))
    {
        following = true;
        used += 2;
    } else if rest.first().is_some_and(|t| t.is_keyword("following")) {
        following = true;
        used += 1;
    }
    let point = read_whole_point(args, ctx, &words, Role::Start)?;
    let when = resolve_start(&point, ctx).map_err(|e| args.date_error(e))?;
    let date = when
        .all_day
        .unwrap_or_else(|| when.instant.with_timezone(&when.zone).date_naive());
    let day = day_range(args, date, 1, when.zone)?;
    let occurrence = OccurrenceRef {
        text: words.join(" "),
        from: day.from,
        to: day.to,
        at: point.has_time().then_some(when.instant),
        following,
    };
    Ok((occurrence, used))
}

/// Reads the value of one `edit` clause starting at `pos` into `edit` and
/// returns how many tokens it used.
fn parse_edit_clause(
    args: &Args<'_>,
    ctx: &DateContext,
    keyword: &'static str,
    pos: usize,
    edit: &mut Edit,
) -> Result<usize, GrammarError> {
    let twice = || args.invalid(format!("\"{keyword}\" is given twice"));
    match keyword {
        "public" | "private" => {
            if edit.public.is_some() {
                return Err(args.invalid("give only one of public and private"));
            }
            edit.public = Some(keyword == "public");
            Ok(0)
        }
        "title" | "description" => {
            let (text, used) = edit_text_value(args, keyword, pos)?;
            let slot = if keyword == "title" {
                &mut edit.title
            } else {
                &mut edit.description
            };
            if slot.is_some() {
                return Err(twice());
            }
            if keyword == "title" && text.trim().is_empty() {
                return Err(args.invalid("the new title is empty"));
            }
            *slot = Some(text);
            Ok(used)
        }
        "at" => {
            if edit.start.is_some() {
                return Err(twice());
            }
            let words = args.words_until(pos, EDIT_KEYWORDS);
            if words.is_empty() {
                return Err(args.invalid("missing the date and time after at, e.g. at fri 14:00"));
            }
            let when = dates::parse_when(&words.join(" "), ctx).map_err(|e| args.date_error(e))?;
            edit.start = Some(when);
            Ok(words.len())
        }
        "for" => {
            if edit.duration_minutes.is_some() {
                return Err(twice());
            }
            let words = args.words_until(pos, EDIT_KEYWORDS);
            if words.is_empty() {
                return Err(args.invalid("missing the duration after for, e.g. for 1h30m"));
            }
            let minutes = parse_duration(&words.join(" ")).map_err(|e| args.date_error(e))?;
            edit.duration_minutes = Some(minutes);
            Ok(words.len())
        }
        "with" => {
            if edit.guests.is_some() {
                return Err(twice());
            }
            let words = args.words_until(pos, EDIT_KEYWORDS);
            let guests = parse_guests(&words).map_err(|message| args.invalid(message))?;
            edit.guests = Some(guests);
            Ok(words.len())
        }
        other => unreachable!("edit keyword {other} has no clause parser"),
    }
}

/// Reads the text after `title` or `description`: one quoted token, or the
/// unquoted words up to the next keyword.
fn edit_text_value(
    args: &Args<'_>,
    keyword: &str,
    pos: usize,
) -> Result<(String, usize), GrammarError> {
    if let Some(token) = args.tokens.get(pos).filter(|t| t.quoted) {
        return Ok((token.text.clone(), 1));
    }
    let words = args.words_until(pos, EDIT_KEYWORDS);
    if words.is_empty() {
        return Err(args.invalid(format!(
            "missing the text after {keyword}, e.g. {keyword} \"New text\""
        )));
    }
    Ok((words.join(" "), words.len()))
}

/// Reads the range of `agenda`. Days are local days in the user's zone:
///
/// - no argument or `week`: the 7 days starting today at 00:00;
/// - `today`, `tomorrow` or any DATE (`fri`, `2027-01-05`, `in 3 days`): that
///   one day;
/// - `next week`: Monday to Sunday of the next ISO week;
/// - `FROM to TO`: a date alone as FROM is the start of that day, and as TO
///   includes that whole day. A time alone as TO is on FROM's date.
fn parse_agenda(args: &Args<'_>, ctx: &DateContext) -> Result<AgendaRange, GrammarError> {
    if let Some(token) = args.tokens.iter().find(|t| t.quoted) {
        return Err(args.invalid(format!(
            "unexpected quoted \"{}\": write the dates without quotes",
            token.text
        )));
    }
    let words: Vec<&str> = args.tokens.iter().map(|t| t.text.as_str()).collect();
    let zone = ctx.zone;
    let today = dates::today(ctx);
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();

    match lower.as_slice() {
        [] | ["week"] => day_range(args, today, 7, zone),
        ["next", "week"] => {
            let days_to_monday = 7 - u64::from(today.weekday().num_days_from_monday());
            let monday = dates::add_days(today, days_to_monday, "next week")
                .map_err(|e| args.date_error(e))?;
            day_range(args, monday, 7, zone)
        }
        _ => match lower.iter().position(|w| *w == "to") {
            Some(split) => agenda_between(args, ctx, &words[..split], &words[split + 1..]),
            None => agenda_day(args, ctx, &words),
        },
    }
}

/// Days before today that `export` without a range starts at.
const EXPORT_DAYS_BEFORE: u64 = 365;
/// Days from today that `export` without a range covers.
const EXPORT_DAYS_AHEAD: u64 = 2 * 365;

fn parse_import(args: &Args<'_>) -> Result<ReplCommand, GrammarError> {
    match args.tokens {
        [path] => Ok(ReplCommand::Import {
            path: path.text.clone(),
            lenient: false,
        }),
        [path, mode] if mode.is_keyword("lenient") => Ok(ReplCommand::Import {
            path: path.text.clone(),
            lenient: true,
        }),
        [] => Err(args.invalid("missing FILE.ics: name the file to import")),
        [_, extra, ..] => Err(args.invalid(format!(
            "unexpected \"{}\": quote a file name that contains spaces",
            extra.text
        ))),
    }
}

fn parse_export(args: &Args<'_>, ctx: &DateContext) -> Result<ReplCommand, GrammarError> {
    let (path, rest) = match args.tokens.split_first() {
        Some((first, rest)) if first.text.to_ascii_lowercase().ends_with(".ics") => {
            (Some(first.text.clone()), rest)
        }
        _ => (None, args.tokens),
    };
    let range = if rest.is_empty() {
        let today = dates::today(ctx);
        let first = today
            .checked_sub_days(chrono::Days::new(EXPORT_DAYS_BEFORE))
            .unwrap_or(today);
        day_range(
            args,
            first,
            EXPORT_DAYS_BEFORE + EXPORT_DAYS_AHEAD,
            ctx.zone,
        )?
    } else {
        parse_agenda(&Args::new(args.help, rest), ctx)?
    };
    Ok(ReplCommand::Export { path, range })
}

/// Returns the range of `days` local days starting at `first`.
fn day_range(
    args: &Args<'_>,
    first: NaiveDate,
    days: u64,
    zone: Tz,
) -> Result<AgendaRange, GrammarError> {
    let text = first.to_string();
    let last = dates::add_days(first, days - 1, &text).map_err(|e| args.date_error(e))?;
    let from = dates::start_of_day(first, zone).map_err(|e| args.date_error(e))?;
    let to = dates::end_of_day(last, zone, &text).map_err(|e| args.date_error(e))?;
    Ok(AgendaRange { from, to, zone })
}

/// Reads `agenda DATE`: one local day, in the zone the date names or the
/// user's.
pub(super) fn agenda_day(
    args: &Args<'_>,
    ctx: &DateContext,
    words: &[&str],
) -> Result<AgendaRange, GrammarError> {
    let point = read_whole_point(args, ctx, words, Role::Start)?;
    if point.has_time() {
        return Err(args.invalid(format!(
            "\"{}\" has a time: agenda DATE lists a whole day; drop the time or write FROM to TO",
            words.join(" ")
        )));
    }
    let when = resolve_start(&point, ctx).map_err(|e| args.date_error(e))?;
    let date = when
        .all_day
        .unwrap_or_else(|| when.instant.with_timezone(&when.zone).date_naive());
    day_range(args, date, 1, when.zone)
}

/// Reads `agenda FROM to TO`.
pub(super) fn agenda_between(
    args: &Args<'_>,
    ctx: &DateContext,
    from_words: &[&str],
    to_words: &[&str],
) -> Result<AgendaRange, GrammarError> {
    if from_words.is_empty() {
        return Err(args.invalid("missing the start before \"to\", e.g. agenda mon to fri"));
    }
    if to_words.is_empty() {
        return Err(args.invalid("missing the end after \"to\", e.g. agenda mon to fri"));
    }
    let from_point = read_whole_point(args, ctx, from_words, Role::Start)?;
    let from = resolve_start(&from_point, ctx).map_err(|e| args.date_error(e))?;
    let to_point = read_whole_point(args, ctx, to_words, Role::End)?;
    let to = resolve_end(&to_point, &from, &mut Vec::new()).map_err(|e| args.date_error(e))?;
    Ok(AgendaRange {
        from: from.instant,
        to,
        zone: from.zone,
    })
}

/// Reads a point that must use all of `words`.
fn read_whole_point(
    args: &Args<'_>,
    ctx: &DateContext,
    words: &[&str],
    role: Role,
) -> Result<dates::Point, GrammarError> {
    let mut cursor = Cursor::new(words);
    let point = parse_point(&mut cursor, ctx, role).map_err(|e| args.date_error(e))?;
    let Some(point) = point else {
        return Err(args.invalid(format!(
            "\"{}\" is not a date: write e.g. today, fri, 2027-01-05 or 29.02.",
            words[0]
        )));
    };
    if let Some(extra) = words.get(cursor.position()) {
        return Err(args.invalid(format!(
            "unexpected \"{extra}\" after \"{}\"",
            words[..cursor.position()].join(" ")
        )));
    }
    Ok(point)
}

/// Keywords that start a criterion of `search`.
const SEARCH_KEYWORDS: &[&str] = &["host", "from", "to"];

/// Reads `search [host USER] [from WHEN] [to WHEN] [TEXT...]`. The criteria
/// may come in any order, each once; every other word is search text. A
/// date alone after `from` is its start, after `to` its end (the whole day
/// is included).
fn parse_search(args: &Args<'_>, ctx: &DateContext) -> Result<SearchQuery, GrammarError> {
    let tokens = args.tokens;
    let mut query = SearchQuery::default();
    let mut from_point = None;
    let mut to_point = None;
    let mut text = Vec::new();
    let mut pos = 0;
    while let Some(token) = tokens.get(pos) {
        let keyword = SEARCH_KEYWORDS
            .iter()
            .copied()
            .find(|k| token.is_keyword(k));
        let Some(keyword) = keyword else {
            text.push(token.text.as_str());
            pos += 1;
            continue;
        };
        pos += 1;
        if keyword == "host" {
            if query.host.is_some() {
                return Err(args.invalid("\"host\" is given twice"));
            }
            let Some(user) = tokens.get(pos) else {
                return Err(args.invalid("missing the user name after host"));
            };
            check_user(&user.text).map_err(|message| args.invalid(message))?;
            query.host = Some(user.text.clone());
            pos += 1;
            continue;
        }

        let slot = if keyword == "from" {
            &mut from_point
        } else {
            &mut to_point
        };
        if slot.is_some() {
            return Err(args.invalid(format!("\"{keyword}\" is given twice")));
        }
        let words = args.words_until(pos, SEARCH_KEYWORDS);
        let (point, used) = search_bound(args, ctx, keyword, &words)?;
        *slot = Some(point);
        pos += used;
    }
    (query.from, query.to) = resolve_search_range(args, ctx, from_point, to_point)?;

    if !text.is_empty() {
        query.text = Some(text.join(" "));
    }
    if query == SearchQuery::default() {
        return Err(args.invalid(
            "give at least one criterion: host USER, from WHEN, to WHEN or words to find",
        ));
    }
    Ok(query)
}

/// Reads the longest point after `from` or `to` and returns it with the
/// number of words it used; the words after it are search text.
fn search_bound(
    args: &Args<'_>,
    ctx: &DateContext,
    keyword: &str,
    words: &[&str],
) -> Result<(dates::Point, usize), GrammarError> {
    let role = if keyword == "to" {
        Role::End
    } else {
        Role::Start
    };
    let mut cursor = Cursor::new(words);
    let point = parse_point(&mut cursor, ctx, role).map_err(|e| args.date_error(e))?;
    let Some(point) = point else {
        return Err(args.invalid(format!(
            "missing the date after {keyword}, e.g. {keyword} 2027-01-05 or {keyword} tomorrow"
        )));
    };
    Ok((point, cursor.position()))
}

/// The `from` and `to` instants of a search.
type SearchBounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Places the `from` and `to` points of a search. With both, `to` is read as
/// the end of a span starting at `from`, as in `agenda FROM to TO`. A `to`
/// date without a time includes that whole day.
fn resolve_search_range(
    args: &Args<'_>,
    ctx: &DateContext,
    from_point: Option<dates::Point>,
    to_point: Option<dates::Point>,
) -> Result<SearchBounds, GrammarError> {
    let from = match &from_point {
        Some(point) => Some(resolve_start(point, ctx).map_err(|e| args.date_error(e))?),
        None => None,
    };
    let Some(to_point) = to_point else {
        return Ok((from.map(|w| w.instant), None));
    };
    let to = match &from {
        Some(start) => resolve_end(&to_point, start, &mut Vec::new()),
        None => resolve_start(&to_point, ctx).and_then(|when| {
            if to_point.has_time() {
                return Ok(when.instant);
            }
            let date = when
                .all_day
                .unwrap_or_else(|| when.instant.with_timezone(&when.zone).date_naive());
            dates::end_of_day(date, when.zone, &date.to_string())
        }),
    }
    .map_err(|e| args.date_error(e))?;
    Ok((from.map(|w| w.instant), Some(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2027-01-04, 09:00 in Berlin.
    fn ctx() -> DateContext {
        DateContext {
            now: utc("2027-01-04T09:00:00+01:00"),
            zone: chrono_tz::Europe::Berlin,
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    fn parse(line: &str) -> Result<ReplCommand, GrammarError> {
        parse_command(line, &ctx())
    }

    fn schedule(line: &str) -> Schedule {
        match parse(line) {
            Ok(ReplCommand::Schedule(schedule)) => schedule,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn edit(line: &str) -> Edit {
        match parse(line) {
            Ok(ReplCommand::Edit(edit)) => edit,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn agenda(line: &str) -> AgendaRange {
        match parse(line) {
            Ok(ReplCommand::Agenda(range)) => range,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn search(line: &str) -> SearchQuery {
        match parse(line) {
            Ok(ReplCommand::Search(query)) => query,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    /// Returns the error message of a line that must fail.
    fn error(line: &str) -> String {
        match parse(line) {
            Err(error) => error.to_string(),
            Ok(command) => panic!("{line:?} should fail but parsed as {command:?}"),
        }
    }

    fn assert_usage(message: &str, command: &str) {
        let usage = find_command(command).expect("known command").usage;
        assert!(
            message.ends_with(&format!("usage: {usage}")),
            "message lacks the usage of {command}: {message}"
        );
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    // Table of commands.

    #[test]
    fn command_names_are_unique() {
        for (i, help) in COMMANDS.iter().enumerate() {
            assert!(
                COMMANDS[i + 1..]
                    .iter()
                    .all(|other| other.name != help.name),
                "{} is listed twice",
                help.name
            );
            assert!(help.usage.starts_with(help.name), "{}", help.usage);
            assert!(!help.examples.is_empty(), "{} has no examples", help.name);
        }
    }

    #[test]
    fn every_example_parses() {
        for help in COMMANDS {
            for example in help.examples {
                assert!(parse(example).is_ok(), "{example:?}: {:?}", parse(example));
            }
        }
    }

    #[test]
    fn find_command_ignores_case() {
        assert_eq!(find_command("SCHEDULE").map(|c| c.name), Some("schedule"));
        assert_eq!(find_command("nope"), None);
    }

    // Tokens.

    #[test]
    fn tokenize_quotes_and_escapes() {
        let tokens = tokenize(r#"a "b c" "say \"hi\"" “curly”"#).unwrap();
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["a", "b c", "say \"hi\"", "curly"]);
        let quoted: Vec<bool> = tokens.iter().map(|t| t.quoted).collect();
        assert_eq!(quoted, [false, true, true, true]);
    }

    #[test]
    fn tokenize_unterminated_quote() {
        assert_eq!(
            tokenize("schedule \"Team sync tomorrow"),
            Err(GrammarError::UnterminatedQuote { column: 10 })
        );
    }

    #[test]
    fn blank_line_is_empty() {
        assert_eq!(parse("   "), Err(GrammarError::Empty));
    }

    // Unknown commands.

    #[test]
    fn unknown_command_suggests_closest() {
        assert_eq!(
            parse("shedule x"),
            Err(GrammarError::UnknownCommand {
                word: "shedule".to_string(),
                suggestion: Some("schedule"),
            })
        );
        assert!(error("agnda").contains("did you mean agenda?"));
        assert!(error("sched tomorrow").contains("did you mean schedule?"));
    }

    #[test]
    fn unknown_command_without_suggestion() {
        let message = error("frobnicate");
        assert!(message.contains("\"frobnicate\""), "{message}");
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn quoted_command_is_unknown() {
        assert!(matches!(
            parse("\"quit\""),
            Err(GrammarError::UnknownCommand { .. })
        ));
    }

    // Account and user commands.

    #[test]
    fn user_commands_parse() {
        let user = "alice".to_string();
        assert_eq!(
            parse("register alice"),
            Ok(ReplCommand::Register { user: user.clone() })
        );
        assert_eq!(
            parse("login alice"),
            Ok(ReplCommand::Login { user: user.clone() })
        );
        assert_eq!(
            parse("whois alice"),
            Ok(ReplCommand::Whois { user: user.clone() })
        );
        assert_eq!(parse("EXISTS alice"), Ok(ReplCommand::Whois { user }));
    }

    #[test]
    fn user_commands_reject_bad_arguments() {
        let missing = error("register");
        assert!(missing.contains("missing user name"), "{missing}");
        assert_usage(&missing, "register");

        let extra = error("login alice bob");
        assert!(extra.contains("unexpected \"bob\""), "{extra}");
        assert_usage(&extra, "login");

        let bad = error("whois al!ce");
        assert!(
            bad.contains("not a user name: \"al!ce\" contains '!'"),
            "{bad}"
        );
        assert_usage(&bad, "whois");
    }

    #[test]
    fn commands_without_arguments() {
        assert_eq!(parse("logout"), Ok(ReplCommand::Logout));
        assert_eq!(parse("delete-account"), Ok(ReplCommand::DeleteAccount));
        assert_eq!(parse("inbox"), Ok(ReplCommand::Inbox));
        assert_eq!(parse("status"), Ok(ReplCommand::Status));
        assert_eq!(parse("quit"), Ok(ReplCommand::Quit));
        assert_eq!(parse("exit"), Ok(ReplCommand::Quit));
        let message = error("logout now");
        assert!(message.contains("logout takes no arguments"), "{message}");
        assert_usage(&message, "logout");
    }

    #[test]
    fn users_with_and_without_pattern() {
        assert_eq!(parse("users"), Ok(ReplCommand::Users { pattern: None }));
        assert_eq!(
            parse("users b*"),
            Ok(ReplCommand::Users {
                pattern: Some("b*".to_string())
            })
        );
        assert!(error("users a b").contains("unexpected \"b\""));
    }

    #[test]
    fn show_and_delete_take_an_id() {
        assert_eq!(parse("show 12"), Ok(ReplCommand::Show { id: 12 }));
        assert_eq!(parse("show #12"), Ok(ReplCommand::Show { id: 12 }));
        assert_eq!(parse("delete 7"), Ok(ReplCommand::Delete { id: 7 }));
        let message = error("show abc");
        assert!(message.contains("\"abc\" is not an event id"), "{message}");
        assert_usage(&message, "show");
        assert!(error("delete").contains("missing event id"));
        assert!(error("delete 99999999999999999999").contains("too large"));
    }

    #[test]
    fn schedule_repeats_on_weekdays() {
        let standup = schedule("schedule \"Standup\" weekdays 9:15 for 15m with bob, carol");
        assert_eq!(standup.title, "Standup");
        assert_eq!(
            standup.recurrence.as_deref(),
            Some("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
        );
        assert_eq!(standup.start, utc("2027-01-04T09:15:00+01:00"));
        assert_eq!(standup.duration_minutes, 15);
        assert_eq!(standup.guests, strings(&["bob", "carol"]));
    }

    #[test]
    fn schedule_repeat_forms_and_ends() {
        let cases = [
            ("schedule \"Gym\" every monday 18:00 for 1h", "FREQ=WEEKLY;BYDAY=MO"),
            (
                "schedule \"Review\" every 2 weeks on tue,thu 14:00 for 1h until 2027-06-30",
                "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;UNTIL=20270630",
            ),
            (
                "schedule \"Retro\" monthly on the last friday 16:00 for 1h 5 times",
                "FREQ=MONTHLY;BYDAY=-1FR;COUNT=5",
            ),
            ("schedule daily 8:00 for 10m Stretch", "FREQ=DAILY"),
            (
                "schedule \"Rent\" monthly on the 1st 2027-02-01 9:00 for 5m with bob until 2027-12-31",
                "FREQ=MONTHLY;BYMONTHDAY=1;UNTIL=20271231",
            ),
        ];
        for (line, rule) in cases {
            assert_eq!(schedule(line).recurrence.as_deref(), Some(rule), "{line}");
        }
        assert_eq!(
            schedule("schedule daily 8:00 for 10m Stretch").title,
            "Stretch"
        );
        let plain = schedule("schedule \"Sync\" tomorrow 10:00 for 45m");
        assert_eq!(plain.recurrence, None);
    }

    #[test]
    fn schedule_repeat_errors() {
        let message = error("schedule \"Sync\" tomorrow 10:00 for 45m until 2027-06-30");
        assert!(message.contains("until ends a repeat"), "{message}");
        let message = error("schedule \"Sync\" daily 10:00 for 5m 3 times until 2027-06-30");
        assert!(message.contains("only one of until"), "{message}");
        let message = error("schedule \"Sync\" every fortnight 10:00");
        assert!(message.contains("not a weekday or a unit"), "{message}");
        assert_usage(&message, "schedule");
        let message = error("schedule \"Sync\" weekdays");
        assert!(message.contains("missing the date and time"), "{message}");
    }

    #[test]
    fn edit_names_an_occurrence() {
        let moved = edit("edit 12 occurrence 2027-01-11 at 2027-01-11 10:00");
        let occurrence = moved.occurrence.expect("an occurrence");
        assert_eq!(occurrence.text, "2027-01-11");
        assert_eq!(occurrence.from, utc("2027-01-11T00:00:00+01:00"));
        assert_eq!(occurrence.to, utc("2027-01-12T00:00:00+01:00"));
        assert_eq!(occurrence.at, None);
        assert!(!occurrence.following);
        assert!(moved.start.is_some());
        let following = edit("edit 12 occurrence 2027-02-01 9:15 and following for 20m");
        let occurrence = following.occurrence.expect("an occurrence");
        assert_eq!(occurrence.at, Some(utc("2027-02-01T09:15:00+01:00")));
        assert!(occurrence.following);
        assert_eq!(following.duration_minutes, Some(20));
        let message = error("edit 12 occurrence 2027-01-11");
        assert!(message.contains("nothing to change"), "{message}");
    }

    #[test]
    fn delete_names_an_occurrence() {
        let Ok(ReplCommand::DeleteOccurrence { id, occurrence }) =
            parse("delete 12 occurrence 2027-01-18")
        else {
            panic!("not a DeleteOccurrence");
        };
        assert_eq!(id, 12);
        assert_eq!(occurrence.from, utc("2027-01-18T00:00:00+01:00"));
        assert!(!occurrence.following);
        let Ok(ReplCommand::DeleteOccurrence { occurrence, .. }) =
            parse("delete 12 occurrence 2027-03-01 and following")
        else {
            panic!("not a DeleteOccurrence");
        };
        assert!(occurrence.following);
        let message = error("delete 12 2027-01-18");
        assert!(message.contains("expected occurrence DATE"), "{message}");
        let message = error("delete 12 occurrence");
        assert!(
            message.contains("missing the date after occurrence"),
            "{message}"
        );
    }

    #[test]
    fn help_forms() {
        assert_eq!(parse("help"), Ok(ReplCommand::Help { command: None }));
        assert_eq!(
            parse("help Schedule"),
            Ok(ReplCommand::Help {
                command: Some("schedule")
            })
        );
        let message = error("help shedule");
        assert!(message.contains("did you mean schedule?"), "{message}");
    }

    #[test]
    fn when_reads_a_date() {
        let Ok(ReplCommand::When(when)) = parse("when fri 14:00") else {
            panic!("when fri 14:00 did not parse");
        };
        assert_eq!(when.instant, utc("2027-01-08T14:00:00+01:00"));
        let message = error("when 25:00");
        assert!(
            message.contains("\"25:00\" is not a time of day"),
            "{message}"
        );
        assert_usage(&message, "when");
        assert!(error("when").contains("missing a date or time"));
    }

    // schedule.

    #[test]
    fn schedule_quoted_title_with_guests() {
        let s = schedule("schedule \"Team sync\" tomorrow 10:00 for 45m with bob, carol");
        assert_eq!(s.title, "Team sync");
        assert_eq!(s.start, utc("2027-01-05T10:00:00+01:00"));
        assert_eq!(s.zone, chrono_tz::Europe::Berlin);
        assert_eq!(s.duration_minutes, 45);
        assert_eq!(s.guests, strings(&["bob", "carol"]));
        assert!(!s.public);
        assert_eq!(s.description, None);
        assert_eq!(s.all_day, None);
    }

    #[test]
    fn schedule_public_town_hall() {
        let s = schedule("schedule public \"Town hall\" 2027-01-05 18:00 for 2h");
        assert_eq!(s.title, "Town hall");
        assert!(s.public);
        assert_eq!(s.start, utc("2027-01-05T18:00:00+01:00"));
        assert_eq!(s.duration_minutes, 120);
        assert!(s.guests.is_empty());
    }

    #[test]
    fn schedule_unquoted_title_after_span() {
        let s = schedule("schedule tomorrow 20:00 24:00 Farewell party");
        assert_eq!(s.title, "Farewell party");
        assert_eq!(s.start, utc("2027-01-05T20:00:00+01:00"));
        assert_eq!(s.duration_minutes, 4 * 60);
        assert!(!s.public);
        assert!(s.guests.is_empty());
    }

    #[test]
    fn schedule_private_keyword_and_defaults() {
        let s = schedule("schedule private \"1:1\" fri 15:00");
        assert!(!s.public);
        assert_eq!(s.duration_minutes, dates::DEFAULT_DURATION_MINUTES);
        assert_eq!(s.start, utc("2027-01-08T15:00:00+01:00"));
    }

    #[test]
    fn schedule_quoted_title_after_time() {
        let s = schedule("schedule tomorrow 10:00 \"Team sync\" with bob");
        assert_eq!(s.title, "Team sync");
        assert_eq!(s.guests, strings(&["bob"]));
    }

    #[test]
    fn schedule_guest_separators_are_uniform() {
        let expected = strings(&["bob", "carol", "dave"]);
        for list in [
            "bob, carol, dave",
            "bob,carol,dave",
            "bob carol dave",
            "bob , carol dave",
            "bob, carol,dave, bob",
            "bob carol, carol dave",
        ] {
            let line = format!("schedule \"Sync\" tomorrow 10:00 with {list}");
            assert_eq!(schedule(&line).guests, expected, "{list}");
        }
    }

    #[test]
    fn schedule_rejects_empty_guest_names() {
        for list in ["bob,,carol", "bob, , carol", ", bob", "bob,", ""] {
            let line = format!("schedule \"Sync\" tomorrow 10:00 with {list}");
            let message = error(&line);
            assert!(
                message.contains("empty guest name") || message.contains("missing guest names"),
                "{list}: {message}"
            );
            assert_usage(&message, "schedule");
        }
    }

    #[test]
    fn schedule_with_description() {
        let s = schedule(
            "schedule \"Offsite\" 2027-03-01 all day for 2d about \"Bring boots\" with bob",
        );
        assert_eq!(s.description.as_deref(), Some("Bring boots"));
        assert_eq!(s.all_day, "2027-03-01".parse().ok());
        assert_eq!(s.start, utc("2027-03-01T00:00:00+01:00"));
        assert_eq!(s.duration_minutes, 2 * 24 * 60);
        assert_eq!(s.guests, strings(&["bob"]));
    }

    #[test]
    fn schedule_carries_dst_notice() {
        let s = schedule("schedule \"Early\" 2027-03-28 02:30 for 30m");
        assert_eq!(s.start, utc("2027-03-28T01:30:00Z"));
        assert_eq!(s.notices.len(), 1);
        assert!(
            s.notices[0].contains("02:30 does not exist"),
            "{:?}",
            s.notices
        );
    }

    #[test]
    fn schedule_unquoted_title_with_guests() {
        let s = schedule("schedule fri 12:00 for 1h Lunch with bob");
        assert_eq!(s.title, "Lunch");
        assert_eq!(s.guests, strings(&["bob"]));
    }

    #[test]
    fn schedule_errors_name_token_and_usage() {
        let cases = [
            ("schedule", "missing the date and time"),
            ("schedule \"Sync\"", "missing the date and time"),
            ("schedule \"Sync\" with bob", "unexpected \"with\""),
            (
                "schedule Farewell party tomorrow",
                "unexpected \"Farewell\"",
            ),
            ("schedule tomorrow 10:00", "missing the title"),
            ("schedule \"A\" tomorrow 10:00 B", "unexpected \"B\""),
            ("schedule \"A\" tomorrow 10:00 \"B\"", "unexpected \"B\""),
            (
                "schedule \"A\" tomorrow 10:00 with bob with carol",
                "\"with\" is given twice",
            ),
            (
                "schedule \"A\" tomorrow 10:00 about Rust",
                "about takes a quoted description",
            ),
            (
                "schedule \"A\" tomorrow 25:00",
                "\"25:00\" is not a time of day",
            ),
            (
                "schedule \"A\" tomorrow 10:00 for 90",
                "\"90\" is not a valid duration",
            ),
            ("schedule \"\" tomorrow 10:00", "missing the title"),
            ("schedule \"A\" tomorrow 10:00 09:00 x", "x"),
        ];
        for (line, expected) in cases {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert_usage(&message, "schedule");
        }
    }

    // edit.

    #[test]
    fn edit_several_fields() {
        let e = edit("edit 12 title \"New\" description \"Text\" at fri 14:00 for 1h30m public");
        assert_eq!(e.id, 12);
        assert_eq!(e.title.as_deref(), Some("New"));
        assert_eq!(e.description.as_deref(), Some("Text"));
        assert_eq!(
            e.start.map(|w| w.instant),
            Some(utc("2027-01-08T14:00:00+01:00"))
        );
        assert_eq!(e.duration_minutes, Some(90));
        assert_eq!(e.public, Some(true));
        assert_eq!(e.guests, None);
    }

    #[test]
    fn edit_single_fields() {
        assert_eq!(edit("edit 3 private").public, Some(false));
        assert_eq!(
            edit("edit 3 with bob,carol").guests,
            Some(strings(&["bob", "carol"]))
        );
        assert_eq!(
            edit("edit 3 title Team lunch for 2h").title.as_deref(),
            Some("Team lunch")
        );
        assert_eq!(edit("edit 3 for 2 hours").duration_minutes, Some(120));
        let both = edit("edit 3 with bob private");
        assert_eq!(both.guests, Some(strings(&["bob"])));
        assert_eq!(both.public, Some(false));
    }

    #[test]
    fn edit_errors_name_token_and_usage() {
        let cases = [
            ("edit", "missing event id"),
            ("edit x title A", "\"x\" is not an event id"),
            ("edit 12", "nothing to change for event 12"),
            ("edit 12 colour red", "unexpected \"colour\""),
            (
                "edit 12 public private",
                "give only one of public and private",
            ),
            ("edit 12 title A title B", "\"title\" is given twice"),
            ("edit 12 title", "missing the text after title"),
            ("edit 12 at", "missing the date and time after at"),
            (
                "edit 12 at 2027-02-30 10:00",
                "\"2027-02-30\" is not a valid date",
            ),
            ("edit 12 at tomorrow 10:00 lunch", "unexpected \"lunch\""),
            ("edit 12 for", "missing the duration"),
            ("edit 12 for 90", "\"90\" is not a valid duration"),
            ("edit 12 with", "missing guest names"),
            ("edit 12 title \"  \"", "the new title is empty"),
        ];
        for (line, expected) in cases {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert_usage(&message, "edit");
        }
    }

    // agenda.

    #[test]
    fn agenda_default_is_seven_days_from_today() {
        let expected = AgendaRange {
            from: utc("2027-01-04T00:00:00+01:00"),
            to: utc("2027-01-11T00:00:00+01:00"),
            zone: chrono_tz::Europe::Berlin,
        };
        assert_eq!(agenda("agenda"), expected);
        assert_eq!(agenda("agenda week"), expected);
    }

    #[test]
    fn agenda_single_days() {
        let today = agenda("agenda today");
        assert_eq!(today.from, utc("2027-01-04T00:00:00+01:00"));
        assert_eq!(today.to, utc("2027-01-05T00:00:00+01:00"));
        let tomorrow = agenda("agenda tomorrow");
        assert_eq!(tomorrow.from, utc("2027-01-05T00:00:00+01:00"));
        assert_eq!(tomorrow.to, utc("2027-01-06T00:00:00+01:00"));
        let date = agenda("agenda 2027-02-01");
        assert_eq!(date.from, utc("2027-02-01T00:00:00+01:00"));
        assert_eq!(date.to, utc("2027-02-02T00:00:00+01:00"));
        // Today is a Monday, so mon is today.
        assert_eq!(agenda("agenda mon"), today);
    }

    #[test]
    fn agenda_day_of_dst_change_is_23_hours() {
        let range = agenda("agenda 2027-03-28");
        assert_eq!((range.to - range.from).num_hours(), 23);
    }

    #[test]
    fn agenda_next_week_is_next_iso_week() {
        let range = agenda("agenda next week");
        assert_eq!(range.from, utc("2027-01-11T00:00:00+01:00"));
        assert_eq!(range.to, utc("2027-01-18T00:00:00+01:00"));
    }

    #[test]
    fn agenda_from_to_includes_last_day() {
        let range = agenda("agenda mon to fri");
        assert_eq!(range.from, utc("2027-01-04T00:00:00+01:00"));
        assert_eq!(range.to, utc("2027-01-09T00:00:00+01:00"));
        let weekend = agenda("agenda fri to mon");
        assert_eq!(weekend.from, utc("2027-01-08T00:00:00+01:00"));
        assert_eq!(weekend.to, utc("2027-01-12T00:00:00+01:00"));
        let timed = agenda("agenda tomorrow 08:00 to 12:00");
        assert_eq!(timed.from, utc("2027-01-05T08:00:00+01:00"));
        assert_eq!(timed.to, utc("2027-01-05T12:00:00+01:00"));
    }

    #[test]
    fn agenda_errors_name_token_and_usage() {
        let cases = [
            ("agenda tomorrow 10:00", "has a time"),
            ("agenda soon", "\"soon\" is not a date"),
            ("agenda to fri", "missing the start"),
            ("agenda mon to", "missing the end"),
            ("agenda 2027-01-08 to 2027-01-04", "is not after the start"),
            ("agenda 2027-02-30", "\"2027-02-30\" is not a valid date"),
            ("agenda tomorrow lunch", "unexpected \"lunch\""),
            ("agenda \"today\"", "unexpected quoted"),
        ];
        for (line, expected) in cases {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert_usage(&message, "agenda");
        }
    }

    // search.

    #[test]
    fn search_by_text_only() {
        let query = search("search budget review");
        assert_eq!(query.text.as_deref(), Some("budget review"));
        assert_eq!(query.host, None);
        assert_eq!(query.from, None);
        assert_eq!(query.to, None);
    }

    #[test]
    fn search_all_criteria() {
        let query = search("search host bob from 2027-01-01 to 2027-01-31 \"town hall\"");
        assert_eq!(query.host.as_deref(), Some("bob"));
        assert_eq!(query.from, Some(utc("2027-01-01T00:00:00+01:00")));
        assert_eq!(query.to, Some(utc("2027-02-01T00:00:00+01:00")));
        assert_eq!(query.text.as_deref(), Some("town hall"));
    }

    #[test]
    fn search_criteria_in_any_order() {
        let query = search("search planning to tomorrow 18:00 host carol");
        assert_eq!(query.text.as_deref(), Some("planning"));
        assert_eq!(query.to, Some(utc("2027-01-05T18:00:00+01:00")));
        assert_eq!(query.host.as_deref(), Some("carol"));
        let weekend = search("search from fri to mon");
        assert_eq!(weekend.from, Some(utc("2027-01-08T00:00:00+01:00")));
        assert_eq!(weekend.to, Some(utc("2027-01-12T00:00:00+01:00")));
        let only_to = search("search to mon");
        assert_eq!(only_to.to, Some(utc("2027-01-05T00:00:00+01:00")));
        let only_from = search("search from tomorrow");
        assert_eq!(only_from.from, Some(utc("2027-01-05T00:00:00+01:00")));
        assert_eq!(only_from.text, None);
    }

    #[test]
    fn register_rejects_names_calendar_rejects() {
        let cases = [
            ("register b@d", "\"b@d\" contains '@'"),
            ("register j\u{f6}rg", "contains '\u{f6}'"),
            (
                "register aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "has 33 characters",
            ),
        ];
        for (line, expected) in cases {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert_usage(&message, "register");
        }
        assert!(parse("register Alice_B-c.9").is_ok());
    }

    #[test]
    fn search_quoted_keyword_is_text() {
        let query = search("search \"from\" host bob");
        assert_eq!(query.text.as_deref(), Some("from"));
        assert_eq!(query.host.as_deref(), Some("bob"));
    }

    #[test]
    fn search_errors_name_token_and_usage() {
        let cases = [
            ("search", "give at least one criterion"),
            ("search host", "missing the user name after host"),
            ("search host b!b", "not a user name: \"b!b\" contains '!'"),
            ("search host bob host carol", "\"host\" is given twice"),
            ("search from", "missing the date after from"),
            ("search from budget", "missing the date after from"),
            (
                "search from 2027-01-08 to 2027-01-04",
                "not after the start",
            ),
            ("search to 24:30", "\"24:30\" is not a time of day"),
        ];
        for (line, expected) in cases {
            let message = error(line);
            assert!(message.contains(expected), "{line}: {message}");
            assert_usage(&message, "search");
        }
    }

    // Helpers.

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("agnda", "agenda"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn import_takes_one_file() {
        assert_eq!(
            parse("import \"my calendar.ics\"").unwrap(),
            ReplCommand::Import {
                path: "my calendar.ics".into(),
                lenient: false,
            }
        );
        assert_eq!(
            parse("import outlook.ics lenient").unwrap(),
            ReplCommand::Import {
                path: "outlook.ics".into(),
                lenient: true,
            }
        );
        let missing = parse("import").unwrap_err().to_string();
        assert!(missing.contains("missing FILE.ics"), "{missing}");
        let extra = parse("import my calendar.ics").unwrap_err().to_string();
        assert!(extra.contains("quote a file name"), "{extra}");
    }

    #[test]
    fn export_defaults_to_three_years() {
        let Ok(ReplCommand::Export { path, range }) = parse("export") else {
            panic!("export did not parse");
        };
        assert_eq!(path, None);
        assert_eq!(range.from, utc("2026-01-04T00:00:00+01:00"));
        assert_eq!(range.to, utc("2029-01-03T00:00:00+01:00"));
    }

    #[test]
    fn export_reads_file_and_range() {
        let Ok(ReplCommand::Export { path, range }) =
            parse("export team.ics 2027-01-05 to 2027-01-06")
        else {
            panic!("export did not parse");
        };
        assert_eq!(path.as_deref(), Some("team.ics"));
        assert_eq!(range.from, utc("2027-01-05T00:00:00+01:00"));
        let Ok(ReplCommand::Export { path, .. }) = parse("export tomorrow") else {
            panic!("export tomorrow did not parse");
        };
        assert_eq!(path, None);
    }
}
