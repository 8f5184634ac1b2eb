# The Almanac client API.
#
# Stability: this file is a public API, and clients in other languages load
# it by name (pycapnp, for one, reads field and method names at run time).
# A change that existing clients could notice is only ever an addition: a
# new method, field, union branch or enum value, with the next free ordinal.
# Nothing is renumbered, renamed, retyped or removed. tests/pycapnp.rs fails
# when an entry recorded in tests/python/calendar.layout.json changes. A
# client should treat a union branch or enum value it does not know as a
# failure it cannot interpret, because newer servers may send one.
#
# Capabilities: every node's client port bootstraps a `Gateway`. Registering,
# logging in or resuming a session returns a `Session` capability bound to
# one user, and every calendar operation is a method of that session, so no
# call can name another user as its caller.
#
# Errors: outcomes of the calendar (conflict, not found, forbidden, invalid
# input, not primary) are result unions, an `ok` branch and a `rejected`
# branch holding a `Rejection`. Cap'n Proto exceptions mean a transport
# failure or a malformed message (for example a union branch the server does
# not know, or text that is not UTF-8); they fail that call only.
# - Every call that needs the primary returns `notPrimary` on a backup. The
#   client then connects to `notPrimary.primaryAddress` and carries on with
#   `Gateway.resume`.
# - Every call that needs the primary can return `unavailable` during a view
#   change or recovery. Retrying the same request after a short wait is safe.
# - Every `Session` method except `username` and `subscribe` returns
#   `unauthenticated` once the session is closed: by logout, by account
#   deletion, or when the user opened 32 newer sessions.
# - Every call that takes a `RequestId` can return `staleRequest`.
#
# Times are minutes since 1970-01-01T00:00Z (UTC), as Int64, with the IANA
# zone the user entered them in. Durations are minutes. Event starts lie in
# [1970-01-01T00:00Z, 2200-01-01T00:00Z), minute 0 to 120968640 exclusive.
# Text limits count Unicode scalar values, not bytes.
#
# Message limits: a node reads at most 8 Mi words (64 MiB) of one message
# and at most 32 levels of nesting. A larger message closes the connection,
# and a deeper one is rejected as malformed.

@0xc78bcb71a5b5dcd3;

# The identity of one mutating call. A client picks a random `clientId` once
# and numbers its calls 1, 2, 3, ... A retry reuses the same id and receives
# the outcome of the first attempt, so the call is applied at most once. The
# server keeps only the last request of each client id: a `seq` below it is
# `staleRequest`, and a `seq` equal to it returns the stored outcome even if
# the call differs. `clientId` 0 is not recorded at all, so its retries are
# applied again.
struct RequestId {
  clientId @0 :UInt64;
  seq @1 :UInt64;
}

# The reason a call was turned down. The text of a branch is meant for a
# person and names the value concerned. It is not a stable format to parse.
struct Rejection {
  union {
    # The event would overlap these slots of its participants: at most 50,
    # sorted by start. More conflicting slots are left out without a count.
    conflict @0 :List(BusySlot);
    # The named user, event, occurrence or session does not exist, or is not
    # visible to the caller, such as `event 7` or `guest "zed"`.
    notFound @1 :Text;
    # The caller may not do this, for example edit an event hosted by another.
    forbidden @2 :Text;
    # An input value breaks a rule.
    invalid :group {
      # The value, such as `title`, `start`, `zone`, `guests`, `recurrence`,
      # `changes` or `time range`.
      field @3 :Text;
      # The rule and how to meet it.
      message @4 :Text;
    }
    # The edit was based on an older version of the event. Read the event
    # again and resend the edit with `current` as the expected version.
    staleVersion :group {
      eventId @5 :UInt64;
      expected @6 :UInt64;
      current @7 :UInt64;
    }
    # A user with that name exists already, compared case-insensitively.
    alreadyExists @8 :Text;
    # This node is not the primary. `primaryAddress` is the client address of
    # the node it believes is primary, empty when it does not know.
    notPrimary :group {
      primaryAddress @9 :Text;
      view @10 :UInt64;
    }
    # The node cannot serve now (view change, recovery, or a stopped log);
    # retry shortly.
    unavailable @11 :Text;
    # The session token is unknown or was closed; log in again.
    unauthenticated @12 :Text;
    # A retry of a request older than the client's last one.
    staleRequest :group {
      seq @13 :UInt64;
      lastSeq @14 :UInt64;
    }
    # The password does not match, or no user has that name. Both cases get
    # this answer, so a login cannot probe which names exist.
    wrongPassword @15 :Void;
  }
}

# A slot that blocks a new or edited event. `event` is `hidden` when the
# caller may not see that event (a private event they are not invited to).
struct BusySlot {
  # The user who would be in two places at once.
  participant @0 :Text;
  start @1 :Int64;
  # Exclusive end.
  end @2 :Int64;
  event :union {
    hidden @3 :Void;
    visible @4 :EventBrief;
  }
}

# The identifying fields of an event the caller may see.
struct EventBrief {
  id @0 :UInt64;
  title @1 :Text;
  host @2 :Text;
}

# Who is invited to an event.
struct Visibility {
  union {
    # Everyone is invited and sees the event. Every other user is notified,
    # and the event blocks the time of everyone who has not declined it.
    public @0 :Void;
    # Only the host and these guests are participants and see the event. At
    # most 200 registered usernames (matched case-insensitively, stored as
    # registered), without the host and without repeats.
    private @1 :List(Text);
  }
}

# An event as the caller sees it.
struct Event {
  # Assigned by the server, 1, 2, 3, ... and never reused.
  id @0 :UInt64;
  # 1 when scheduled, incremented by every edit; an edit names the version it
  # was based on.
  version @1 :UInt64;
  # 1 to 200 characters, trimmed, without control characters.
  title @2 :Text;
  # Up to 4000 characters; newline and tab are the only control characters
  # allowed.
  description @3 :Text;
  start @4 :Int64;
  # 1 to 20160 (14 days).
  durationMinutes @5 :UInt32;
  # Canonical IANA name, such as `Europe/Paris`.
  zone @6 :Text;
  # The user who scheduled the event, the only one who may edit or delete it.
  host @7 :Text;
  visibility @8 :Visibility;
  # Unset for a one-off event. In the view of one occurrence (as `agenda`
  # returns them), start, duration, title and description are the
  # occurrence's and `recurrence.occurrence` is `instance`.
  recurrence @9 :Recurrence;
  # Responses of the guests who responded, sorted by lowercase username; a guest
  # not listed has not responded (needs-action). Visible to everyone who can
  # see the event.
  responses @10 :List(GuestResponse);
  # How `start` is anchored. For `floating` and `allDay` the server sends
  # `start` resolved in `zone` (the host's zone when it was scheduled), so a
  # client in another zone shows the same wall-clock time or dates in its own
  # zone. An agenda or search returns such an event when it overlaps the
  # range in some zone, so clients widen the range by 26 hours on both sides
  # and keep what overlaps the requested range in their own zone.
  timing @11 :Timing;
  # For `zoned` events imported from a file: the file's TZID text when it was
  # not the IANA name in `zone` (a Windows or Exchange name, for instance),
  # kept byte for byte so that an export names the zone the same way. Empty
  # otherwise.
  tzidLabel @12 :Text;
}

# How an event's start and end are anchored in time.
enum Timing {
  # Fixed instants, shown at the same instant in every zone.
  zoned @0;
  # A wall-clock time without a zone (an RFC 5545 floating DATE-TIME): shown
  # at the same wall-clock time in every zone.
  floating @1;
  # Whole days (RFC 5545 DATE values): `start` is midnight of the first day
  # in `zone` and `start + durationMinutes` midnight after the last day; shown
  # on the same dates in every zone.
  allDay @2;
}

# A guest's response to an invitation, named as in RFC 5545's PARTSTAT.
enum Response {
  needsAction @0;
  accepted @1;
  tentative @2;
  declined @3;
}

# One guest's response, to a whole event or to one occurrence of a series.
struct GuestResponse {
  guest @0 :Text;
  response @1 :Response;
  # Set when the response is for one occurrence of a series only.
  hasOccurrence @2 :Bool;
  # Original start of that occurrence; read only with `hasOccurrence`.
  occurrenceStart @3 :Int64;
}

# A daily window of local time on chosen weekdays.
struct WorkingHours {
  # Minutes after local midnight; startMinute < endMinute <= 1440.
  startMinute @0 :UInt16;
  endMinute @1 :UInt16;
  # Bit 0 is Monday, bit 6 is Sunday. At least one bit is set, and bit 7 is
  # not.
  weekdays @2 :UInt8;
  # IANA zone the window is in.
  zone @3 :Text;
}

# The question of a free-time query or a suggestion.
struct FreeQuery {
  # 1 to 201 usernames (the host and every guest of the largest private
  # event), matched case-insensitively.
  users @0 :List(Text);
  # The range [from, to) to search, at most 31 days long.
  from @1 :Int64;
  to @2 :Int64;
  # Shortest slot to list; for a suggestion, the meeting's length. 1 to 20160.
  minMinutes @3 :UInt32;
  # Zone of the standard hours (09:00-17:00, Monday to Friday) of users who
  # never set their working hours. Required even when every user has set
  # theirs.
  defaultZone @4 :Text;
}

# The half-open range [start, end).
struct TimeSlot {
  start @0 :Int64;
  end @1 :Int64;
}

# One field of an edit, as text for a person to read.
struct FieldChange {
  field @0 :Text;
  before @1 :Text;
  after @2 :Text;
}

# One committed change of an event.
struct HistoryEntry {
  # The primary's time of the request, in milliseconds since the Unix epoch.
  atMs @0 :Int64;
  actor @1 :Text;
  change :union {
    created @2 :Void;
    # The host changed these fields; times are in UTC.
    edited @3 :List(FieldChange);
    # The actor, a guest, responded.
    responded @4 :Response;
    # This guest's account was deleted, which removed them from the guests.
    guestRemoved @5 :Text;
  }
  # Set when the change applies to one occurrence of a recurring event,
  # named by its original start.
  hasOccurrence @6 :Bool;
  occurrenceStart @7 :Int64;
}

# How an event repeats. `start` and `zone` of the event are the rule's
# DTSTART: every occurrence keeps that wall-clock time in that zone. A local
# time that falls into a daylight-saving gap moves forward by the gap, and
# one in a repeated hour takes the first of its two instants.
struct Recurrence {
  # RFC 5545 RRULE value, such as "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10". UNTIL
  # is a UTC date-time (20270630T215900Z) or a date in the event's zone, and
  # inclusive. FREQ is DAILY, WEEKLY, MONTHLY or YEARLY. BYHOUR, BYMINUTE,
  # BYSECOND, both COUNT and UNTIL, COUNT=0, and BYSETPOS with a BYDAY list
  # that mixes plain and numbered weekdays are invalid. The rule must give at
  # least one occurrence from the start on, and a rule that ends at most
  # 2000. Occurrences may not overlap each other.
  rule @0 :Text;
  # Original starts of cancelled occurrences (EXDATE), sorted. Each must be
  # a start the rule gives. At most 500 together with `overrides`.
  exceptions @1 :List(Int64);
  # Occurrences moved or changed one by one, sorted by original start. Only
  # `editOccurrence` sets them, and a draft that carries one is invalid.
  overrides @2 :List(OccurrenceOverride);
  occurrence :union {
    # The series itself.
    series @3 :Void;
    # One occurrence of it.
    instance :group {
      # The start the rule gives it; names it in editOccurrence and
      # deleteOccurrence.
      originalStart @4 :Int64;
      seriesStart @5 :Int64;
    }
  }
}

# One occurrence of a series that differs from what the rule gives.
struct OccurrenceOverride {
  # The start the rule gives the occurrence, which names it.
  originalStart @0 :Int64;
  start @1 :Int64;
  durationMinutes @2 :UInt32;
  # `keep` uses the series' value.
  title :union {
    keep @3 :Void;
    set @4 :Text;
  }
  description :union {
    keep @5 :Void;
    set @6 :Text;
  }
}

# A new event as `schedule` takes it. The limits are those of `Event`.
struct EventDraft {
  title @0 :Text;
  description @1 :Text;
  start @2 :Int64;
  zone @3 :Text;
  durationMinutes @4 :UInt32;
  visibility @5 :Visibility;
  # Unset for a one-off event. A new series carries no overrides, and its
  # `occurrence` is `series`.
  recurrence @6 :Recurrence;
  # As in `Event`; old clients leave it `zoned`. For `floating` the client
  # sends `start` resolved in `zone`, the host's zone, which conflict checks
  # use. For `allDay`, `start` and `start + durationMinutes` must be local
  # midnights in `zone`, or the draft is rejected as invalid.
  timing @7 :Timing;
  # As in `Event`: 1 to 200 characters without control characters or double
  # quotes, not an IANA name, only with `zoned`; empty for none.
  tzidLabel @8 :Text;
}

# Each field is `keep` to leave it unchanged, or `set` with the new value,
# which must meet the limits of `Event`. At least one `set` must differ from
# the current value.
struct EventChanges {
  title :union {
    keep @0 :Void;
    set @1 :Text;
  }
  description :union {
    keep @2 :Void;
    set @3 :Text;
  }
  start :union {
    keep @4 :Void;
    set @5 :Int64;
  }
  zone :union {
    keep @6 :Void;
    set @7 :Text;
  }
  durationMinutes :union {
    keep @8 :Void;
    set @9 :UInt32;
  }
  visibility :union {
    keep @10 :Void;
    set @11 :Visibility;
  }
}

# The filters of `search`; an event must match every one given. At least one
# of host, text or a range bound is required.
struct SearchQuery {
  # Empty means any host.
  host @0 :Text;
  # Case-insensitive text in the title or description; empty means any, and
  # text of only spaces is invalid.
  text @1 :Text;
  # Bounds of the range [from, to) the event must overlap, each used only
  # with its flag. With both, from must be before to.
  hasFrom @2 :Bool;
  from @3 :Int64;
  hasTo @4 :Bool;
  to @5 :Int64;
}

# A change to an event, sent to its audience: the guests of a private event,
# or every user but the host of a public one. The host hears only of
# responses and of deleted guests.
struct Notification {
  # Per-user sequence number, starting at 1, never reused. A new account
  # under a deleted user's name continues after the old numbers.
  seq @0 :UInt64;
  # When the change was made, in milliseconds since the Unix epoch.
  atMs @1 :Int64;
  kind @2 :Kind;
  # The event as it is after the change, or as it was when cancelled.
  event @3 :Event;
  # The user whose action caused the notification.
  actor @4 :Text;

  enum Kind {
    # The recipient joined the audience: a new event, guests added by an
    # edit, or a series continued by `editOccurrence` with `following`.
    invited @0;
    # The title, description, start, duration or zone of the event or of one
    # occurrence changed, or a series lost its later occurrences. The host
    # also gets one when a guest's account was deleted.
    changed @1;
    # The event or one of its occurrences was cancelled.
    cancelled @2;
    # The host removed the recipient from a private event's guests; `event`
    # is as the recipient last saw it.
    removedFromGuests @3;
    # To the host: the actor, a guest, responded; see `event.responses`.
    responded @4;
  }
}

# One node's view of the cluster.
struct NodeStatus {
  # The node's id in the cluster config, from 1.
  id @0 :UInt8;
  role @1 :Role;
  view @2 :UInt64;
  # Number of the last op in this node's log.
  op @3 :UInt64;
  # Number of the last op this node knows to be committed.
  commit @4 :UInt64;
  # Client address of the primary this node believes in, empty when unknown.
  primaryAddress @5 :Text;
  # How many ops this node's commit number is behind the primary's, as far as
  # this node knows.
  lag @6 :UInt64;
  users @7 :UInt64;
  events @8 :UInt64;

  enum Role {
    primary @0;
    backup @1;
    viewChange @2;
    recovering @3;
  }
}

# The result of a call that returns nothing but success.
struct Ack {
  union {
    ok @0 :Void;
    rejected @1 :Rejection;
  }
}

struct BackupResult {
  union {
    # A snapshot file in the format that `almanac verify` checks.
    snapshot @0 :Data;
    rejected @1 :Rejection;
  }
}

# The result of `register`, `login` and `resume`.
struct SessionResult {
  union {
    ok :group {
      session @0 :Session;
      # Secret that resumes this session with `Gateway.resume` on whichever
      # node is primary, without the password. Valid until the session is
      # closed.
      token @1 :Data;
      # The username as registered, whatever case the login used.
      username @2 :Text;
    }
    rejected @3 :Rejection;
  }
}

# The result of a call that writes an event.
struct EventResult {
  union {
    ok :group {
      eventId @0 :UInt64;
      # The event's version after the write.
      version @1 :UInt64;
      # For a recurring event without an end: conflicts were checked only
      # for occurrences starting before this minute, two years (731 days)
      # after the start. 0 when every occurrence was checked.
      conflictsCheckedUntil @3 :Int64;
    }
    rejected @2 :Rejection;
  }
}

# The result of a call that reads events.
struct EventsResult {
  union {
    ok @0 :List(Event);
    rejected @1 :Rejection;
  }
}

# The bootstrap capability of a node's client port.
interface Gateway {
  # Creates an account and logs it in. Usernames are 1-32 characters of
  # ASCII letters, digits, `_`, `-` and `.`, unique regardless of case;
  # passwords 8-1024 characters. Needs the primary. Rejections: `invalid`
  # (field `username` or `password`), `alreadyExists`.
  register @0 (requestId :RequestId, username :Text, password :Text) -> (result :SessionResult);
  # Opens a new session for an existing user; the name matches regardless of
  # case. Needs the primary. Rejections: `wrongPassword`.
  # NOTE: `requestId` is not used: every login opens a new session, and a
  # user keeps at most 32 open sessions, so each login beyond that closes
  # the oldest.
  login @1 (requestId :RequestId, username :Text, password :Text) -> (result :SessionResult);
  # Resumes a session from its token, for example after a failover, and
  # returns a new capability for it on this node. Needs the primary.
  # Rejections: `unauthenticated` for a token that is unknown or closed.
  resume @2 (token :Data) -> (result :SessionResult);
  # This node's view of the cluster. Answered by any node, without a
  # session and without a rejection, so a client can use it to find the
  # primary.
  status @3 () -> (status :NodeStatus);
  # A fresh random challenge for `backup`, good for one attempt.
  backupChallenge @4 () -> (nonce :Data);
  # A consistent snapshot of the committed state, from a primary that
  # confirmed its role after the call arrived. `mac` is HMAC-SHA256 keyed
  # with the cluster secret over "almanac backup" followed by the nonce.
  backup @5 (nonce :Data, mac :Data) -> (result :BackupResult);
}

# One logged-in user. Reads are linearizable: they are answered by a primary
# that confirmed its role after the read arrived. Every method needs the
# primary unless it says otherwise. The rejections every method can return
# (`notPrimary`, `unavailable`, `unauthenticated`, `staleRequest`) are listed
# at the top of this file, and each method lists only its own.
interface Session {
  # The user this session is bound to. Answered by any node, even after the
  # session was closed.
  username @0 () -> (username :Text);
  # Closes this session; its token no longer resumes it.
  logout @1 (requestId :RequestId) -> (result :Ack);
  # Cancels the user's hosted events, removes them from every guest list and
  # closes every session of theirs. The username becomes free to register.
  deleteAccount @2 (requestId :RequestId) -> (result :Ack);
  # Usernames matching a pattern: a case-insensitive substring, or a glob when
  # it contains `*` or `?`. An empty pattern matches everyone. Sorted
  # case-insensitively, with no limit on the count.
  users @3 (pattern :Text) -> (result :UsersResult);
  # Whether a user of that name exists, compared case-insensitively.
  userExists @4 (username :Text) -> (result :ExistsResult);
  # Schedules an event hosted by the caller and notifies its audience (see
  # `Notification.Kind.invited`). Rejections: `invalid` (any limit of
  # `Event`, `Visibility` or `Recurrence`), `notFound` (a guest),
  # `conflict`.
  schedule @5 (requestId :RequestId, draft :EventDraft) -> (result :EventResult);
  # Edits a whole event, or a whole series; only the host may edit, and
  # `expectedVersion` must be the current version. Exceptions of a series
  # move along with a new start or zone. Rejections: `notFound` (an event
  # the caller cannot see, or a guest), `forbidden` (not the host),
  # `staleVersion`, `invalid` (including field `changes` when nothing
  # would change), `conflict`.
  edit @6 (requestId :RequestId, eventId :UInt64, expectedVersion :UInt64,
           changes :EventChanges) -> (result :EventResult);
  # Deletes an event and notifies its audience (`cancelled`). Rejections:
  # `notFound`, `forbidden`.
  delete @7 (requestId :RequestId, eventId :UInt64) -> (result :Ack);
  # One event, a list of one: the series itself for a recurring event.
  # Rejections: `notFound`, also for a private event the caller is not part
  # of, so its existence is not revealed.
  getEvent @8 (eventId :UInt64) -> (result :EventsResult);
  # Visible events overlapping [from, to), ordered by start, then id. A
  # recurring event appears once per occurrence in the range. Empty when
  # from >= to.
  # NOTE: the range has no maximum length, so a long range over a daily
  # series returns one entry per day.
  agenda @9 (from :Int64, to :Int64) -> (result :EventsResult);
  # Visible events matching every filter, ordered by start, then id. A
  # recurring event appears once per occurrence in the range, or once as the
  # series without a range; a range without an end lists occurrences up to
  # two years after the range's start. Rejections: `invalid` (field `text`,
  # `query` or `time range`), `notFound` (the host).
  search @10 (query :SearchQuery) -> (result :EventsResult);
  # Notifications with a sequence number above `afterSeq`, oldest first, and
  # the last acknowledged one. The server keeps the newest 1000 per user and
  # drops older ones, acknowledged or not.
  inbox @11 (afterSeq :UInt64) -> (result :InboxResult);
  # Marks notifications up to `upToSeq` as seen, so a later login does not
  # show them again. An older number than before changes nothing.
  # Rejections: `invalid` (field `up_to_seq`) beyond the newest notification.
  ack @12 (requestId :RequestId, upToSeq :UInt64) -> (result :Ack);
  # Pushes every notification with a sequence number above `afterSeq` to the
  # listener, now and as they happen, until the returned subscription is
  # dropped, the listener's `notify` raises, or the connection closes. Each
  # `notify` carries the notifications applied since the last one, oldest
  # first; the next waits until the listener returned. Any node serves it
  # and pushes as that node applies the log. Raises an exception, instead of
  # a rejection, when the session is closed. To miss nothing across
  # reconnects, subscribe again with the last `seq` received.
  subscribe @13 (listener :Listener, afterSeq :UInt64) -> (subscription :Subscription);
  # Changes one occurrence of a recurring event, named by its original
  # start, or with `following` that one and every later one: the series
  # then ends before it and continues as a new event, whose id is returned.
  # With `following`, zone and guests may change too, and from the first
  # occurrence on the whole series is edited under its own id. Rejections:
  # `notFound` (the event, or no such occurrence), `forbidden`,
  # `staleVersion`, `invalid` (field `occurrence` for an event that does not
  # recur, `changes` for zone or guests without `following` or for nothing
  # to change), `conflict`.
  editOccurrence @14 (requestId :RequestId, eventId :UInt64, expectedVersion :UInt64,
                      occurrenceStart :Int64, changes :EventChanges, following :Bool)
      -> (result :EventResult);
  # Cancels one occurrence (an EXDATE), or with `following` that one and
  # every later one. Cancelling the last remaining occurrence deletes the
  # event. Rejections: `notFound`, `forbidden`, `invalid` (field
  # `occurrence` for an event that does not recur, `recurrence` beyond 500
  # cancelled or moved occurrences).
  deleteOccurrence @15 (requestId :RequestId, eventId :UInt64, occurrenceStart :Int64,
                        following :Bool) -> (result :Ack);
  # A guest's response (accepted, tentative or declined); the host is notified.
  # With `hasOccurrence`, the response is for the occurrence of a series with
  # the original start `occurrenceStart` only. Any user who can see a public
  # event may respond to it. Rejections: `notFound` (the event or the
  # occurrence), `invalid` (field `response` from the host, for
  # `needsAction` or for the response already given; `occurrence` for an
  # event that does not recur), `conflict` when the response makes the
  # guest's time busy where another event already blocks it.
  respond @16 (requestId :RequestId, eventId :UInt64, response :Response,
               hasOccurrence :Bool, occurrenceStart :Int64) -> (result :Ack);
  # Slots of at least `query.minMinutes` in which every listed user is in
  # working hours and not busy, in time order. The caller counts only when
  # listed. Rejections: `invalid` (field `users`, `time range`, `duration`
  # or `zone`), `notFound` (a user).
  freeSlots @17 (query :FreeQuery) -> (result :SlotsResult);
  # Up to three slots of `query.minMinutes` that fit the caller and the
  # listed users, the earliest start of each free slot. Rejections as for
  # `freeSlots`.
  suggest @18 (query :FreeQuery) -> (result :SlotsResult);
  # The event's committed changes, oldest first: the newest 100 are kept.
  # Rejections: `notFound`, also for a deleted event.
  history @19 (eventId :UInt64) -> (result :HistoryResult);
  # Sets the caller's working hours, which `freeSlots` and `suggest` use.
  # Rejections: `invalid` (field `working hours`, `working days` or `zone`).
  setWorkingHours @20 (requestId :RequestId, hours :WorkingHours) -> (result :Ack);
}

# The result of `freeSlots` and `suggest`.
struct SlotsResult {
  union {
    ok @0 :List(TimeSlot);
    rejected @1 :Rejection;
  }
}

# The result of `history`.
struct HistoryResult {
  union {
    ok @0 :List(HistoryEntry);
    rejected @1 :Rejection;
  }
}

# The result of `users`.
struct UsersResult {
  union {
    ok @0 :List(Text);
    rejected @1 :Rejection;
  }
}

# The result of `userExists`.
struct ExistsResult {
  union {
    ok @0 :Bool;
    rejected @1 :Rejection;
  }
}

# The result of `inbox`.
struct InboxResult {
  union {
    ok :group {
      notifications @0 :List(Notification);
      # The highest sequence number the user acknowledged; 0 when none.
      ackedSeq @1 :UInt64;
    }
    rejected @2 :Rejection;
  }
}

# Implemented by the client and passed to `Session.subscribe`. Raising from
# `notify` ends the subscription.
interface Listener {
  notify @0 (notifications :List(Notification)) -> stream;
}

# A running `subscribe`. Dropping the last reference ends it.
interface Subscription {}
