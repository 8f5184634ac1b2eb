# The Almanac node-to-node API: Viewstamped Replication messages.
#
# Each node's peer port bootstraps a `PeerGateway`. A connecting node proves
# that it knows the cluster secret (HMAC-SHA256 over a fresh challenge) and
# receives a `PeerLink`, the only way to deliver protocol messages. The client
# port never exposes these interfaces, and this port exposes no client API.
#
# Messages are one-way, as in the protocol: a reply, if any, travels as its own
# message over the receiver's link to the sender.
#
# Compatibility: fields and methods are only ever added, with new ordinals.

@0xc67a2dfbe31d7508;

using Stream = import "/capnp/stream.capnp";

struct Entry {
  # The view in which the primary prepared this op.
  view @0 :UInt64;
  op @1 :UInt64;
  # An encoded calendar request; opaque to the protocol.
  payload @2 :Data;
}

struct Message {
  # The view the sender is in.
  view @0 :UInt64;
  # The sender's replica id; checked against the authenticated link.
  replica @1 :UInt8;

  union {
    # Primary to backups: append these entries (contiguous, after
    # `entries[0].op - 1`) and learn the commit number.
    prepare :group {
      commit @2 :UInt64;
      entries @3 :List(Entry);
    }
    # Backup to primary: every op up to `op` is durable in this backup's log.
    prepareOk :group {
      op @4 :UInt64;
    }
    # Primary heartbeat with its commit number. `nonce` ties the answers to a
    # read-confirmation round.
    commit :group {
      commit @5 :UInt64;
      nonce @6 :UInt64;
    }
    commitOk :group {
      nonce @7 :UInt64;
    }
    startViewChange @8 :Void;
    doViewChange :group {
      # The last view in which the sender's status was normal.
      logView @9 :UInt64;
      op @10 :UInt64;
      commit @11 :UInt64;
      entries @12 :List(Entry);
    }
    startView :group {
      op @13 :UInt64;
      commit @14 :UInt64;
      entries @15 :List(Entry);
    }
    # A lagging replica asks for the entries after `op`.
    getState :group {
      op @16 :UInt64;
    }
    newState :group {
      op @17 :UInt64;
      commit @18 :UInt64;
      entries @19 :List(Entry);
    }
    # A replica with an empty or damaged disk asks for the current state.
    recovery :group {
      nonce @20 :UInt64;
    }
    recoveryResponse :group {
      nonce @21 :UInt64;
      # Set only by the primary of `view`.
      isPrimary @22 :Bool;
      op @23 :UInt64;
      commit @24 :UInt64;
      entries @25 :List(Entry);
    }
  }
}

# The bootstrap capability of a node's peer port.
interface PeerGateway {
  # A fresh random challenge for `authenticate`.
  challenge @0 () -> (nonce :Data);
  # `mac` is HMAC-SHA256(cluster secret, nonce || replica id). Fails with an
  # exception on a wrong mac or an unknown replica id.
  authenticate @1 (replica :UInt8, nonce :Data, mac :Data) -> (link :PeerLink);
}

interface PeerLink {
  send @0 (message :Message) -> stream;
}
