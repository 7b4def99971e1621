//! Accounts as the rest of the program sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A regular account.
    User,
    /// May read the audit log and jobs, and change roles.
    Admin,
}

impl Role {
    /// The stored and claimed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// Parses the stored form; anything unknown is the least privileged role.
    pub fn parse(s: &str) -> Self {
        if s == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Email address, as entered.
    pub email: String,
    /// Username, as entered.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Short biography (RealWorld profile).
    pub bio: Option<String>,
    /// Avatar URL (RealWorld profile).
    pub image: Option<String>,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

pub use crate::store::audit::{AuditQuery, AuditRecord};

/// Lower-case form used for uniqueness and look-ups.
pub fn normalize(s: &str) -> String {
    s.trim().to_lowercase()
}
