//! A private PostgreSQL for running Qubit with nothing configured.
//!
//! The cluster lives in `<home>/postgres/data`, created with `initdb` on first use and kept
//! between runs. It listens on a free loopback port (no Unix socket) and trusts local
//! connections, which suits a developer's machine and nothing else. PostgreSQL refuses to
//! run as root, so as root the server runs as the `postgres` system user, which Debian's
//! `postgresql` package creates.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};
use tokio::process::Command;

pub struct EmbeddedPostgres {
    /// Held while this runner owns the cluster; another runner on the same home is refused.
    _lock: Flock<File>,
    bin_dir: PathBuf,
    root: PathBuf,
    data_dir: PathBuf,
    port: u16,
    server_user: Option<(Uid, Gid)>,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `home` if needed and starts it.
    pub async fn start(home: &Path) -> Result<Self> {
        let bin_dir = find_bin_dir().context(
            "DATABASE_URL is unset and no PostgreSQL server binaries were found \
             (looked for initdb on PATH and in /usr/lib/postgresql/*/bin); \
             install PostgreSQL or set DATABASE_URL",
        )?;
        let server_user = server_user()?;
        let root = absolute(&home.join("postgres"))?;
        let data_dir = root.join("data");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let lock = lock_home(home)?;
        if let Some((uid, gid)) = server_user {
            hand_over(&root, uid, gid)?;
        }
        let port = free_port()?;
        let server = Self {
            _lock: lock,
            bin_dir,
            root,
            data_dir,
            port,
            server_user,
        };

        if !server.data_dir.join("PG_VERSION").exists() {
            server.init().await?;
        }
        // A runner killed without its clean-up leaves its server running: stop that one
        // first, since its port is not known to this run.
        if server.data_dir.join("postmaster.pid").exists() {
            let _ = server.pg_ctl(&["stop", "-m", "fast", "-w"]).await;
        }
        server.launch().await?;

        tracing::info!(
            database.port = server.port,
            database.data_dir = %server.data_dir.display(),
            "started the embedded PostgreSQL"
        );
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Stops the server, waiting until it has written everything out.
    pub async fn stop(&self) -> Result<()> {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]).await?;
        tracing::info!("stopped the embedded PostgreSQL");
        Ok(())
    }

    async fn init(&self) -> Result<()> {
        let data_dir = self.data_dir.to_string_lossy();
        let output = self
            .command("initdb")
            .args(["-D", &data_dir, "-U", "postgres", "-A", "trust"])
            .args(["--encoding=UTF8", "--locale=C"])
            .output()
            .await
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    async fn launch(&self) -> Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''",
            self.port
        );
        let log = self.root.join("server.log");
        let log = log.to_string_lossy();
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &options])
            .await
            .with_context(|| format!("PostgreSQL did not start; see {log}"))
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let data_dir = self.data_dir.to_string_lossy();
        let output = self
            .command("pg_ctl")
            .args(["-D", &data_dir])
            .args(args)
            .output()
            .await
            .context("cannot run pg_ctl")?;
        if !output.status.success() {
            bail!(
                "pg_ctl {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        // The server's own process group keeps a Ctrl-C in the terminal from reaching it
        // directly: the runner stops it after recording the batch in flight.
        command.process_group(0).current_dir(&self.root);
        command.stdin(std::process::Stdio::null());
        if let Some((uid, gid)) = self.server_user {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command
    }
}

/// Takes `<home>/runner.lock`, so two runners never manage one cluster: the second would
/// stop the first's server to start its own.
fn lock_home(home: &Path) -> Result<Flock<File>> {
    let path = home.join("runner.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow::anyhow!(
            "another qubit-local is running with QUBIT_HOME={}; give this one its own \
             QUBIT_HOME, or share the first one's database by setting DATABASE_URL to the \
             database.url it logged",
            home.display()
        )
    })
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, else the newest of Debian's.
fn find_bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Who runs the server: `None` for the current user, the `postgres` user when root.
fn server_user() -> Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")
        .context("cannot look up the postgres user")?
        .context(
            "running as root, PostgreSQL needs an unprivileged user to run as, and there is \
             no 'postgres' user; create one or set DATABASE_URL",
        )?;
    Ok(Some((user.uid, user.gid)))
}

/// Gives `dir` to the server's user and lets that user reach it through its ancestors.
fn hand_over(dir: &Path, uid: Uid, gid: Gid) -> Result<()> {
    nix::unistd::chown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot hand {} to the postgres user", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;

    // A directory the postgres user cannot pass through (a 0700 home or temporary directory)
    // hides the data directory from the server. Search permission alone lets it through
    // without letting it list anything.
    for ancestor in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(ancestor)?;
        if meta.uid() != uid.as_raw() && meta.mode() & 0o001 == 0 {
            let mode = (meta.mode() & 0o7777) | 0o001;
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode))
                .with_context(|| {
                    format!("cannot open {} to the postgres user", ancestor.display())
                })?;
            tracing::warn!(
                path = %ancestor.display(),
                "granted others search permission so the postgres user can reach its data"
            );
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(path))
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
