//! Accounts and sessions: register, open and close sessions, delete an
//! account, and the lookups the shell needs to log users in.
//!
//! Usernames are stored as typed and compared lowercased, so `Alice` and
//! `alice` are the same account and only one of them can be registered.

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

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

/// The key a username is stored and compared under.
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

    /// The username (as registered) of an open session.
    pub fn session_user(&self, token_digest: &[u8; 32]) -> Option<&str> {
        let key = self.sessions.get(token_digest)?;
        self.users.get(key).map(|user| user.username.as_str())
    }

    /// Sorted usernames matching: a plain pattern matches as a case-insensitive
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
        event.version += 1;
        self.replace_event(event_id, event.clone());
        let host = std::iter::once(user_key(&event.host)).collect();
        self.notify(&host, NotificationKind::Changed, &event, username, now_ms);
    }
}
