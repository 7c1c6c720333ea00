//! Signing in to the admin service: a token, or a user and password (prompted for on a
//! terminal when not given).

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use streamhub_model::Secret;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::kafka::KafkaArgs;
use crate::menu;
use crate::render::Palette;
use streamhub_client::{Backoff, Client as AdminClient, Error as AdminError};

/// Where the admin service and Kafka are, and who is signing in. Shared by the interactive
/// consumer and `consumer read`.
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// The admin service to sign in to.
    #[arg(
        long,
        env = "STREAMHUB_ADMIN_URL",
        default_value = "http://127.0.0.1:5000",
        value_name = "URL"
    )]
    pub admin_url: Url,

    /// CA certificates (PEM) to trust for an https:// admin URL, beside the system's.
    #[arg(long, env = "STREAMHUB_ADMIN_CA_CERT", value_name = "PEM_FILE")]
    pub admin_ca_cert: Option<std::path::PathBuf>,

    /// The user to sign in as.
    #[arg(long, short = 'u', env = "STREAMHUB_USER", value_name = "NAME")]
    pub user: Option<String>,

    /// The user's password; prompted for (without echo) on a terminal when absent.
    /// Prefer the environment variable: a flag is visible to other local users.
    #[arg(
        long,
        env = "STREAMHUB_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<Secret>,

    /// A bearer token from `POST /api/auth/login`, instead of a user and password.
    #[arg(
        long,
        env = "STREAMHUB_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Secret>,

    #[command(flatten)]
    pub kafka: KafkaArgs,
}

impl SessionArgs {
    /// Arguments for a given admin service and Kafka cluster; the other Kafka flags come
    /// from their environment variables or defaults, as on the command line.
    pub fn new(admin_url: Url, bootstrap_servers: &str) -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            kafka: KafkaArgs,
        }
        let flags = <Flags as clap::Parser>::try_parse_from(["streamhub", "-b", bootstrap_servers])
            .map_err(|e| anyhow::anyhow!("invalid Kafka settings: {e}"))?;
        Ok(Self {
            admin_url,
            admin_ca_cert: None,
            user: None,
            password: None,
            token: None,
            kafka: flags.kafka,
        })
    }

    pub fn with_login(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self.password = Some(Secret::new(password));
        self
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub client: AdminClient,
    pub user: String,
    /// Kept to sign in again when the token expires during a long interactive run.
    password: Option<Secret>,
}

/// How persistent signing in is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// Scripts: fail at once with one line.
    Once,
    /// The interactive consumer: prompt for what is missing, and wait for an unreachable
    /// service, telling the person so, until it answers or they press Ctrl-C.
    Patiently,
}

fn can_prompt() -> bool {
    io::stdin().is_terminal()
}

impl Session {
    pub async fn sign_in(
        args: &SessionArgs,
        mode: SignIn,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Session> {
        let client =
            AdminClient::with_ca_cert(args.admin_url.clone(), args.admin_ca_cert.as_deref())?;
        if let Some(token) = args
            .token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty())
        {
            let client = client.with_token(token);
            let me = retry_unreachable(mode, shutdown, || client.me())
                .await
                .context("cannot sign in with STREAMHUB_TOKEN")?;
            if let Some(user) = &args.user
                && user != &me.username
            {
                bail!(
                    "the token belongs to '{}', not to '{user}' given by --user/STREAMHUB_USER",
                    me.username
                );
            }
            return Ok(Session {
                client,
                user: me.username,
                password: None,
            });
        }

        let user = match args.user.clone().filter(|u| !u.is_empty()) {
            Some(u) => u,
            None if mode == SignIn::Patiently && can_prompt() => read_line("User: ")?,
            None => {
                bail!("no user to sign in as: set --user or STREAMHUB_USER (or STREAMHUB_TOKEN)")
            }
        };
        let given = args.password.clone();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let password = match &given {
                Some(p) => p.clone(),
                None if can_prompt() => menu::prompt_password(&format!("Password for {user}: "))
                    .map(Secret::new)
                    .context("cannot read the password from the terminal")?,
                None => bail!(
                    "no password for '{user}': set STREAMHUB_PASSWORD (or STREAMHUB_TOKEN), or run on a terminal to be asked"
                ),
            };
            let mut client = client.clone();
            let result = retry_unreachable(mode, shutdown, || {
                let mut c = client.clone();
                let (u, p) = (user.clone(), password.clone());
                async move { c.login(&u, p.expose()).await.map(|r| (c, r)) }
            })
            .await;
            match result {
                Ok((signed_in, _)) => {
                    client = signed_in;
                    return Ok(Session {
                        client,
                        user,
                        password: Some(password),
                    });
                }
                Err(e @ AdminError::Api { .. })
                    if given.is_none() && mode == SignIn::Patiently && attempts < 3 =>
                {
                    eprintln!(
                        "{}",
                        Palette::for_stderr().red(&format!("sign-in failed: {e}"))
                    );
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot sign in as '{user}'"))
                    );
                }
            }
        }
    }

    /// Runs a call, signing in again once if the token has expired meanwhile.
    pub async fn call<T>(
        &mut self,
        f: impl AsyncFn(&AdminClient) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        match f(&self.client).await {
            Err(e) if e.is_unauthorized() => {
                let Some(password) = self.password.clone() else {
                    return Err(e);
                };
                self.client.login(&self.user, password.expose()).await?;
                f(&self.client).await
            }
            other => other,
        }
    }
}

/// How long the interactive consumer waits between sign-in attempts.
const SIGN_IN_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));

/// In [`SignIn::Patiently`] mode, retries while the admin service is unreachable (or
/// answers 5xx), telling the person so, until Ctrl-C or `shutdown`.
async fn retry_unreachable<T, F, Fut>(
    mode: SignIn,
    shutdown: &CancellationToken,
    mut call: F,
) -> Result<T, AdminError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AdminError>>,
{
    if mode != SignIn::Patiently {
        return call().await;
    }
    let stop = async {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    streamhub_client::retry(SIGN_IN_RETRY, stop, call, |e, delay| {
        eprintln!(
            "{}",
            Palette::for_stderr().yellow(&format!(
                "{e}; retrying in {:.1} s (Ctrl-C to quit)",
                delay.as_secs_f64()
            ))
        );
    })
    .await
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    io::stdout().flush()?;
    let mut line = String::new();
    io::stdin().read_line(&mut line)?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        bail!("no user given");
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_neither_password_nor_token() {
        let mut args = SessionArgs::new("http://127.0.0.1:5000".parse().unwrap(), "127.0.0.1:9092")
            .unwrap()
            .with_login("alice", "Lantern-Orbit-Kettle-57");
        args.token = Some(Secret::new("tok-Wd73Kx2Qv"));
        let client = AdminClient::new(args.admin_url.clone())
            .unwrap()
            .with_token("tok-Wd73Kx2Qv");
        let session = Session {
            client,
            user: "alice".into(),
            password: args.password.clone(),
        };
        let shown = format!("{args:?} {session:?}");
        assert!(shown.contains("alice"), "{shown}");
        for secret in ["Lantern-Orbit-Kettle-57", "tok-Wd73Kx2Qv"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
