//! rustyline integration: completion of command names and usernames, and a
//! hint with the usage of the command being typed.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::repl::grammar::COMMANDS;

/// Commands whose arguments include usernames, so that Tab completes them.
/// Elsewhere a username follows `with` (guests) or `search ... host`.
const TAKES_USERNAMES: [&str; 5] = ["login", "users", "whois", "exists", "free"];

/// Commands whose first argument is an .ics file, so that Tab completes paths.
const TAKES_ICS_FILES: [&str; 2] = ["import", "export"];

/// Completes a path, offering only directories and `.ics` files.
fn ics_candidates(line: &str, pos: usize) -> rustyline::Result<(usize, Vec<Pair>)> {
    let (start, candidates) = FilenameCompleter::new().complete_path(line, pos)?;
    let wanted = candidates
        .into_iter()
        .filter(|pair| {
            let name = pair.replacement.to_ascii_lowercase();
            name.ends_with('/') || name.ends_with(".ics")
        })
        .collect();
    Ok((start, wanted))
}

/// Usernames the client has seen, shared with the thread that talks to the
/// cluster, which refreshes it.
pub type KnownUsers = Arc<Mutex<Vec<String>>>;

pub struct ReplHelper {
    pub users: KnownUsers,
    pub color: bool,
}

impl ReplHelper {
    fn user_candidates(&self, prefix: &str) -> Vec<Pair> {
        let users = self.users.lock().map(|u| u.clone()).unwrap_or_default();
        users
            .into_iter()
            .filter(|name| name.to_lowercase().starts_with(&prefix.to_lowercase()))
            .map(|name| Pair {
                display: name.clone(),
                replacement: name,
            })
            .collect()
    }
}

/// Start of the word that ends at `pos`.
fn word_start(line: &str, pos: usize) -> usize {
    line[..pos]
        .rfind(|c: char| c.is_whitespace() || c == ',')
        .map_or(0, |index| index + 1)
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let prefix = &line[start..pos];
        if line[..start].trim().is_empty() {
            let commands = COMMANDS
                .iter()
                .filter(|command| command.name.starts_with(prefix))
                .map(|command| Pair {
                    display: command.name.to_owned(),
                    replacement: format!("{} ", command.name),
                })
                .collect();
            return Ok((start, commands));
        }
        let command = line.split_whitespace().next().unwrap_or("");
        let before = &line[..start];
        let after_with = before.split_whitespace().any(|word| word == "with");
        let search_host = command == "search" && before.split_whitespace().last() == Some("host");
        if TAKES_USERNAMES.contains(&command) || after_with || search_host {
            return Ok((start, self.user_candidates(prefix)));
        }
        if TAKES_ICS_FILES.contains(&command) && before.split_whitespace().count() == 1 {
            return ics_candidates(line, pos);
        }
        Ok((start, Vec::new()))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    /// Shows the rest of the usage line while the first word is being typed
    /// or right after it.
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos != line.len() || line.is_empty() {
            return None;
        }
        let mut words = line.split_whitespace();
        let first = words.next()?;
        if words.next().is_some() {
            return None;
        }
        if line.ends_with(' ') {
            let command = COMMANDS.iter().find(|command| command.name == first)?;
            let arguments = command.usage.strip_prefix(command.name)?.trim_start();
            return (!arguments.is_empty()).then(|| arguments.to_owned());
        }
        let matches: Vec<_> = COMMANDS
            .iter()
            .filter(|command| command.name.starts_with(first))
            .collect();
        match matches.as_slice() {
            [only] => Some(only.name[first.len()..].to_owned()),
            _ => None,
        }
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    fn helper(users: &[&str]) -> ReplHelper {
        ReplHelper {
            users: Arc::new(Mutex::new(users.iter().map(|u| u.to_string()).collect())),
            color: false,
        }
    }

    fn complete(helper: &ReplHelper, line: &str) -> (usize, Vec<String>) {
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, pairs) = helper.complete(line, line.len(), &ctx).unwrap();
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn completes_command_names() {
        let (start, found) = complete(&helper(&[]), "sch");
        assert_eq!(start, 0);
        assert_eq!(found, vec!["schedule ".to_owned()]);
    }

    #[test]
    fn completes_usernames_after_with() {
        let helper = helper(&["bob", "Bea", "carol"]);
        let (start, found) = complete(&helper, "schedule \"Sync\" tomorrow 10:00 with b");
        assert_eq!(start, "schedule \"Sync\" tomorrow 10:00 with ".len());
        assert_eq!(found, vec!["bob".to_owned(), "Bea".to_owned()]);
    }

    #[test]
    fn completes_usernames_after_comma() {
        let helper = helper(&["bob", "carol"]);
        let (_, found) = complete(&helper, "schedule \"Sync\" tomorrow 10:00 with bob,c");
        assert_eq!(found, vec!["carol".to_owned()]);
    }

    #[test]
    fn completes_usernames_of_free_and_suggest() {
        let helper = helper(&["bob", "carol"]);
        let (_, found) = complete(&helper, "free bob, c");
        assert_eq!(found, vec!["carol".to_owned()]);
        let (_, found) = complete(&helper, "suggest \"Retro\" for 1h with b");
        assert_eq!(found, vec!["bob".to_owned()]);
    }

    #[test]
    fn completes_search_host_only() {
        let helper = helper(&["bob", "carol"]);
        let (_, found) = complete(&helper, "search host b");
        assert_eq!(found, vec!["bob".to_owned()]);
        let (_, found) = complete(&helper, "search b");
        assert!(found.is_empty(), "search words are no usernames: {found:?}");
        let (_, found) = complete(&helper, "search host bob budg");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn hints_rest_of_unique_command() {
        let helper = helper(&[]);
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        assert_eq!(helper.hint("agen", 4, &ctx), Some("da".to_owned()));
        assert_eq!(helper.hint("agenda x", 8, &ctx), None);
    }
}
