//! What a node does: serve the API, run background work, or both.
//!
//! Scaled out, the same binary runs as API nodes (`--role api`) behind a
//! proxy and worker nodes (`--role worker`) that drain the job queue; a
//! single node does both (`all`, the default). Everything that consumes work
//! in the background (job workers, the outbox relay, event consumers) starts
//! only where [`Role::runs_workers`] says so (see
//! [`crate::supervisor::RunsOn`]), and the API
//! routes are mounted only where [`Role::runs_http_api`] says so. Every role
//! serves the operational endpoints (`/healthz`, `/readyz`, `/metrics`), so
//! orchestrators can probe any node.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's role (`role` / `BASALT_ROLE`, or `basalt serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// API and background work: a single node.
    #[default]
    All,
    /// The HTTP API only; background work is left to worker nodes.
    Api,
    /// Background work only, plus the operational endpoints.
    Worker,
}

impl Role {
    /// Every role, for help texts.
    pub const ALL: [Role; 3] = [Role::All, Role::Api, Role::Worker];

    /// Whether this node mounts the API routes (modules' routes and the docs).
    pub fn runs_http_api(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }

    /// Whether this node runs background consumers: job workers (unless
    /// `jobs.workers` is 0), the outbox relay and event consumers.
    pub fn runs_workers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }

    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Api => "api",
            Self::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("`{s}` is not one of `all`, `api`, `worker`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_say_what_they_run() {
        assert_eq!("all".parse::<Role>(), Ok(Role::All));
        assert_eq!(" API ".parse::<Role>(), Ok(Role::Api));
        assert_eq!("worker".parse::<Role>(), Ok(Role::Worker));
        assert!("both".parse::<Role>().is_err());
        assert!(Role::All.runs_http_api() && Role::All.runs_workers());
        assert!(Role::Api.runs_http_api() && !Role::Api.runs_workers());
        assert!(!Role::Worker.runs_http_api() && Role::Worker.runs_workers());
        assert_eq!(Role::default(), Role::All);
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
    }
}
