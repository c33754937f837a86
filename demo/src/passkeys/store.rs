//! The `demo_passkeys` table: each passkey with its owner, the WebAuthn
//! user handle it was made for, a name, its creation time and the
//! credential webauthn-rs verifies with (JSON).

use webauthn_rs::prelude::{Passkey, Uuid};

use crate::{
    error::AppError,
    users::{on_pool, User, Users},
};

/// A passkey as the list shows it.
pub(crate) struct Listed {
    /// The credential id, base64url ([`super::encode_id`]).
    pub(crate) id: String,
    pub(crate) name: String,
    /// Seconds since the Unix epoch.
    pub(crate) created_at: i64,
}

/// A passkey with what verifying an assertion needs.
pub(crate) struct Stored {
    pub(crate) user_id: i64,
    /// The WebAuthn user handle it was registered under.
    pub(crate) user_handle: Uuid,
    pub(crate) passkey: Passkey,
}

/// A passkey about to be stored.
pub(crate) struct NewPasskey<'a> {
    pub(crate) user_handle: Uuid,
    pub(crate) name: &'a str,
    pub(crate) created_at: i64,
    pub(crate) passkey: &'a Passkey,
}

/// Whose passkey is inserted.
enum Owner<'a> {
    Existing(i64),
    /// A new account without a password, by this name.
    New(&'a str),
}

/// The credential as the table keeps it.
fn to_json(passkey: &Passkey) -> Result<String, AppError> {
    serde_json::to_string(passkey).map_err(|err| AppError::Passkey(err.to_string()))
}

impl Users {
    /// `user`'s passkeys, oldest first.
    pub(crate) async fn passkeys_of(&self, user: i64) -> Result<Vec<Listed>, AppError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT credential_id, name, created_at FROM demo_passkeys \
                 WHERE user_id = $1 ORDER BY created_at, credential_id",
            )
            .bind(user)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at)| Listed {
                id,
                name,
                created_at,
            })
            .collect())
    }

    /// The passkey `id` (base64url), whoever owns it.
    pub(crate) async fn passkey(&self, id: &str) -> Result<Option<Stored>, AppError> {
        let row: Option<(i64, String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id, user_handle, passkey FROM demo_passkeys WHERE credential_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        let Some((user_id, handle, json)) = row else {
            return Ok(None);
        };
        let unreadable = |what: &str| AppError::Passkey(format!("stored passkey: {what}"));
        Ok(Some(Stored {
            user_id,
            user_handle: Uuid::parse_str(&handle).map_err(|_| unreadable("user handle"))?,
            passkey: serde_json::from_str(&json).map_err(|_| unreadable("credential"))?,
        }))
    }

    /// The WebAuthn user handle of `user`'s passkeys, `None` before their
    /// first: one account keeps one handle, so that an authenticator
    /// replaces its old passkey for the account rather than adding one.
    pub(crate) async fn user_handle(&self, user: i64) -> Result<Option<Uuid>, AppError> {
        let handle: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT user_handle FROM demo_passkeys WHERE user_id = $1 \
                 ORDER BY created_at LIMIT 1",
            )
            .bind(user)
            .fetch_optional(pool)
            .await
        })?;
        handle
            .map(|handle| Uuid::parse_str(&handle))
            .transpose()
            .map_err(|_| AppError::Passkey("stored passkey: user handle".into()))
    }

    /// Stores `passkey` for `user`; `false` when its credential id is
    /// registered already (to anyone).
    pub(crate) async fn add_passkey(
        &self,
        user: i64,
        passkey: &NewPasskey<'_>,
    ) -> Result<bool, AppError> {
        Ok(self
            .insert_passkey(Owner::Existing(user), passkey)
            .await?
            .is_some())
    }

    /// Creates an account without a password whose one credential is
    /// `passkey`, both or neither; `None` when the username, or the
    /// credential, is taken.
    pub(crate) async fn create_with_passkey(
        &self,
        username: &str,
        passkey: &NewPasskey<'_>,
    ) -> Result<Option<User>, AppError> {
        match self.insert_passkey(Owner::New(username), passkey).await? {
            Some(user) => Ok(self.by_id(user).await?),
            None => Ok(None),
        }
    }

    /// Inserts `passkey` for its owner (and the owner first, when new), in
    /// one transaction; the owner's id, or `None` when a unique name or id
    /// is taken.
    async fn insert_passkey(
        &self,
        owner: Owner<'_>,
        passkey: &NewPasskey<'_>,
    ) -> Result<Option<i64>, AppError> {
        let id = super::encode_id(passkey.passkey.cred_id());
        let json = to_json(passkey.passkey)?;
        let handle = passkey.user_handle.to_string();
        let inserted = on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let user = match owner {
                Owner::Existing(user) => user,
                Owner::New(username) => {
                    sqlx::query_scalar(
                        "INSERT INTO demo_users (username, password_hash) VALUES ($1, '') \
                         RETURNING id",
                    )
                    .bind(username)
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            sqlx::query(
                "INSERT INTO demo_passkeys \
                 (credential_id, user_id, user_handle, name, created_at, passkey) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(user)
            .bind(&handle)
            .bind(passkey.name)
            .bind(passkey.created_at)
            .bind(&json)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(user)
        }
        .await);
        match inserted {
            Ok(user) => Ok(Some(user)),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Stores what an assertion changed (the signature counter, the backup
    /// state).
    pub(crate) async fn update_passkey(&self, passkey: &Passkey) -> Result<(), AppError> {
        let id = super::encode_id(passkey.cred_id());
        let json = to_json(passkey)?;
        on_pool!(self, pool => {
            sqlx::query("UPDATE demo_passkeys SET passkey = $1 WHERE credential_id = $2")
                .bind(json)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes `user`'s passkey `id`; `false` when they have none by that id.
    pub(crate) async fn remove_passkey(&self, user: i64, id: &str) -> Result<bool, AppError> {
        let done = on_pool!(self, pool => {
            sqlx::query("DELETE FROM demo_passkeys WHERE credential_id = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done > 0)
    }
}
