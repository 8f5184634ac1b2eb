//! The cluster configuration file (TOML).
//!
//! ```toml
//! # Either the secret itself, or a file that holds it (relative paths are
//! # read from the config file's directory).
//! cluster_secret_file = "cluster-secret"
//!
//! # Optional TLS on both ports: the CA that signed every node's
//! # certificate. Clients given this file with --config trust it too.
//! tls_ca_file = "ca.pem"
//!
//! [[node]]
//! id = 1
//! client = "127.0.0.1:7401"   # where clients connect
//! peer = "127.0.0.1:7501"     # where the other nodes connect
//! tls_cert_file = "node-1.pem"     # with tls_ca_file: this node's chain
//! tls_key_file = "node-1-key.pem"  # and its private key
//!
//! # Optional; the defaults are shown.
//! [snapshot]
//! every_ops = 10000           # committed ops between snapshots
//! every_log_bytes = 16777216  # bytes of log between snapshots, at most 32 MiB
//! ```
//!
//! Node ids run from 1 to n without gaps, and n is odd: a cluster of
//! n = 2f + 1 nodes keeps working while f of them are down. TLS is all or
//! nothing: with `tls_ca_file` every node names a certificate and a key, and
//! without it none does. Relative paths are read from the config file's
//! directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::node::tls::TlsFiles;
use crate::rpc::serve::CONNECTIONS_PER_ADDRESS_DEFAULT;

/// The shortest cluster secret accepted, in bytes.
pub const SECRET_MIN_BYTES: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddresses {
    pub id: u8,
    pub client: String,
    pub peer: String,
}

/// The default committed ops between two snapshots. A restart replays up to
/// about this many ops after loading the newest snapshot, at about 250,000
/// ops per second. Each snapshot writes the whole state, and at 10,000 the
/// snapshots of a large calendar cost about a quarter of the write
/// throughput under load (docs/BENCHMARKS.md).
pub const SNAPSHOT_EVERY_OPS_DEFAULT: u64 = 100_000;

/// The default log bytes between two snapshots (16 MiB), so that a log of
/// large requests is compacted before the op count is reached. A schedule
/// logs about 90 bytes, so for ordinary writes the op count comes first.
pub const SNAPSHOT_EVERY_LOG_BYTES_DEFAULT: u64 = 16 << 20;

/// The most log bytes allowed between two snapshots (32 MiB). A view
/// change sends the whole log after the sender's snapshot in one message,
/// so this plus one prepare batch (`replication::PREPARE_BYTES_MAX`, 16 MiB)
/// must stay below the peer port's traversal limit of 64 MiB. A node
/// writing a snapshot waits for it once its log reaches this size.
pub const SNAPSHOT_EVERY_LOG_BYTES_MAX: u64 = 32 << 20;

const _: () = assert!(
    SNAPSHOT_EVERY_LOG_BYTES_MAX as usize + crate::replication::PREPARE_BYTES_MAX
        < crate::rpc::serve::TRAVERSAL_LIMIT_WORDS * 8
);

/// When a node takes a snapshot: after `every_ops` committed ops or
/// `every_log_bytes` bytes of log since the last one, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotPolicy {
    pub every_ops: u64,
    pub every_log_bytes: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_ops: SNAPSHOT_EVERY_OPS_DEFAULT,
            every_log_bytes: SNAPSHOT_EVERY_LOG_BYTES_DEFAULT,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Nodes in id order: index i holds the node with id i + 1.
    pub nodes: Vec<NodeAddresses>,
    pub secret: Vec<u8>,
    /// When each node takes a snapshot and compacts its log.
    pub snapshot: SnapshotPolicy,
    /// Connections one remote IP address may keep open on a node's client
    /// port at a time.
    pub client_connections_per_address: usize,
}

/// The TLS files a cluster config names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    pub ca: PathBuf,
    /// Certificate and key per node, in id order like `ClusterConfig::nodes`.
    pub node_files: Vec<(PathBuf, PathBuf)>,
}

impl ClusterTls {
    /// Returns the TLS files of the node with this id.
    pub fn files(&self, id: u8) -> Option<TlsFiles> {
        let (cert, key) = self.node_files.get((id as usize).checked_sub(1)?)?;
        Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: self.ca.clone(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNode {
    id: u8,
    client: String,
    peer: String,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cluster_secret: Option<String>,
    cluster_secret_file: Option<PathBuf>,
    tls_ca_file: Option<PathBuf>,
    node: Vec<FileNode>,
    #[serde(default)]
    snapshot: SnapshotPolicy,
    #[serde(default = "default_client_connections_per_address")]
    client_connections_per_address: usize,
}

fn default_client_connections_per_address() -> usize {
    CONNECTIONS_PER_ADDRESS_DEFAULT
}

impl ClusterConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        Ok(Self::load_with_tls(path)?.0)
    }

    /// Reads and checks a config file, with the TLS files it names, if any.
    pub fn load_with_tls(path: &Path) -> Result<(ClusterConfig, Option<ClusterTls>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse_with_tls(&text, base).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses config text; `base` resolves a relative `cluster_secret_file`.
    pub fn parse(text: &str, base: &Path) -> Result<ClusterConfig, String> {
        Ok(Self::parse_with_tls(text, base)?.0)
    }

    /// Parses config text with its TLS files; `base` resolves relative
    /// paths.
    pub fn parse_with_tls(
        text: &str,
        base: &Path,
    ) -> Result<(ClusterConfig, Option<ClusterTls>), String> {
        let mut file: File = toml::from_str(text).map_err(|error| error.to_string())?;
        file.node.sort_by_key(|node| node.id);
        let tls = cluster_tls(&file, base)?;
        let secret = match (file.cluster_secret, file.cluster_secret_file) {
            (Some(secret), None) => secret.into_bytes(),
            (None, Some(secret_path)) => {
                let full = base.join(&secret_path);
                let text = std::fs::read_to_string(&full).map_err(|error| {
                    format!(
                        "cannot read cluster_secret_file {}: {error}",
                        full.display()
                    )
                })?;
                text.trim().as_bytes().to_vec()
            }
            (Some(_), Some(_)) => {
                return Err("set cluster_secret or cluster_secret_file, not both".into())
            }
            (None, None) => return Err("missing cluster_secret or cluster_secret_file".into()),
        };
        if secret.len() < SECRET_MIN_BYTES {
            return Err(format!(
                "the cluster secret has {} bytes; use at least {SECRET_MIN_BYTES} random bytes",
                secret.len()
            ));
        }
        let nodes: Vec<NodeAddresses> = file
            .node
            .into_iter()
            .map(|node| NodeAddresses {
                id: node.id,
                client: node.client,
                peer: node.peer,
            })
            .collect();
        Self::check_nodes(&nodes)?;
        let snapshot = file.snapshot;
        if snapshot.every_log_bytes > SNAPSHOT_EVERY_LOG_BYTES_MAX {
            return Err(format!(
                "[snapshot] every_log_bytes {} is above the maximum {SNAPSHOT_EVERY_LOG_BYTES_MAX}: \
                 a view change sends the log since the last snapshot in one message; use a \
                 smaller value",
                snapshot.every_log_bytes
            ));
        }
        if snapshot.every_ops == 0 || snapshot.every_log_bytes == 0 {
            return Err(format!(
                "[snapshot] every_ops {} and every_log_bytes {} must both be at least 1",
                snapshot.every_ops, snapshot.every_log_bytes
            ));
        }
        if file.client_connections_per_address == 0 {
            return Err(
                "client_connections_per_address is 0; use at least 1 (the default is 64)".into(),
            );
        }
        Ok((
            ClusterConfig {
                nodes,
                secret,
                snapshot,
                client_connections_per_address: file.client_connections_per_address,
            },
            tls,
        ))
    }

    fn check_nodes(nodes: &[NodeAddresses]) -> Result<(), String> {
        if nodes.is_empty() || nodes.len().is_multiple_of(2) {
            return Err(format!(
                "the cluster has {} nodes; list an odd number of [[node]] tables (1, 3, 5, ...)",
                nodes.len()
            ));
        }
        for (index, node) in nodes.iter().enumerate() {
            if node.id as usize != index + 1 {
                return Err(format!(
                    "node ids must run from 1 to {} without gaps or repeats; found id {} in place of {}",
                    nodes.len(),
                    node.id,
                    index + 1
                ));
            }
        }
        let mut addresses: Vec<&str> = nodes
            .iter()
            .flat_map(|node| [node.client.as_str(), node.peer.as_str()])
            .collect();
        addresses.sort_unstable();
        if let Some(pair) = addresses.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!(
                "address {} is used twice; give every port its own",
                pair[0]
            ));
        }
        Ok(())
    }

    /// The node with this id.
    pub fn node(&self, id: u8) -> Option<&NodeAddresses> {
        self.nodes.get((id as usize).checked_sub(1)?)
    }

    pub fn client_addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.client.clone()).collect()
    }
}

/// Checks that TLS is set for every node or for none, and resolves the
/// paths against `base`. Expects `file.node` sorted by id.
fn cluster_tls(file: &File, base: &Path) -> Result<Option<ClusterTls>, String> {
    let any_node_file = file
        .node
        .iter()
        .any(|node| node.tls_cert_file.is_some() || node.tls_key_file.is_some());
    let Some(ca) = &file.tls_ca_file else {
        if any_node_file {
            return Err(
                "a node names tls_cert_file or tls_key_file, but tls_ca_file is \
                        missing; set tls_ca_file to the CA that signed the nodes' certificates"
                    .into(),
            );
        }
        return Ok(None);
    };
    let mut node_files = Vec::new();
    for node in &file.node {
        match (&node.tls_cert_file, &node.tls_key_file) {
            (Some(cert), Some(key)) => node_files.push((base.join(cert), base.join(key))),
            _ => {
                return Err(format!(
                    "tls_ca_file is set, so node {} needs both tls_cert_file and tls_key_file",
                    node.id
                ))
            }
        }
    }
    Ok(Some(ClusterTls {
        ca: base.join(ca),
        node_files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"
cluster_secret = "0123456789abcdef0123"
[[node]]
id = 2
client = "127.0.0.1:7402"
peer = "127.0.0.1:7502"
[[node]]
id = 1
client = "127.0.0.1:7401"
peer = "127.0.0.1:7501"
[[node]]
id = 3
client = "127.0.0.1:7403"
peer = "127.0.0.1:7503"
"#;

    #[test]
    fn parses_three_nodes_in_id_order() {
        let config = ClusterConfig::parse(THREE, Path::new(".")).unwrap();
        let ids: Vec<u8> = config.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(config.node(2).unwrap().client, "127.0.0.1:7402");
        assert_eq!(config.secret, b"0123456789abcdef0123");
    }

    #[test]
    fn snapshot_policy_defaults_and_overrides() {
        let config = ClusterConfig::parse(THREE, Path::new(".")).unwrap();
        assert_eq!(config.snapshot, SnapshotPolicy::default());
        let text = format!("{THREE}\n[snapshot]\nevery_ops = 50\n");
        let config = ClusterConfig::parse(&text, Path::new(".")).unwrap();
        assert_eq!(config.snapshot.every_ops, 50);
        assert_eq!(
            config.snapshot.every_log_bytes,
            SNAPSHOT_EVERY_LOG_BYTES_DEFAULT
        );
    }

    #[test]
    fn client_connection_limit_defaults_and_overrides() {
        let config = ClusterConfig::parse(THREE, Path::new(".")).unwrap();
        assert_eq!(
            config.client_connections_per_address,
            CONNECTIONS_PER_ADDRESS_DEFAULT
        );
        let text = format!("client_connections_per_address = 512\n{THREE}");
        let config = ClusterConfig::parse(&text, Path::new(".")).unwrap();
        assert_eq!(config.client_connections_per_address, 512);
    }

    #[test]
    fn client_connection_limit_zero_rejected() {
        let text = format!("client_connections_per_address = 0\n{THREE}");
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(
            error.contains("client_connections_per_address is 0"),
            "{error}"
        );
    }

    #[test]
    fn snapshot_policy_zero_rejected() {
        let text = format!("{THREE}\n[snapshot]\nevery_ops = 0\n");
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("every_ops 0"), "{error}");
    }

    #[test]
    fn snapshot_log_bytes_over_maximum_rejected() {
        let text = format!(
            "{THREE}\n[snapshot]\nevery_log_bytes = {}\n",
            SNAPSHOT_EVERY_LOG_BYTES_MAX + 1
        );
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("above the maximum"), "{error}");
        let text =
            format!("{THREE}\n[snapshot]\nevery_log_bytes = {SNAPSHOT_EVERY_LOG_BYTES_MAX}\n");
        assert!(ClusterConfig::parse(&text, Path::new(".")).is_ok());
    }

    #[test]
    fn rejects_even_node_count() {
        let text = THREE.split("[[node]]\nid = 3").next().unwrap();
        let error = ClusterConfig::parse(text, Path::new(".")).unwrap_err();
        assert!(error.contains("odd number"), "{error}");
    }

    #[test]
    fn rejects_short_secret() {
        let text = THREE.replace("0123456789abcdef0123", "short");
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("at least 16"), "{error}");
    }

    #[test]
    fn rejects_repeated_address() {
        let text = THREE.replace("127.0.0.1:7503", "127.0.0.1:7401");
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("used twice"), "{error}");
    }

    #[test]
    fn rejects_id_gap() {
        let text = THREE.replace("id = 3", "id = 4");
        let error = ClusterConfig::parse(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("without gaps"), "{error}");
    }

    /// Adds TLS files to every node of `THREE`.
    fn three_with_tls() -> String {
        let mut text = format!("tls_ca_file = \"ca.pem\"\n{THREE}");
        for id in 1..=3 {
            let peer = format!("peer = \"127.0.0.1:750{id}\"\n");
            let files = format!(
                "{peer}tls_cert_file = \"node-{id}.pem\"\ntls_key_file = \"/keys/node-{id}.pem\"\n"
            );
            text = text.replace(&peer, &files);
        }
        text
    }

    #[test]
    fn parses_tls_files_per_node() {
        let text = three_with_tls();
        let (_, tls) = ClusterConfig::parse_with_tls(&text, Path::new("/etc/almanac")).unwrap();
        let files = tls.expect("TLS is configured").files(2).unwrap();
        assert_eq!(files.cert, Path::new("/etc/almanac/node-2.pem"));
        assert_eq!(files.key, Path::new("/keys/node-2.pem"));
        assert_eq!(files.ca, Path::new("/etc/almanac/ca.pem"));
    }

    #[test]
    fn no_tls_without_ca_file() {
        let (_, tls) = ClusterConfig::parse_with_tls(THREE, Path::new(".")).unwrap();
        assert_eq!(tls, None);
    }

    #[test]
    fn rejects_tls_on_some_nodes_only() {
        let text = three_with_tls().replace("tls_key_file = \"/keys/node-3.pem\"\n", "");
        let error = ClusterConfig::parse_with_tls(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("node 3 needs both"), "{error}");
    }

    #[test]
    fn rejects_node_tls_without_ca() {
        let text = three_with_tls().replace("tls_ca_file = \"ca.pem\"\n", "");
        let error = ClusterConfig::parse_with_tls(&text, Path::new(".")).unwrap_err();
        assert!(error.contains("tls_ca_file is missing"), "{error}");
    }

    #[test]
    fn reads_secret_file_relative_to_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "abcdefghijklmnopqrstuvwx\n").unwrap();
        let text = THREE.replace(
            "cluster_secret = \"0123456789abcdef0123\"",
            "cluster_secret_file = \"secret\"",
        );
        let config = ClusterConfig::parse(&text, dir.path()).unwrap();
        assert_eq!(config.secret, b"abcdefghijklmnopqrstuvwx");
    }
}
