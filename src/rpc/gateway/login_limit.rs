//! Rate limits on failed logins, per user and per remote address.
//!
//! Each key (a username or an IP address) has a token bucket, kept as one
//! timestamp in the style of the generic cell rate algorithm. The bucket is
//! full once the clock passes `refilled_at_ms`, and every failed login moves
//! that time one refill interval further. A login that would overdraw a
//! bucket is rejected with the wait until the next token.
//!
//! Lockout: a per-user limit lets a stranger who guesses from elsewhere keep
//! the user's bucket empty. So an address that logged in as a user within
//! `TRUSTED_ADDRESS_TTL_MS` skips that user's bucket and is limited only by
//! its own address bucket. The owner of an account thus keeps logging in
//! from their usual places while someone else hammers it. Once the attack
//! stops, the next token for everyone else arrives within one refill
//! interval.
//!
//! NOTE: from an address it never logged in from, the owner competes with
//! the attacker for the user's tokens while the attack lasts, and may lose
//! every time to an attacker who retries faster.
//!
//! The limits are per node and not replicated: a client that moves to
//! another node starts with full buckets there, so a cluster of n nodes
//! allows at most n times the rates below.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Failed logins one address may make in a burst, across all usernames.
/// Twenty covers a household behind one NAT address mistyping passwords,
/// and stops one host from guessing quickly.
pub const ADDRESS_FAILURES_BURST: i64 = 20;

/// Time for an address to earn back one failed login (3 s, so 20 a minute).
pub const ADDRESS_REFILL_MS: i64 = 3_000;

/// Failed logins against one username in a burst, from addresses that have
/// not logged in as that user before. Five mistyped passwords in a row are
/// rare for a person and too few for guessing.
pub const USER_FAILURES_BURST: i64 = 5;

/// Time for a username to earn back one failed login (12 s, so 5 a minute).
pub const USER_REFILL_MS: i64 = 12_000;

/// How long a successful login from an address exempts that address from
/// the user's bucket: 30 days, so a person's usual places stay trusted.
pub const TRUSTED_ADDRESS_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Maximum number of buckets, and of trusted pairs, kept. Beyond it the
/// entries that refill soonest or were trusted longest ago are dropped, which
/// bounds the memory a flood of made-up usernames can take.
pub const TRACKED_ENTRIES_MAX: usize = 10_000;

/// The limit that rejected a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitedBy {
    User(String),
    Address(IpAddr),
}

/// A login that the limiter rejected, and how long to wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginWait {
    pub limited_by: LimitedBy,
    pub wait_ms: i64,
}

impl LoginWait {
    /// Returns the wait in whole seconds, rounded up, so that a retry after
    /// it finds a token unless other attempts took it first.
    pub fn wait_seconds(&self) -> i64 {
        (self.wait_ms + 999) / 1000
    }
}

impl std::fmt::Display for LoginWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.wait_seconds();
        match &self.limited_by {
            LimitedBy::User(user) => write!(
                f,
                "too many failed logins for user {user}; wait {seconds} s before trying again"
            ),
            LimitedBy::Address(address) => write!(
                f,
                "too many failed logins from address {address}; \
                 wait {seconds} s before trying again"
            ),
        }
    }
}

/// The tokens one login attempt took, returned when it succeeds or fails for
/// a reason other than the password.
#[derive(Debug)]
#[must_use = "settle the reservation with succeeded, failed or cancelled"]
pub struct Reservation {
    user: String,
    address: IpAddr,
    took_user_token: bool,
}

/// Token buckets of one node. All times are milliseconds on the node's
/// clock, so a simulation replays them exactly.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    /// Per address: the time its bucket is full again.
    addresses: BTreeMap<IpAddr, i64>,
    /// Per lower-case username: the time its bucket is full again.
    users: BTreeMap<String, i64>,
    /// (lower-case username, address) to the time of its last successful
    /// login.
    trusted: BTreeMap<(String, IpAddr), i64>,
}

/// Returns the new refill time after taking one token, or the wait until
/// one is available.
fn take_token(
    refilled_at_ms: Option<i64>,
    now_ms: i64,
    burst: i64,
    refill_ms: i64,
) -> Result<i64, i64> {
    let start = refilled_at_ms.unwrap_or(now_ms).max(now_ms);
    let after = start + refill_ms;
    let allowed_until = now_ms + burst * refill_ms;
    if after > allowed_until {
        Err(after - allowed_until)
    } else {
        Ok(after)
    }
}

impl LoginLimiter {
    /// Takes a token from the address's bucket and, unless the address is
    /// trusted for this user, from the user's bucket. Takes nothing when
    /// either bucket is empty.
    pub fn reserve(
        &mut self,
        username: &str,
        address: IpAddr,
        now_ms: i64,
    ) -> Result<Reservation, LoginWait> {
        let user = username.to_ascii_lowercase();
        let address_after = take_token(
            self.addresses.get(&address).copied(),
            now_ms,
            ADDRESS_FAILURES_BURST,
            ADDRESS_REFILL_MS,
        )
        .map_err(|wait_ms| LoginWait {
            limited_by: LimitedBy::Address(address),
            wait_ms,
        })?;
        let trusted = self
            .trusted
            .get(&(user.clone(), address))
            .is_some_and(|&since| now_ms - since < TRUSTED_ADDRESS_TTL_MS);
        let user_after = if trusted {
            None
        } else {
            let after = take_token(
                self.users.get(&user).copied(),
                now_ms,
                USER_FAILURES_BURST,
                USER_REFILL_MS,
            )
            .map_err(|wait_ms| LoginWait {
                limited_by: LimitedBy::User(username.to_owned()),
                wait_ms,
            })?;
            Some(after)
        };
        insert_bounded(&mut self.addresses, address, address_after, now_ms);
        if let Some(after) = user_after {
            insert_bounded(&mut self.users, user.clone(), after, now_ms);
        }
        Ok(Reservation {
            user,
            address,
            took_user_token: user_after.is_some(),
        })
    }

    /// Settles a login with the right password: its tokens go back, and the
    /// address becomes trusted for the user.
    pub fn succeeded(&mut self, reservation: Reservation, now_ms: i64) {
        let key = (reservation.user.clone(), reservation.address);
        self.give_back(reservation);
        if self.trusted.len() >= TRACKED_ENTRIES_MAX && !self.trusted.contains_key(&key) {
            let oldest = self
                .trusted
                .iter()
                .min_by_key(|(_, &since)| since)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.trusted.remove(&oldest);
            }
        }
        self.trusted.insert(key, now_ms);
    }

    /// Settles a login with a wrong password (or an unknown user): the tokens
    /// stay taken.
    pub fn failed(&mut self, reservation: Reservation) {
        drop(reservation);
    }

    /// Settles a login that never checked the password, for example because
    /// this node is not the primary: its tokens go back.
    pub fn cancelled(&mut self, reservation: Reservation) {
        self.give_back(reservation);
    }

    fn give_back(&mut self, reservation: Reservation) {
        if let Some(at) = self.addresses.get_mut(&reservation.address) {
            *at -= ADDRESS_REFILL_MS;
        }
        if reservation.took_user_token {
            if let Some(at) = self.users.get_mut(&reservation.user) {
                *at -= USER_REFILL_MS;
            }
        }
    }
}

/// Inserts a bucket, first dropping full buckets, and then the ones that
/// refill soonest, when the map is at `TRACKED_ENTRIES_MAX`.
fn insert_bounded<K: Ord + Clone>(
    map: &mut BTreeMap<K, i64>,
    key: K,
    refilled_at_ms: i64,
    now_ms: i64,
) {
    if map.len() >= TRACKED_ENTRIES_MAX && !map.contains_key(&key) {
        map.retain(|_, at| *at > now_ms);
        if map.len() >= TRACKED_ENTRIES_MAX {
            let soonest = map
                .iter()
                .min_by_key(|(_, &at)| at)
                .map(|(key, _)| key.clone());
            if let Some(soonest) = soonest {
                map.remove(&soonest);
            }
        }
    }
    map.insert(key, refilled_at_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    /// Fails `count` logins for `user` from `from` at `now_ms`, asserting
    /// each is admitted.
    fn fail_logins(limiter: &mut LoginLimiter, user: &str, from: IpAddr, now_ms: i64, count: i64) {
        for attempt in 0..count {
            let reservation = limiter
                .reserve(user, from, now_ms)
                .unwrap_or_else(|wait| panic!("attempt {attempt} was rejected: {wait}"));
            limiter.failed(reservation);
        }
    }

    #[test]
    fn user_limit_rejects_with_wait() {
        let mut limiter = LoginLimiter::default();
        fail_logins(&mut limiter, "alice", address(1), 0, USER_FAILURES_BURST);
        let wait = limiter.reserve("Alice", address(2), 0).unwrap_err();
        assert_eq!(wait.limited_by, LimitedBy::User("Alice".into()));
        assert_eq!(wait.wait_ms, USER_REFILL_MS);
        let message = wait.to_string();
        assert!(message.contains("user Alice"), "{message}");
        assert!(message.contains("wait 12 s"), "{message}");
    }

    #[test]
    fn user_limit_refills_over_time() {
        let mut limiter = LoginLimiter::default();
        fail_logins(&mut limiter, "alice", address(1), 0, USER_FAILURES_BURST);
        assert!(limiter
            .reserve("alice", address(1), USER_REFILL_MS - 1)
            .is_err());
        assert!(limiter.reserve("alice", address(1), USER_REFILL_MS).is_ok());
    }

    #[test]
    fn address_limit_spans_usernames() {
        let mut limiter = LoginLimiter::default();
        for index in 0..ADDRESS_FAILURES_BURST {
            fail_logins(&mut limiter, &format!("user{index}"), address(1), 0, 1);
        }
        let wait = limiter.reserve("someone-new", address(1), 0).unwrap_err();
        assert_eq!(wait.limited_by, LimitedBy::Address(address(1)));
        assert_eq!(wait.wait_seconds(), 3);
        assert!(
            limiter.reserve("someone-new", address(2), 0).is_ok(),
            "another address keeps its own bucket"
        );
    }

    #[test]
    fn trusted_address_skips_user_limit() {
        let mut limiter = LoginLimiter::default();
        let home = address(1);
        let attacker = address(9);
        let reservation = limiter.reserve("alice", home, 0).unwrap();
        limiter.succeeded(reservation, 0);
        fail_logins(&mut limiter, "alice", attacker, 1_000, USER_FAILURES_BURST);
        assert!(limiter.reserve("alice", attacker, 1_000).is_err());
        assert!(
            limiter.reserve("alice", home, 1_000).is_ok(),
            "the owner's usual address is locked out by a stranger"
        );
    }

    #[test]
    fn trust_expires_after_ttl() {
        let mut limiter = LoginLimiter::default();
        let reservation = limiter.reserve("alice", address(1), 0).unwrap();
        limiter.succeeded(reservation, 0);
        let later = TRUSTED_ADDRESS_TTL_MS;
        fail_logins(
            &mut limiter,
            "alice",
            address(9),
            later,
            USER_FAILURES_BURST,
        );
        assert!(limiter.reserve("alice", address(1), later).is_err());
    }

    #[test]
    fn success_and_cancel_give_tokens_back() {
        let mut limiter = LoginLimiter::default();
        for _ in 0..USER_FAILURES_BURST * 3 {
            let reservation = limiter.reserve("bob", address(3), 0).unwrap();
            limiter.cancelled(reservation);
        }
        for _ in 0..USER_FAILURES_BURST * 3 {
            let reservation = limiter.reserve("carol", address(4), 0).unwrap();
            limiter.succeeded(reservation, 0);
        }
    }

    #[test]
    fn concurrent_attempts_cannot_overdraw() {
        let mut limiter = LoginLimiter::default();
        let pending: Vec<Reservation> = (0..USER_FAILURES_BURST)
            .map(|_| limiter.reserve("dave", address(5), 0).unwrap())
            .collect();
        assert!(
            limiter.reserve("dave", address(6), 0).is_err(),
            "attempts still being checked must count against the bucket"
        );
        for reservation in pending {
            limiter.failed(reservation);
        }
    }

    #[test]
    fn tracked_buckets_stay_bounded() {
        let mut limiter = LoginLimiter::default();
        for index in 0..TRACKED_ENTRIES_MAX + 10 {
            let from = IpAddr::from([10, 0, (index / 256) as u8, (index % 256) as u8]);
            let reservation = limiter
                .reserve(&format!("made-up-{index}"), from, 0)
                .unwrap();
            limiter.failed(reservation);
        }
        assert_eq!(limiter.users.len(), TRACKED_ENTRIES_MAX);
        assert_eq!(limiter.addresses.len(), TRACKED_ENTRIES_MAX);
    }
}
