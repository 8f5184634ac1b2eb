//! TLS on both ports of a real three-node cluster, with certificates that
//! rcgen makes for the test. A client that trusts the cluster's CA is
//! served. A client that trusts another CA fails with an error that names
//! the certificate problem.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, register, wait_until, Scratch};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A certificate authority that signs node certificates.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Authority { cert, key }
    }

    /// Writes the CA certificate to `path`.
    fn write_cert(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).unwrap();
    }

    /// Writes a certificate for 127.0.0.1 and localhost, signed by this
    /// authority, and its key.
    fn write_node_pair(&self, cert_path: &Path, key_path: &Path) {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(cert_path, cert.pem()).unwrap();
        std::fs::write(key_path, key.serialize_pem()).unwrap();
    }
}

/// Node processes that are killed and reaped when dropped.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes the cluster config and certificates of three nodes under
/// `scratch` and returns the config path and the client addresses.
fn write_cluster(scratch: &Scratch, authority: &Authority) -> (std::path::PathBuf, Vec<String>) {
    authority.write_cert(&scratch.path("ca.pem"));
    let mut text =
        String::from("cluster_secret = \"a-secret-for-the-tls-tests\"\ntls_ca_file = \"ca.pem\"\n");
    let mut clients = Vec::new();
    for id in 1..=3 {
        authority.write_node_pair(
            &scratch.path(&format!("node-{id}.pem")),
            &scratch.path(&format!("node-{id}-key.pem")),
        );
        let client = format!("127.0.0.1:{}", free_port());
        let peer = format!("127.0.0.1:{}", free_port());
        text.push_str(&format!(
            "[[node]]\nid = {id}\nclient = \"{client}\"\npeer = \"{peer}\"\n\
             tls_cert_file = \"node-{id}.pem\"\ntls_key_file = \"node-{id}-key.pem\"\n"
        ));
        clients.push(client);
    }
    let config = scratch.path("cluster.toml");
    std::fs::write(&config, text).unwrap();
    (config, clients)
}

fn start_nodes(scratch: &Scratch, config: &Path, clients: &[String]) -> Nodes {
    let mut nodes = Nodes(Vec::new());
    for id in 1..=clients.len() {
        let log = std::fs::File::create(scratch.path(&format!("node-{id}.log"))).unwrap();
        let child = Command::new(common::ALMANAC)
            .args(["server", "--config"])
            .arg(config)
            .args(["--id", &id.to_string(), "--init", "--data"])
            .arg(scratch.path(&format!("data-{id}")))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn almanac server");
        nodes.0.push(child);
    }
    // A node listens before it has opened its data directory, and a TLS
    // handshake waits until it serves, so wait for every node's start line.
    let serving = wait_until(common::STARTUP_TIMEOUT, || {
        let listening = clients
            .iter()
            .all(|address| TcpStream::connect(address).is_ok());
        listening && node_logs(scratch).matches("serving node=").count() == clients.len()
    });
    assert!(
        serving,
        "the TLS nodes did not start:\n{}",
        node_logs(scratch)
    );
    nodes
}

fn node_logs(scratch: &Scratch) -> String {
    (1..=3)
        .map(|id| {
            std::fs::read_to_string(scratch.path(&format!("node-{id}.log"))).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn tls_cluster_serves_trusting_client() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let authority = Authority::new("Almanac test CA");
    let (config, clients) = write_cluster(&scratch, &authority);
    let _nodes = start_nodes(&scratch, &config, &clients);

    // --config gives the client both the addresses and the CA.
    let script = format!(
        "{}schedule \"Over TLS\" 2031-01-07 10:00 for 30m\n",
        register("tess", "tess-password")
    );
    let config_arg = config.display().to_string();
    let finished = common::almanac(
        &[
            "repl",
            "--config",
            &config_arg,
            "--now",
            common::NOW,
            "--tz",
            "UTC",
            "--output",
            "json",
        ],
        &script,
    );
    let replies = finished.replies();
    assert_eq!(replies.len(), 2, "{finished}\n{}", node_logs(&scratch));
    assert!(
        replies.iter().all(|reply| reply["ok"] == true),
        "{finished}\n{}",
        node_logs(&scratch)
    );
    let logs = node_logs(&scratch);
    assert!(logs.contains("tls=true"), "{logs}");
    assert!(
        !logs.contains("without TLS"),
        "a TLS node warned about plain text: {logs}"
    );

    // A backup takes the CA from the config as well.
    let out = scratch.path("tls-backup.alsn");
    let out_arg = out.display().to_string();
    let backup = common::almanac(&["backup", "--config", &config_arg, &out_arg], "");
    assert!(backup.status.success(), "{backup}\n{}", node_logs(&scratch));
    let verify = common::almanac(&["verify", &out_arg], "");
    assert!(verify.status.success(), "{verify}");
}

#[test]
fn client_with_wrong_ca_fails_clearly() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let authority = Authority::new("Almanac test CA");
    let (config, clients) = write_cluster(&scratch, &authority);
    let _nodes = start_nodes(&scratch, &config, &clients);
    let stranger = Authority::new("Some other CA");
    let wrong_ca = scratch.path("wrong-ca.pem");
    stranger.write_cert(&wrong_ca);

    let cluster = clients.join(",");
    let wrong_ca_arg = wrong_ca.display().to_string();
    let finished = common::almanac(
        &[
            "status",
            "--cluster",
            &cluster,
            "--ca",
            &wrong_ca_arg,
            "--output",
            "json",
        ],
        "",
    );
    let output = format!("{}{}", finished.stdout, finished.stderr);
    assert!(
        output.contains("TLS handshake with 127.0.0.1"),
        "the error does not name the TLS handshake: {output}"
    );
    assert!(
        output.contains("UnknownIssuer"),
        "the error does not name the untrusted issuer: {output}"
    );
}

#[test]
fn plain_client_cannot_use_tls_port() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let authority = Authority::new("Almanac test CA");
    let (config, clients) = write_cluster(&scratch, &authority);
    let _nodes = start_nodes(&scratch, &config, &clients);

    let started = std::time::Instant::now();
    let finished = common::almanac(
        &["status", "--cluster", &clients[0], "--output", "json"],
        "",
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "status hung against a TLS port"
    );
    let output = format!("{}{}", finished.stdout, finished.stderr);
    assert!(
        !output.contains("\"role\":\"primary\"") && !output.contains("\"role\": \"primary\""),
        "a plain client read the status of a TLS node: {output}"
    );
}

#[test]
fn single_node_serves_tls_from_flags() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let authority = Authority::new("Almanac test CA");
    authority.write_cert(&scratch.path("ca.pem"));
    authority.write_node_pair(&scratch.path("node.pem"), &scratch.path("node-key.pem"));
    let address = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(scratch.path("node-1.log")).unwrap();
    let child = Command::new(common::ALMANAC)
        .args(["server", "--listen", &address, "--data"])
        .arg(scratch.path("data"))
        .arg("--tls-cert")
        .arg(scratch.path("node.pem"))
        .arg("--tls-key")
        .arg(scratch.path("node-key.pem"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn almanac server");
    let _node = Nodes(vec![child]);
    let serving = wait_until(common::STARTUP_TIMEOUT, || {
        let log = std::fs::read_to_string(scratch.path("node-1.log")).unwrap_or_default();
        log.contains("serving node=")
    });
    assert!(
        serving,
        "the TLS node did not start:\n{}",
        node_logs(&scratch)
    );

    let ca = scratch.path("ca.pem").display().to_string();
    let script = register("sina", "sina-password");
    let finished = common::almanac(
        &[
            "repl",
            "--cluster",
            &address,
            "--ca",
            &ca,
            "--now",
            common::NOW,
            "--output",
            "json",
        ],
        &script,
    );
    let replies = finished.replies();
    assert_eq!(replies.len(), 1, "{finished}");
    assert_eq!(replies[0]["ok"], true, "{finished}");
}
