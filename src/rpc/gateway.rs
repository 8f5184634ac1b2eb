//! The client port's bootstrap object: register, log in, resume a session,
//! report the node's status, and serve backups.

pub mod login_limit;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use capnp::capability::Rc as CapRc;
use tracing::{debug, info};

use crate::calendar::{self, Command, Effect, Outcome, UNTRACKED_CLIENT_ID};
use crate::node::auth;
use crate::node::service::Service;
use crate::rpc::backup::{serve_backup, BackupAuth};
use crate::rpc::calendar_capnp::{backup_result, gateway, session_result};
use crate::rpc::convert::{write_rejection, ApiRejection};
use crate::rpc::session::SessionServer;
use login_limit::LoginLimiter;

pub struct GatewayServer {
    service: Rc<Service>,
    backup: BackupAuth,
    /// The remote address of the connection this gateway serves, which the
    /// per-address login limit counts against.
    remote: IpAddr,
    /// Failed-login buckets, shared by every connection to this node.
    logins: Rc<RefCell<LoginLimiter>>,
}

impl GatewayServer {
    /// Creates a gateway with login limits of its own, counted as if every
    /// caller came from 0.0.0.0.
    pub fn new(service: Rc<Service>) -> Self {
        let logins = Rc::new(RefCell::new(LoginLimiter::default()));
        GatewayServer::for_connection(service, IpAddr::V4(Ipv4Addr::UNSPECIFIED), logins)
    }

    /// Creates the gateway of one connection from `remote`, sharing the
    /// node's login limits.
    pub fn for_connection(
        service: Rc<Service>,
        remote: IpAddr,
        logins: Rc<RefCell<LoginLimiter>>,
    ) -> Self {
        GatewayServer {
            service,
            backup: BackupAuth::default(),
            remote,
            logins,
        }
    }

    /// Serves backups to callers that prove they know `secret`.
    pub fn with_backup_secret(self, secret: Rc<Vec<u8>>) -> Self {
        GatewayServer {
            backup: BackupAuth::new(secret),
            ..self
        }
    }
}

fn write_backup(mut builder: backup_result::Builder<'_>, result: Result<Vec<u8>, ApiRejection>) {
    match result {
        Ok(bytes) => builder.set_snapshot(&bytes),
        Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
    }
}

/// The session a successful register, login or resume returns.
struct Grant {
    username: String,
    token: Vec<u8>,
}

fn text_param(reader: capnp::Result<capnp::text::Reader<'_>>) -> capnp::Result<String> {
    Ok(reader?.to_str()?.to_owned())
}

impl GatewayServer {
    async fn open_session(&self, username: String) -> Result<Grant, ApiRejection> {
        let token = self.service.host.entropy.new_token();
        let command = Command::OpenSession {
            username: username.clone(),
            token_digest: auth::token_digest(&token),
        };
        match self.service.submit(UNTRACKED_CLIENT_ID, 0, command).await? {
            Outcome::Done(_) => Ok(Grant { username, token }),
            Outcome::Rejected(rejection) => Err(rejection.into()),
        }
    }

    async fn register_user(
        &self,
        client_id: u64,
        seq: u64,
        username: String,
        password: String,
    ) -> Result<Grant, ApiRejection> {
        calendar::validate_username(&username)?;
        calendar::validate_password(&password)?;
        // Only the primary can log the registration: do not spend a hash on
        // a request a backup would redirect anyway.
        self.service.ensure_primary()?;
        // A taken name is rejected when the registration is applied, not
        // here: a retry of a registration that already committed must reach
        // the client table and get its first outcome back.
        let password_hash = self
            .service
            .host
            .hashing
            .hash(password, &self.service.host.entropy)
            .await
            .map_err(ApiRejection::Unavailable)?;
        let command = Command::Register {
            username: username.clone(),
            password_hash,
        };
        match self.service.submit(client_id, seq, command).await? {
            Outcome::Done(Effect::Registered { username }) => {
                info!(node = self.service.replica_id + 1, user = %username, "registered");
                self.open_session(username).await
            }
            Outcome::Done(other) => Err(ApiRejection::Unavailable(format!(
                "unexpected outcome of a registration: {other:?}"
            ))),
            Outcome::Rejected(rejection) => Err(rejection.into()),
        }
    }

    /// Logs in within the failed-login limits: a wrong password keeps the
    /// tokens it took, anything else gives them back.
    async fn login_limited(
        &self,
        username: String,
        password: String,
    ) -> Result<Grant, ApiRejection> {
        let now_ms = self.service.host.clock.now_ms();
        let reserved = self
            .logins
            .borrow_mut()
            .reserve(&username, self.remote, now_ms);
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(wait) => {
                info!(node = self.service.replica_id + 1, user = %username,
                    remote = %self.remote, wait_ms = wait.wait_ms, "login rate-limited");
                return Err(ApiRejection::Calendar(calendar::Rejection::Forbidden {
                    reason: wait.to_string(),
                }));
            }
        };
        let grant = self.login_user(username, password).await;
        let mut logins = self.logins.borrow_mut();
        match &grant {
            Ok(_) => logins.succeeded(reservation, self.service.host.clock.now_ms()),
            Err(ApiRejection::WrongPassword) => logins.failed(reservation),
            Err(_) => logins.cancelled(reservation),
        }
        grant
    }

    async fn login_user(&self, username: String, password: String) -> Result<Grant, ApiRejection> {
        self.service.read_barrier().await?;
        let stored = self
            .service
            .calendar()
            .password_hash(&username)
            .map(str::to_owned);
        // An unknown user gets the same reply as a wrong password, so that
        // logins cannot probe which names exist.
        let Some(stored) = stored else {
            return Err(ApiRejection::WrongPassword);
        };
        if !self.service.host.hashing.verify(password, stored).await {
            debug!(node = self.service.replica_id + 1, user = %username, "login with a wrong password");
            return Err(ApiRejection::WrongPassword);
        }
        // Usernames are unique regardless of case: bind the session to the
        // name as it was registered.
        let canonical = self
            .service
            .calendar()
            .users(&username)
            .into_iter()
            .find(|name| name.eq_ignore_ascii_case(&username))
            .unwrap_or(username);
        self.open_session(canonical).await
    }

    async fn resume_session(&self, token: Vec<u8>) -> Result<Grant, ApiRejection> {
        self.service.read_barrier().await?;
        let digest = auth::token_digest(&token);
        let username = self
            .service
            .calendar()
            .session_user(&digest)
            .map(str::to_owned);
        match username {
            Some(username) => Ok(Grant { username, token }),
            None => Err(ApiRejection::Unauthenticated(
                "the session token is unknown or was closed".into(),
            )),
        }
    }

    fn write_grant(
        &self,
        builder: session_result::Builder<'_>,
        grant: Result<Grant, ApiRejection>,
    ) {
        match grant {
            Ok(grant) => {
                let session = SessionServer::new(
                    self.service.clone(),
                    grant.username.clone(),
                    auth::token_digest(&grant.token),
                );
                let mut ok = builder.init_ok();
                ok.set_session(capnp_rpc::new_client(session));
                ok.set_token(&grant.token);
                ok.set_username(grant.username.as_str());
            }
            Err(rejection) => write_rejection(builder.init_rejected(), &rejection),
        }
    }
}

impl gateway::Server for GatewayServer {
    async fn register(
        self: CapRc<Self>,
        params: gateway::RegisterParams,
        mut results: gateway::RegisterResults,
    ) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let request_id = params.get_request_id()?;
        let username = text_param(params.get_username())?;
        let password = text_param(params.get_password())?;
        let grant = self
            .register_user(
                request_id.get_client_id(),
                request_id.get_seq(),
                username,
                password,
            )
            .await;
        self.write_grant(results.get().init_result(), grant);
        Ok(())
    }

    async fn login(
        self: CapRc<Self>,
        params: gateway::LoginParams,
        mut results: gateway::LoginResults,
    ) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let username = text_param(params.get_username())?;
        let password = text_param(params.get_password())?;
        let grant = self.login_limited(username, password).await;
        self.write_grant(results.get().init_result(), grant);
        Ok(())
    }

    async fn resume(
        self: CapRc<Self>,
        params: gateway::ResumeParams,
        mut results: gateway::ResumeResults,
    ) -> Result<(), capnp::Error> {
        let token = params.get()?.get_token()?.to_vec();
        let grant = self.resume_session(token).await;
        self.write_grant(results.get().init_result(), grant);
        Ok(())
    }

    async fn status(
        self: CapRc<Self>,
        _params: gateway::StatusParams,
        mut results: gateway::StatusResults,
    ) -> Result<(), capnp::Error> {
        crate::rpc::status::write_status(results.get().init_status(), &self.service);
        Ok(())
    }

    async fn backup_challenge(
        self: CapRc<Self>,
        _params: gateway::BackupChallengeParams,
        mut results: gateway::BackupChallengeResults,
    ) -> Result<(), capnp::Error> {
        let nonce = self.backup.challenge(&self.service);
        results.get().set_nonce(&nonce);
        Ok(())
    }

    async fn backup(
        self: CapRc<Self>,
        params: gateway::BackupParams,
        mut results: gateway::BackupResults,
    ) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let nonce = params.get_nonce()?.to_vec();
        let proof = params.get_mac()?.to_vec();
        let result = serve_backup(&self.service, &self.backup, &nonce, &proof).await;
        write_backup(results.get().init_result(), result);
        Ok(())
    }
}
