//! Accounts and sessions: register, open and close sessions, delete an
//! account, and the lookups the shell needs to log users in.
//!
//! Usernames are stored as typed and compared lowercased, so `Alice` and
//! `alice` are the same account and only one of them can be registered.

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

use super::history::Change;
use super::limits::MAX_SESSIONS_PER_USER;
use super::notifications::Inbox;
use super::state::Calendar;
use super::types::{Effect, EventId, NotificationKind, Rejection, Visibility};
use super::validate::{validate_password_hash, validate_username};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    /// As typed at registration.
    pub username: String,
    /// argon2id PHC string computed by the primary.
    pub password_hash: String,
    /// Token digests of the open sessions, oldest first.
    pub sessions: Vec<[u8; 32]>,
    pub inbox: Inbox,
}

/// Returns the lowercase key under which a username is stored and compared.
pub(crate) fn user_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

impl Calendar {
    pub fn user_exists(&self, username: &str) -> bool {
        self.users.contains_key(&user_key(username))
    }

    pub fn password_hash(&self, username: &str) -> Option<&str> {
        let user = self.users.get(&user_key(username))?;
        Some(&user.password_hash)
    }

    /// Returns the registered username of an open session.
    pub fn session_user(&self, token_digest: &[u8; 32]) -> Option<&str> {
        let key = self.sessions.get(token_digest)?;
        self.users.get(key).map(|user| user.username.as_str())
    }

    /// Lists the sorted usernames that match a pattern. A plain pattern matches as a case-insensitive
    /// substring; a pattern with `*` or `?` is a case-insensitive glob. An
    /// empty pattern matches everyone.
    pub fn users(&self, pattern: &str) -> Vec<String> {
        let pattern = pattern.trim();
        let names = self.users.values().map(|user| &user.username);
        if pattern.contains(['*', '?']) {
            let glob = WildMatch::new_case_insensitive(pattern);
            names.filter(|name| glob.matches(name)).cloned().collect()
        } else {
            let needle = pattern.to_lowercase();
            let matches = |name: &&String| name.to_ascii_lowercase().contains(&needle);
            names.filter(matches).cloned().collect()
        }
    }

    /// Returns the lowercase key of an existing user, or `NotFound`.
    pub(crate) fn existing_user(&self, username: &str) -> Result<String, Rejection> {
        let key = user_key(username);
        if self.users.contains_key(&key) {
            Ok(key)
        } else {
            Err(Rejection::not_found(format!("user \"{username}\"")))
        }
    }

    pub(crate) fn register(
        &mut self,
        username: &str,
        password_hash: &str,
    ) -> Result<Effect, Rejection> {
        validate_username(username)?;
        validate_password_hash(password_hash)?;
        let key = user_key(username);
        if let Some(existing) = self.users.get(&key) {
            return Err(Rejection::AlreadyExists {
                what: format!("user \"{}\"", existing.username),
            });
        }
        let first_seq = self.retired_seqs.remove(&key).unwrap_or(0);
        let user = User {
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            sessions: Vec::new(),
            inbox: Inbox::starting_after(first_seq),
        };
        self.users.insert(key, user);
        Ok(Effect::Registered {
            username: username.to_string(),
        })
    }

    /// Opens a session; beyond `MAX_SESSIONS_PER_USER` the user's oldest
    /// session is closed. Opening the same digest again for the same user is
    /// a success that changes nothing.
    pub(crate) fn open_session(
        &mut self,
        username: &str,
        token_digest: &[u8; 32],
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(username)?;
        if let Some(owner) = self.sessions.get(token_digest) {
            if *owner != key {
                return Err(Rejection::AlreadyExists {
                    what: "a session with this token".to_string(),
                });
            }
        } else {
            self.sessions.insert(*token_digest, key.clone());
            let user = self
                .users
                .get_mut(&key)
                .expect("existing_user checked the key");
            user.sessions.push(*token_digest);
            if user.sessions.len() > MAX_SESSIONS_PER_USER {
                let oldest = user.sessions.remove(0);
                self.sessions.remove(&oldest);
            }
        }
        let username = self.users[&key].username.clone();
        Ok(Effect::SessionOpened { username })
    }

    pub(crate) fn close_session(&mut self, token_digest: &[u8; 32]) -> Result<Effect, Rejection> {
        let Some(key) = self.sessions.remove(token_digest) else {
            return Err(Rejection::not_found(
                "session (it was closed, replaced, or never opened)",
            ));
        };
        if let Some(user) = self.users.get_mut(&key) {
            user.sessions.retain(|digest| digest != token_digest);
        }
        Ok(Effect::SessionClosed)
    }

    /// Deletes an account: cancels every event it hosts (participants get
    /// `Cancelled`), removes it from every guest list (the event's version
    /// grows and its host gets `Changed` with the deleted user as actor), and
    /// removes its sessions, inbox and password. The username becomes free.
    pub(crate) fn delete_account(
        &mut self,
        caller: &str,
        now_ms: i64,
    ) -> Result<Effect, Rejection> {
        let key = self.existing_user(caller)?;
        let username = self.users[&key].username.clone();
        let hosted: Vec<EventId> = self.index.hosted_by(&key).collect();
        for &event_id in &hosted {
            let event = self.remove_event(event_id);
            self.forget_history(event_id);
            let audience = self.audience(&event);
            self.notify(
                &audience,
                NotificationKind::Cancelled,
                &event,
                &username,
                now_ms,
            );
        }
        let guest_of: Vec<EventId> = self.index.private_of(&key).collect();
        for event_id in guest_of {
            self.drop_guest(event_id, &key, &username, now_ms);
        }
        self.forget_public_responses(&key);
        self.working_hours.remove(&key);

        let user = self
            .users
            .remove(&key)
            .expect("existing_user checked the key");
        for digest in &user.sessions {
            self.sessions.remove(digest);
        }
        self.retired_seqs.insert(key, user.inbox.last_seq());
        Ok(Effect::AccountDeleted {
            username,
            cancelled_events: hosted,
        })
    }

    fn drop_guest(&mut self, event_id: EventId, key: &str, username: &str, now_ms: i64) {
        let mut event = self.events[&event_id].clone();
        if let Visibility::Private { guests } = &mut event.visibility {
            guests.retain(|guest| user_key(guest) != key);
        }
        event
            .responses
            .retain(|entry| user_key(&entry.guest) != key);
        event.version += 1;
        self.replace_event(event_id, event.clone());
        let removed = Change::GuestRemoved {
            guest: username.to_string(),
        };
        self.record_history(event_id, now_ms, username, removed);
        let host = std::iter::once(user_key(&event.host)).collect();
        self.notify(&host, NotificationKind::Changed, &event, username, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_SESSIONS_PER_USER;
    use super::super::test_support::{guests, private, public, Harness, MONDAY};
    use super::super::types::{Command, Effect, NotificationKind, Rejection, Visibility};

    fn open(username: &str, digest: u8) -> Command {
        Command::OpenSession {
            username: username.into(),
            token_digest: [digest; 32],
        }
    }

    fn close(digest: u8) -> Command {
        Command::CloseSession {
            token_digest: [digest; 32],
        }
    }

    fn delete_account(caller: &str) -> Command {
        Command::DeleteAccount {
            caller: caller.into(),
        }
    }

    #[test]
    fn register_stores_name_as_typed() {
        let mut harness = Harness::new();
        let effect = harness.ok(Command::Register {
            username: "Alice".into(),
            password_hash: "$argon2id$hash".into(),
        });
        assert_eq!(
            effect,
            Effect::Registered {
                username: "Alice".into()
            }
        );
        assert!(harness.calendar.user_exists("alice"));
        assert!(harness.calendar.user_exists("ALICE"));
        assert_eq!(
            harness.calendar.password_hash("aLiCe"),
            Some("$argon2id$hash")
        );
        assert_eq!(harness.calendar.users(""), vec!["Alice"]);
        assert_eq!(harness.calendar.user_count(), 1);
    }

    #[test]
    fn register_is_unique_case_insensitively() {
        let mut harness = Harness::with_users(&["Alice"]);
        let rejection = harness.rejected(Command::Register {
            username: "alice".into(),
            password_hash: "h".into(),
        });
        assert_eq!(
            rejection,
            Rejection::AlreadyExists {
                what: "user \"Alice\"".into()
            }
        );
    }

    #[test]
    fn register_validates_input() {
        let mut harness = Harness::new();
        let bad_name = Command::Register {
            username: "no spaces".into(),
            password_hash: "h".into(),
        };
        assert!(matches!(
            harness.rejected(bad_name),
            Rejection::Invalid { .. }
        ));
        let no_hash = Command::Register {
            username: "bob".into(),
            password_hash: String::new(),
        };
        assert!(matches!(
            harness.rejected(no_hash),
            Rejection::Invalid { .. }
        ));
        assert!(!harness.calendar.user_exists("bob"));
    }

    #[test]
    fn session_opens_and_closes() {
        let mut harness = Harness::with_users(&["Alice"]);
        let effect = harness.ok(open("alice", 1));
        assert_eq!(
            effect,
            Effect::SessionOpened {
                username: "Alice".into()
            }
        );
        assert_eq!(harness.calendar.session_user(&[1; 32]), Some("Alice"));
        assert_eq!(
            harness.ok(open("alice", 1)),
            effect,
            "reopening is idempotent"
        );
        assert_eq!(harness.ok(close(1)), Effect::SessionClosed);
        assert_eq!(harness.calendar.session_user(&[1; 32]), None);
    }

    #[test]
    fn session_rejects_unknowns() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        let unknown_user = harness.rejected(open("ghost", 1));
        assert_eq!(unknown_user, Rejection::not_found("user \"ghost\""));
        let unknown_digest = harness.rejected(close(9));
        assert!(matches!(unknown_digest, Rejection::NotFound { .. }));
        harness.ok(open("alice", 1));
        let taken = harness.rejected(open("bob", 1));
        assert!(matches!(taken, Rejection::AlreadyExists { .. }));
    }

    #[test]
    fn sessions_beyond_limit_drop_oldest() {
        let mut harness = Harness::with_users(&["alice"]);
        for digest in 0..=MAX_SESSIONS_PER_USER as u8 {
            harness.ok(open("alice", digest));
        }
        assert_eq!(harness.calendar.session_user(&[0; 32]), None);
        assert_eq!(harness.calendar.session_user(&[1; 32]), Some("alice"));
        let last = MAX_SESSIONS_PER_USER as u8;
        assert_eq!(harness.calendar.session_user(&[last; 32]), Some("alice"));
        assert_eq!(harness.calendar.sessions.len(), MAX_SESSIONS_PER_USER);
    }

    #[test]
    fn users_match_substring_and_glob() {
        let harness = Harness::with_users(&["carol", "Alice", "alfred", "bob", "al.x"]);
        let calendar = &harness.calendar;
        // Sorted by lowercase name, so "." sorts before letters.
        assert_eq!(
            calendar.users(""),
            vec!["al.x", "alfred", "Alice", "bob", "carol"]
        );
        assert_eq!(calendar.users("AL"), vec!["al.x", "alfred", "Alice"]);
        assert_eq!(calendar.users("ic"), vec!["Alice"]);
        assert_eq!(calendar.users("a*"), vec!["al.x", "alfred", "Alice"]);
        assert_eq!(calendar.users("AL?X"), vec!["al.x"]);
        assert_eq!(calendar.users("*o*"), vec!["bob", "carol"]);
        assert_eq!(calendar.users("b?"), Vec::<String>::new());
        assert_eq!(calendar.users("zzz"), Vec::<String>::new());
    }

    #[test]
    fn delete_account_cancels_hosted_events() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let party = harness.schedule("alice", public("Party", MONDAY, 30));
        let plan = harness.schedule("alice", private("Plan", MONDAY + 60, 30, &["bob"]));
        let effect = harness.ok(delete_account("alice"));
        let expected = Effect::AccountDeleted {
            username: "alice".into(),
            cancelled_events: vec![party, plan],
        };
        assert_eq!(effect, expected);
        assert_eq!(harness.calendar.event_count(), 0);
        let bob: Vec<_> = harness.calendar.notifications("bob", 0);
        let bob_kinds: Vec<_> = bob.iter().map(|n| (n.kind, n.event.id)).collect();
        use NotificationKind::{Cancelled, Invited};
        let expected = vec![
            (Invited, party),
            (Invited, plan),
            (Cancelled, party),
            (Cancelled, plan),
        ];
        assert_eq!(bob_kinds, expected);
        let carol = harness.calendar.notifications("carol", 0);
        assert_eq!(
            carol.len(),
            2,
            "carol was invited to and told of the public event"
        );
        assert!(harness.calendar.index.by_start.is_empty());
        assert!(harness.calendar.index.private_by_participant.is_empty());
    }

    #[test]
    fn delete_account_leaves_guest_lists() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        let id = harness.schedule("bob", private("Plan", MONDAY, 30, &["alice", "carol"]));
        harness.ok(delete_account("alice"));
        let event = harness.calendar.event("bob", id).unwrap();
        assert_eq!(event.visibility, guests(&["carol"]));
        assert_eq!(event.version, 2);
        let host_inbox = harness.calendar.notifications("bob", 0);
        assert_eq!(host_inbox.len(), 1);
        assert_eq!(host_inbox[0].kind, NotificationKind::Changed);
        assert_eq!(host_inbox[0].actor, "alice");
        assert_eq!(
            harness.calendar.notifications("carol", 0).len(),
            1,
            "only the invitation"
        );
        assert!(!harness
            .calendar
            .index
            .private_by_participant
            .contains_key("alice"));
    }

    #[test]
    fn delete_account_removes_login() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.ok(open("alice", 1));
        harness.ok(open("alice", 2));
        harness.ok(open("bob", 3));
        harness.ok(delete_account("alice"));
        assert!(!harness.calendar.user_exists("alice"));
        assert_eq!(harness.calendar.password_hash("alice"), None);
        assert_eq!(harness.calendar.session_user(&[1; 32]), None);
        assert_eq!(harness.calendar.session_user(&[2; 32]), None);
        assert_eq!(harness.calendar.session_user(&[3; 32]), Some("bob"));
        assert_eq!(
            harness.rejected(delete_account("alice")),
            Rejection::not_found("user \"alice\"")
        );
    }

    #[test]
    fn deleted_name_is_free_and_seqs_continue() {
        let mut harness = Harness::with_users(&["alice", "bob"]);
        harness.schedule("bob", public("One", MONDAY, 30));
        harness.schedule("bob", public("Two", MONDAY + 30, 30));
        harness.ok(delete_account("alice"));
        harness.register("Alice");
        assert!(harness.calendar.notifications("alice", 0).is_empty());
        assert_eq!(harness.calendar.acked_seq("alice"), 2);
        harness.schedule("bob", public("Three", MONDAY + 60, 30));
        let inbox = harness.calendar.notifications("alice", 0);
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].seq, 3);
    }

    #[test]
    fn deleted_guest_frees_their_time() {
        let mut harness = Harness::with_users(&["alice", "bob", "carol"]);
        harness.schedule("bob", private("Plan", MONDAY, 30, &["alice"]));
        harness.ok(delete_account("alice"));
        harness.register("alice");
        let id = harness.schedule("carol", private("Chat", MONDAY, 30, &["alice"]));
        let visibility = harness.calendar.event("carol", id).unwrap().visibility;
        assert_eq!(
            visibility,
            Visibility::Private {
                guests: vec!["alice".into()]
            }
        );
    }
}
