# The Almanac client API.
#
# Every node's client port bootstraps a `Gateway`. Registering, logging in or
# resuming a session returns a `Session` capability bound to one user, and
# every calendar operation is a method of that session, so no call can name
# another user as its caller.
#
# Outcomes of the calendar (conflict, not found, forbidden, invalid input, not
# primary) are result unions: an `ok` branch and a `rejected` branch holding a
# `Rejection`. Cap'n Proto exceptions are reserved for transport failures.
#
# Times are minutes since 1970-01-01T00:00Z (UTC), as Int64, with the IANA
# zone the user entered them in. Durations are minutes.
#
# Compatibility: fields and methods are only ever added, with new ordinals.
# Nothing is renumbered or removed.

@0xc78bcb71a5b5dcd3;

# Identifies one mutating call. A client picks a random `clientId` once and
# numbers its calls 1, 2, 3, ... A retry reuses the same id and receives the
# outcome of the first attempt; the call is applied at most once.
struct RequestId {
  clientId @0 :UInt64;
  seq @1 :UInt64;
}

struct Rejection {
  union {
    # The event would overlap these slots of its participants.
    conflict @0 :List(BusySlot);
    # The named user, event or session does not exist, or is not visible.
    notFound @1 :Text;
    # The caller may not do this, for example edit an event hosted by another.
    forbidden @2 :Text;
    invalid :group {
      field @3 :Text;
      message @4 :Text;
    }
    # The edit was based on an older version of the event.
    staleVersion :group {
      eventId @5 :UInt64;
      expected @6 :UInt64;
      current @7 :UInt64;
    }
    # A user with that name exists already.
    alreadyExists @8 :Text;
    # This node is not the primary. `primaryAddress` is the client address of
    # the node it believes is primary, empty when it does not know.
    notPrimary :group {
      primaryAddress @9 :Text;
      view @10 :UInt64;
    }
    # The node cannot serve now (view change or recovery); retry shortly.
    unavailable @11 :Text;
    # The session token is unknown or was closed; log in again.
    unauthenticated @12 :Text;
    # A retry of a request older than the client's last one.
    staleRequest :group {
      seq @13 :UInt64;
      lastSeq @14 :UInt64;
    }
    # The password does not match the user's.
    wrongPassword @15 :Void;
  }
}

# A slot that blocks a new or edited event. `event` is `hidden` when the
# caller may not see that event (a private event they are not invited to).
struct BusySlot {
  participant @0 :Text;
  start @1 :Int64;
  end @2 :Int64;
  event :union {
    hidden @3 :Void;
    visible @4 :EventBrief;
  }
}

struct EventBrief {
  id @0 :UInt64;
  title @1 :Text;
  host @2 :Text;
}

struct Visibility {
  union {
    # Everyone is invited.
    public @0 :Void;
    # Only the host and these guests are participants.
    private @1 :List(Text);
  }
}

struct Event {
  id @0 :UInt64;
  # Incremented by every edit; an edit names the version it was based on.
  version @1 :UInt64;
  title @2 :Text;
  description @3 :Text;
  start @4 :Int64;
  durationMinutes @5 :UInt32;
  zone @6 :Text;
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
}

# A guest's response to an invitation, named as in RFC 5545's PARTSTAT.
enum Response {
  needsAction @0;
  accepted @1;
  tentative @2;
  declined @3;
}

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
  # Bit 0 is Monday, bit 6 is Sunday.
  weekdays @2 :UInt8;
  # IANA zone the window is in.
  zone @3 :Text;
}

struct FreeQuery {
  users @0 :List(Text);
  from @1 :Int64;
  to @2 :Int64;
  # Shortest slot to list; for a suggestion, the meeting's length.
  minMinutes @3 :UInt32;
  # Zone of the standard hours (09:00-17:00, Monday to Friday) of users who
  # never set their working hours.
  defaultZone @4 :Text;
}

# The half-open range [start, end).
struct TimeSlot {
  start @0 :Int64;
  end @1 :Int64;
}

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
# DTSTART: every occurrence keeps that wall-clock time in that zone.
struct Recurrence {
  # RFC 5545 RRULE value, such as "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10". UNTIL
  # is a UTC date-time (20270630T215900Z) or a date in the event's zone.
  rule @0 :Text;
  # Original starts of cancelled occurrences (EXDATE), sorted.
  exceptions @1 :List(Int64);
  # Occurrences moved or changed one by one, sorted by original start.
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

struct OccurrenceOverride {
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

struct EventDraft {
  title @0 :Text;
  description @1 :Text;
  start @2 :Int64;
  zone @3 :Text;
  durationMinutes @4 :UInt32;
  visibility @5 :Visibility;
  # Unset for a one-off event. A new series carries no overrides.
  recurrence @6 :Recurrence;
}

# Each field is `keep` to leave it unchanged, or `set` with the new value.
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

struct SearchQuery {
  # Empty means any host.
  host @0 :Text;
  # Case-insensitive text in the title or description; empty means any.
  text @1 :Text;
  hasFrom @2 :Bool;
  from @3 :Int64;
  hasTo @4 :Bool;
  to @5 :Int64;
}

struct Notification {
  # Per-user sequence number, starting at 1, never reused.
  seq @0 :UInt64;
  # When the change was made, in milliseconds since the Unix epoch.
  atMs @1 :Int64;
  kind @2 :Kind;
  # The event as it is after the change, or as it was when cancelled.
  event @3 :Event;
  # The user whose action caused the notification.
  actor @4 :Text;

  enum Kind {
    invited @0;
    changed @1;
    cancelled @2;
    removedFromGuests @3;
    # To the host: the actor, a guest, responded; see `event.responses`.
    responded @4;
  }
}

struct NodeStatus {
  id @0 :UInt8;
  role @1 :Role;
  view @2 :UInt64;
  op @3 :UInt64;
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

struct SessionResult {
  union {
    ok :group {
      session @0 :Session;
      # Secret that resumes this session on any node, without the password.
      token @1 :Data;
      username @2 :Text;
    }
    rejected @3 :Rejection;
  }
}

struct EventResult {
  union {
    ok :group {
      eventId @0 :UInt64;
      version @1 :UInt64;
      # For a recurring event without an end: conflicts were checked only
      # for occurrences starting before this minute. 0 when every occurrence
      # was checked.
      conflictsCheckedUntil @3 :Int64;
    }
    rejected @2 :Rejection;
  }
}

struct EventsResult {
  union {
    ok @0 :List(Event);
    rejected @1 :Rejection;
  }
}

# The bootstrap capability of a node's client port.
interface Gateway {
  # Creates an account and logs it in. Usernames are 1-32 characters of
  # letters, digits, `_`, `-` and `.`; passwords at least 8 characters.
  register @0 (requestId :RequestId, username :Text, password :Text) -> (result :SessionResult);
  login @1 (requestId :RequestId, username :Text, password :Text) -> (result :SessionResult);
  # Resumes a session from its token, for example after a failover.
  resume @2 (token :Data) -> (result :SessionResult);
  # This node's view of the cluster.
  status @3 () -> (status :NodeStatus);
  # A fresh random challenge for `backup`, good for one attempt.
  backupChallenge @4 () -> (nonce :Data);
  # A consistent snapshot of the committed state, from a primary that
  # confirmed its role after the call arrived. `mac` is HMAC-SHA256 keyed
  # with the cluster secret over "almanac backup" followed by the nonce.
  backup @5 (nonce :Data, mac :Data) -> (result :BackupResult);
}

# One logged-in user. Reads are linearizable: they are answered by a primary
# that confirmed its role after the read arrived.
interface Session {
  username @0 () -> (username :Text);
  logout @1 (requestId :RequestId) -> (result :Ack);
  # Cancels the user's hosted events, removes them from every guest list and
  # closes every session of theirs.
  deleteAccount @2 (requestId :RequestId) -> (result :Ack);
  # Usernames matching a pattern: a case-insensitive substring, or a glob when
  # it contains `*` or `?`. Sorted.
  users @3 (pattern :Text) -> (result :UsersResult);
  userExists @4 (username :Text) -> (result :ExistsResult);
  schedule @5 (requestId :RequestId, draft :EventDraft) -> (result :EventResult);
  # Only the host may edit; `expectedVersion` must be the current version.
  edit @6 (requestId :RequestId, eventId :UInt64, expectedVersion :UInt64,
           changes :EventChanges) -> (result :EventResult);
  delete @7 (requestId :RequestId, eventId :UInt64) -> (result :Ack);
  getEvent @8 (eventId :UInt64) -> (result :EventsResult);
  # Visible events overlapping [from, to), ordered by start.
  agenda @9 (from :Int64, to :Int64) -> (result :EventsResult);
  search @10 (query :SearchQuery) -> (result :EventsResult);
  # Notifications with a sequence number above `afterSeq`, and the last
  # acknowledged one.
  inbox @11 (afterSeq :UInt64) -> (result :InboxResult);
  # Marks notifications up to `upToSeq` as seen, so a later login does not
  # show them again.
  ack @12 (requestId :RequestId, upToSeq :UInt64) -> (result :Ack);
  # Pushes every notification with a sequence number above `afterSeq` to the
  # listener, now and as they happen, until the returned subscription is
  # dropped or the connection closes.
  subscribe @13 (listener :Listener, afterSeq :UInt64) -> (subscription :Subscription);
  # Changes one occurrence of a recurring event, named by its original
  # start, or with `following` that one and every later one: the series
  # then ends before it and continues as a new event, whose id is returned.
  # With `following`, zone and guests may change too.
  editOccurrence @14 (requestId :RequestId, eventId :UInt64, expectedVersion :UInt64,
                      occurrenceStart :Int64, changes :EventChanges, following :Bool)
      -> (result :EventResult);
  # Cancels one occurrence (an EXDATE), or with `following` that one and
  # every later one. Cancelling the last remaining occurrence deletes the
  # event.
  deleteOccurrence @15 (requestId :RequestId, eventId :UInt64, occurrenceStart :Int64,
                        following :Bool) -> (result :Ack);
  # A guest's response (accepted, tentative or declined); the host is notified.
  # With `hasOccurrence`, the response is for the occurrence of a series with
  # the original start `occurrenceStart` only.
  respond @16 (requestId :RequestId, eventId :UInt64, response :Response,
               hasOccurrence :Bool, occurrenceStart :Int64) -> (result :Ack);
  # Slots of at least `query.minMinutes` in which every listed user is in
  # working hours and not busy.
  freeSlots @17 (query :FreeQuery) -> (result :SlotsResult);
  # Up to three slots of `query.minMinutes` that fit the caller and the
  # listed users.
  suggest @18 (query :FreeQuery) -> (result :SlotsResult);
  # The event's committed changes, oldest first.
  history @19 (eventId :UInt64) -> (result :HistoryResult);
  setWorkingHours @20 (requestId :RequestId, hours :WorkingHours) -> (result :Ack);
}

struct SlotsResult {
  union {
    ok @0 :List(TimeSlot);
    rejected @1 :Rejection;
  }
}

struct HistoryResult {
  union {
    ok @0 :List(HistoryEntry);
    rejected @1 :Rejection;
  }
}

struct UsersResult {
  union {
    ok @0 :List(Text);
    rejected @1 :Rejection;
  }
}

struct ExistsResult {
  union {
    ok @0 :Bool;
    rejected @1 :Rejection;
  }
}

struct InboxResult {
  union {
    ok :group {
      notifications @0 :List(Notification);
      ackedSeq @1 :UInt64;
    }
    rejected @2 :Rejection;
  }
}

# Implemented by the client.
interface Listener {
  notify @0 (notifications :List(Notification)) -> stream;
}

# Dropping the last reference ends the subscription.
interface Subscription {}
