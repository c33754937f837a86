//! A user type and backend for the unit tests of several modules.

use std::convert::Infallible;

use crate::backend::{SessionUser, UserBackend};

/// User 1, with a fixed credential.
#[derive(Clone, Debug)]
pub(crate) struct User;

impl SessionUser for User {
    type Id = u8;
    fn id(&self) -> u8 {
        1
    }
    fn credential(&self) -> &[u8] {
        b"credential"
    }
}

/// A backend that finds [`User`] under any id.
#[derive(Clone, Debug)]
pub(crate) struct Users;

impl UserBackend for Users {
    type User = User;
    type Error = Infallible;
    async fn get_user(&self, _: &u8) -> Result<Option<User>, Infallible> {
        Ok(Some(User))
    }
}
