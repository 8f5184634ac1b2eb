# The Almanac node-to-node API: Viewstamped Replication messages.
#
# A node's peer port carries framed Cap'n Proto messages of type `PeerFrame`
# (the standard stream framing: a segment table, then the segments), not RPC
# calls. A message between nodes is one-way, as in the protocol, so an RPC
# call's return and finish messages would only double the traffic. A
# connecting node proves that it knows the cluster secret (HMAC-SHA256 over a
# fresh challenge) before it may send anything else. The client port never
# accepts these frames, and this port exposes no client API.
#
# A reply, if any, travels as its own message over the receiver's connection
# to the sender. The terms are those of Viewstamped Replication (Liskov and
# Cowling, "Viewstamped Replication Revisited", MIT 2012): view, primary,
# backup, op number, commit number.
#
# Limits: the peer port reads frames of at most 8 Mi words (64 MiB) with at
# most 32 levels of nesting once the dialler is authenticated, and a hello of
# at most 1 Ki words before. A sender treats a connect, an authentication or
# a write slower than 1 s as a lost connection and dials again.
#
# Stability: as in the client schema, fields, union branches and methods are
# only ever added, with new ordinals. Nothing is renumbered, renamed, retyped
# or removed, and tests/pycapnp.rs checks that against
# tests/python/replication.layout.json.

@0xc67a2dfbe31d7508;

using Stream = import "/capnp/stream.capnp";

# One op of the replicated log.
struct Entry {
  # The view in which the primary prepared this op.
  view @0 :UInt64;
  # The op number, from 1. Entries in one list have consecutive op numbers
  # and views that never decrease. A receiver drops a message whose entries
  # break that or carry a later view than the message allows.
  op @1 :UInt64;
  # An encoded calendar request; opaque to the protocol.
  payload @2 :Data;
}

# One protocol message, one of the variants below.
struct Message {
  # The view the sender names; see each variant for its meaning.
  view @0 :UInt64;
  # The sender's replica id (0-based); must match the authenticated link.
  replica @1 :UInt8;

  union {
    # Primary to backups: append these consecutive entries, and learn the
    # commit number.
    prepare :group {
      commit @2 :UInt64;
      entries @3 :List(Entry);
    }
    # Backup to primary: every op up to `op` is durable in this backup's log
    # and matches the primary's.
    prepareOk :group {
      op @4 :UInt64;
    }
    # Primary heartbeat with its commit number. `round` numbers the read
    # confirmation round this heartbeat belongs to.
    commit :group {
      commit @5 :UInt64;
      round @6 :UInt64;
    }
    # Backup's answer to a heartbeat, with the highest op it holds.
    commitOk :group {
      op @7 :UInt64;
      round @8 :UInt64;
    }
    # I suspect the primary of the view before `view`.
    startViewChange @9 :Void;
    # To the new primary: my log after `base` (my snapshot op), the last
    # view in which I was normal, and my commit number.
    doViewChange :group {
      logView @10 :UInt64;
      op @11 :UInt64;
      log @12 :List(Entry);
      commit @13 :UInt64;
      base @26 :UInt64;
    }
    # New primary to all: the log of the new view after `base`.
    startView :group {
      op @14 :UInt64;
      log @15 :List(Entry);
      commit @16 :UInt64;
      base @27 :UInt64;
    }
    # A lagging replica asks for the entries after `op`.
    getState :group {
      op @17 :UInt64;
    }
    # Reply to getState: the entries after `op`.
    newState :group {
      op @18 :UInt64;
      entries @19 :List(Entry);
      commit @20 :UInt64;
    }
    # A replica with an empty or damaged disk asks for the current state.
    recovery :group {
      nonce @21 :UInt64;
    }
    # Reply to recovery from a replica in normal status. Only the primary of
    # `view` sets `hasPrimaryState` and sends its log and commit number.
    recoveryResponse :group {
      nonce @22 :UInt64;
      hasPrimaryState @23 :Bool;
      # The primary's log after `base`, its snapshot op.
      log @24 :List(Entry);
      commit @25 :UInt64;
      base @28 :UInt64;
    }
    # Reply to getState when the entries after the requested op are
    # compacted: fetch my snapshot at `op`, then ask for the log after it.
    newSnapshot :group {
      op @29 :UInt64;
      commit @30 :UInt64;
    }
    # Pull one chunk of the sender's snapshot file at `op` from byte `offset`.
    snapshotRead :group {
      op @31 :UInt64;
      offset @32 :UInt64;
    }
    # Bytes of the snapshot file at `op` from `offset`, of a file `size`
    # bytes long. Empty data with size 0: the sender no longer has it.
    snapshotChunk :group {
      op @33 :UInt64;
      size @34 :UInt64;
      offset @35 :UInt64;
      data @36 :Data;
    }
  }
}

# One frame on a peer connection. The accepting node speaks first:
#
#   acceptor to dialler: challenge
#   dialler to acceptor: hello
#   acceptor to dialler: welcome, or rejected and the connection closes
#   dialler to acceptor: message and ping, any number, in any order
#   acceptor to dialler: one pong for each ping
#
# Any other frame, a frame out of this order, or a malformed one closes the
# connection, and only that connection.
struct PeerFrame {
  union {
    # A fresh random 32-byte challenge, good for one hello on this
    # connection.
    challenge @0 :Data;
    # Proves that the dialler is replica `replica` (0-based): `mac` is
    # HMAC-SHA256(cluster secret, challenge || replica id as one byte).
    hello :group {
      replica @1 :UInt8;
      mac @2 :Data;
    }
    # The hello was accepted: messages may follow.
    welcome @3 :Void;
    # The hello was rejected, with the reason. The acceptor closes the
    # connection after it.
    rejected @4 :Text;
    # One protocol message. Its `replica` must be the authenticated one.
    message @5 :Message;
    # The dialler's liveness probe. On a connection whose bytes a network
    # fault dropped, writes succeed until the send buffer fills, which
    # takes many seconds of heartbeats. A missing pong shows it within a
    # second.
    ping @6 :UInt64;
    # The reply to the ping with the same number.
    pong @7 :UInt64;
  }
}

# Retired: the RPC interfaces the peer port served before it carried
# `PeerFrame`s. No node serves or calls them; they stay so that their ids
# and ordinals are never reused.
# The bootstrap capability of a node's peer port.
interface PeerGateway {
  # A fresh random 32-byte challenge for `authenticate`. Only the latest
  # challenge of a connection is valid, for one attempt.
  challenge @0 () -> (nonce :Data);
  # Proves the caller is replica `replica` (0-based). `mac` is
  # HMAC-SHA256(cluster secret, nonce || replica id as one byte). Fails with
  # an exception on a wrong mac, a stale or missing challenge, the
  # receiver's own id, or an id outside the cluster.
  authenticate @1 (replica :UInt8, nonce :Data, mac :Data) -> (link :PeerLink);
}

# An authenticated link from one peer to this node.
interface PeerLink {
  # Delivers one message. Fails with an exception when `message.replica` is
  # not the authenticated peer or the message is malformed.
  send @0 (message :Message) -> stream;
  # Answers at once. The sending side calls it a few times a second: a
  # stream send returns as soon as flow control has room, so a connection
  # whose bytes a network fault dropped would otherwise look alive until the
  # window filled, which takes many seconds of heartbeats.
  ping @1 () -> ();
}
