//! The handler-side handle: login, logout, `update_session_auth_hash`, and
//! the user's sessions in the registry.

use std::{fmt, time::SystemTime};

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use tower_sessions::Session;

use crate::{
    backend::SessionUser,
    config::{Checked, Context},
    credential::Factor,
    error::{AuthError, HashError},
    events::{AuthEventKind, RequestInfo},
    identity::{extension, identity, Identity},
    record::{end_session, AuthRecord, Bound, Claim, Proof, Proofs, RecordTimes, SESSION_KEY},
    registry::{user_key, Revocation, SessionHandle, SessionInfo, SessionRegistry, SignInDetails},
    rejection::AuthRejection,
    times::{from_unix_millis, SignIn, UnixMillis},
    unproven::Unproven,
};

/// Signs users in and out of the current session.
///
/// An extractor; it needs [`AuthLayer`](crate::AuthLayer) on the route.
/// Every method that changes who the session is, or what proves it
/// (`login`, `login_with`, `reauthenticate`, `logout`,
/// `update_session_auth_hash`), changes the session id, so an id that
/// leaked before the change (session fixation) is worth nothing after it.
/// The session's own record is read from what the layer verified, never
/// decoded again.
///
/// ```
/// # #[derive(Clone)] struct User;
/// # impl tower_sessions_auth::SessionUser for User {
/// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
/// # async fn check_password(_: &str) -> Option<User> { Some(User) }
/// use axum::response::Redirect;
/// use tower_sessions_auth::{AuthError, AuthSession};
///
/// async fn login(mut auth: AuthSession<User>, password: String) -> Result<Redirect, AuthError> {
///     match check_password(&password).await {
///         Some(user) => {
///             auth.login(&user).await?;
///             Ok(Redirect::to("/"))
///         }
///         None => Ok(Redirect::to("/login?failed")),
///     }
/// }
///
/// async fn logout(mut auth: AuthSession<User>) -> Result<Redirect, AuthError> {
///     auth.logout().await?;
///     Ok(Redirect::to("/login"))
/// }
/// ```
#[derive(Clone)]
pub struct AuthSession<U> {
    session: Session,
    context: Context,
    identity: Identity<U>,
    /// What the session claims: as the layer verified it, or as this
    /// handle last wrote it.
    claim: Option<Claim>,
    /// What the events record of this request; captured only when the
    /// layer has events.
    request: Option<RequestInfo>,
    /// What a sign-in records in the session registry; captured only when
    /// the layer has one.
    sign_in: Option<SignInDetails>,
    /// A signed-in session the layer refused because its device did not
    /// prove itself: the request is anonymous, but the session is not
    /// its to keep.
    unproven: Option<Unproven<U>>,
    /// Where a sign-in asks the layer to offer device binding.
    #[cfg(feature = "dbsc")]
    offer: Option<crate::dbsc::Offer>,
}

impl<U: SessionUser> AuthSession<U> {
    /// Returns the signed-in user, if any: as the layer found it, or as the
    /// last `login` or `logout` on this handle left it.
    pub fn user(&self) -> Option<&U> {
        self.identity.user()
    }

    /// Returns who this request is, as [`user`](Self::user) does.
    pub fn identity(&self) -> &Identity<U> {
        &self.identity
    }

    /// Returns the underlying tower-sessions session, for the application's
    /// own data.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Signs `user` in to this session.
    ///
    /// The session id always changes, also when the same user signs in again
    /// (ASVS 5.0 7.2.4). If the session belongs to another user, or to a
    /// user whose [device](crate#device-bound-sessions) this request did
    /// not prove, it is ended first (its registry entry too), so nothing of
    /// theirs carries over; an anonymous session keeps its data (a shopping
    /// cart, say). Call it only after the credentials were checked.
    ///
    /// With a [session registry](crate::registry::SessionRegistry), a new sign-in gets
    /// an entry recording the user agent and peer address (as configured)
    /// and the factors proved; the same user signing in again keeps theirs,
    /// with the factors of this sign-in.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store or the registry fails;
    /// [`AuthError::TooManySessions`] when the registry's limit refuses a
    /// new session (the request stays anonymous); [`AuthError::Hash`] when
    /// `user`'s credential is empty (the session is left as it was).
    pub async fn login(&mut self, user: &U) -> Result<(), AuthError> {
        self.sign_in(user, SignIn::new(), None).await
    }

    /// Signs `user` in, as [`login`](Self::login) does, with the
    /// [`SignIn`] options: the tier ("keep me signed in") and the label.
    ///
    /// A remembered sign-in lives by the layer's remembered
    /// [`Lifetimes`](crate::times::Lifetimes), and its cookie gets a `Max-Age`
    /// that ends at the session's absolute deadline; a browser-session
    /// sign-in's cookie has neither `Max-Age` nor `Expires`.
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// # impl tower_sessions_auth::SessionUser for User {
    /// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
    /// use tower_sessions_auth::{AuthError, AuthSession, SignIn};
    ///
    /// async fn signed_in(mut auth: AuthSession<User>, user: User, keep: bool) -> Result<(), AuthError> {
    ///     auth.login_with(&user, SignIn::new().remember(keep).label("password")).await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login).
    pub async fn login_with(&mut self, user: &U, options: SignIn) -> Result<(), AuthError> {
        self.sign_in(user, options, None).await
    }

    /// Records that the signed-in `user` just proved their credentials
    /// again: [`RecentAuth`](crate::RecentAuth) routes let them in for the
    /// layer's re-authentication window. Call it after checking the
    /// password (or another factor) on the confirmation page.
    ///
    /// The session id changes (ASVS 5.0 7.2.4: a new token on every
    /// authentication, re-authentication included); the registry entry,
    /// the tier and the sign-in time stay, so the absolute lifetime is not
    /// extended (sign in again with [`login`](Self::login) for that). If
    /// the session is not signed in as `user` (it ended meanwhile, or holds
    /// someone else), this is [`login`](Self::login).
    ///
    /// ```
    /// # #[derive(Clone)] struct User;
    /// # impl tower_sessions_auth::SessionUser for User {
    /// #     type Id = u64; fn id(&self) -> u64 { 1 } fn credential(&self) -> &[u8] { b"$argon2id$..." } }
    /// # fn password_matches(_: &User, _: &str) -> bool { true }
    /// use axum::response::Redirect;
    /// use tower_sessions_auth::{safe_next, AuthError, AuthSession};
    ///
    /// // Called by the confirmation page's POST handler with the form.
    /// async fn confirm(
    ///     mut auth: AuthSession<User>,
    ///     user: User,
    ///     password: &str,
    ///     next: &str,
    /// ) -> Result<Redirect, AuthError> {
    ///     if !password_matches(&user, password) {
    ///         return Ok(Redirect::to("/confirm?failed"));
    ///     }
    ///     auth.reauthenticate(&user).await?;
    ///     Ok(Redirect::to(safe_next(next).unwrap_or("/")))
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login).
    pub async fn reauthenticate(&mut self, user: &U) -> Result<(), AuthError> {
        self.reauthenticate_with(user, SignIn::new()).await
    }

    /// Records a new proof of this session's user, as
    /// [`reauthenticate`](Self::reauthenticate) does, with the factors
    /// and the credential of `options` (a step-up: a passkey or a one-time
    /// password after a password sign-in). The session keeps the factors
    /// it proved before, each with its last proof, and depends on the new
    /// credential too; its registry entry lists them all
    /// ([`SessionInfo::factors`]). The tier stays (`options.remember` is
    /// not read). The
    /// session id changes (ASVS 5.0 7.2.4). Another user, or an anonymous
    /// request, is signed in as [`login_with`](Self::login_with) does.
    ///
    /// # Errors
    ///
    /// As [`login_with`](Self::login_with).
    pub async fn reauthenticate_with(
        &mut self,
        user: &U,
        options: SignIn,
    ) -> Result<(), AuthError> {
        let same_user = self.user().is_some_and(|current| current.id() == user.id());
        let kept = self.claim.clone().filter(|_| same_user);
        match kept {
            Some(kept) => {
                let options = SignIn {
                    remember: kept.times.remembered,
                    ..options
                };
                self.sign_in(user, options, Some(kept)).await
            }
            None => self.sign_in(user, options, None).await,
        }
    }

    /// The factors this session's user proved, each with its last proof
    /// (a password at the sign-in for a session signed in without
    /// [`SignIn::factors`]); empty when anonymous. For an `amr` claim, or
    /// to show how a session was proved.
    #[must_use]
    pub fn factors(&self) -> Vec<(Factor, SystemTime)> {
        match (self.user(), &self.claim) {
            (Some(_), Some(claim)) => claim
                .proofs()
                .map(|proof| (proof.factor, from_unix_millis(proof.at)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// When this session's user last proved their credentials (sign-in or
    /// [`reauthenticate`](Self::reauthenticate)), to the millisecond;
    /// `None` when anonymous.
    #[must_use]
    pub fn authenticated_at(&self) -> Option<SystemTime> {
        self.user()?;
        let claim = self.claim.as_ref()?;
        Some(from_unix_millis(claim.times.authenticated))
    }

    /// Signs `user` in with `options`; `kept` holds the claim of this
    /// session when it is a re-authentication of its user.
    async fn sign_in(
        &mut self,
        user: &U,
        options: SignIn,
        kept: Option<Claim>,
    ) -> Result<(), AuthError> {
        // First, so that a user who cannot be signed in changes nothing.
        let now = self.context.times.clock.now_ms();
        let (proofs, bound) = proved(&self.context.keys, user, &options, kept.as_ref(), now)?;
        let auth_hash = self.context.keys.auth_hash_of(user, !bound.is_empty())?;
        let same_user = self.user().is_some_and(|current| current.id() == user.id());
        let kept_handle = if same_user { self.handle() } else { None };
        let times = match &kept {
            Some(kept) => RecordTimes {
                authenticated: now,
                active: now,
                ..kept.times
            },
            None => RecordTimes::signed_in_at(now, options.remember),
        };
        let someone_elses = match &self.identity {
            Identity::Authenticated(_) => !same_user,
            Identity::Anonymous => self.unproven.is_some(),
        };
        if someone_elses {
            self.forget_entry().await?;
            end_session(&self.session).await?;
            self.identity = Identity::Anonymous;
            self.claim = None;
            self.unproven = None;
        } else {
            self.session.cycle_id().await?;
        }
        let mut claim = Claim {
            auth_hash,
            epoch: user.session_epoch(),
            handle: None,
            times,
            proofs,
            bound,
        };
        if let Some(registry) = &self.context.registry {
            let key = user_key(&user.id())?;
            let factors: Vec<Factor> = claim.proofs().map(|proof| proof.factor).collect();
            claim.handle = match kept_handle {
                // The same user again keeps the entry, unless it was
                // revoked since this request began, and lists the factors
                // the session holds now. The old id is gone: announced, so
                // that no fast-path pass made for it signs anybody in.
                Some(handle) if registry.set_factors(&key, &handle, &factors).await? => {
                    registry.announce(key);
                    Some(handle)
                }
                _ => {
                    let mut details = self.sign_in.clone().unwrap_or_default();
                    details.label = options.label;
                    details.factors = factors;
                    match registry.register(&key, details).await? {
                        Some(handle) => Some(handle.as_str().to_owned()),
                        None => return Err(AuthError::TooManySessions),
                    }
                }
            };
        }
        self.store_claim(user, claim).await?;
        let kind = if kept.is_some() {
            AuthEventKind::Reauthenticated
        } else {
            #[cfg(feature = "dbsc")]
            if let Some(offer) = &self.offer {
                offer.ask();
            }
            AuthEventKind::SignedIn
        };
        self.emit(kind, user.id());
        Ok(())
    }

    /// Signs the user out: the session's data and its store record are
    /// deleted, the cookie removed, and its registry entry (if any) removed,
    /// so that a request of this session that was already under way cannot
    /// bring it back.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store or the registry fails.
    pub async fn logout(&mut self) -> Result<(), AuthError> {
        self.forget_entry().await?;
        end_session(&self.session).await?;
        self.claim = None;
        self.unproven = None;
        if let Identity::Authenticated(user) =
            std::mem::replace(&mut self.identity, Identity::Anonymous)
        {
            self.emit(AuthEventKind::SignedOut, user.id());
        }
        Ok(())
    }

    /// Keeps this session alive after `user`'s password (or session epoch)
    /// changed, while every other session of `user` ends on its next request.
    ///
    /// Call it after the new password hash is stored. The session id changes;
    /// its tier and times stay (it is no proof of the credentials: call
    /// [`reauthenticate`](Self::reauthenticate) too if the form checked the
    /// current password).
    /// If `user` is not the user of this session (an administrator changing
    /// someone else's password), only the id changes: the administrator stays
    /// signed in as themself. With a session registry, the other sessions'
    /// entries are removed at once, so that no list shows them.
    ///
    /// # Errors
    ///
    /// [`AuthError`] when the session store or the registry fails;
    /// [`AuthError::Hash`] when `user` is this session's user and their
    /// credential is empty (nothing is changed).
    pub async fn update_session_auth_hash(&mut self, user: &U) -> Result<(), AuthError> {
        let same_user = self.user().is_some_and(|current| current.id() == user.id());
        // Hashed first, so that a user who cannot be signed in changes nothing.
        let claim = match self.claim.clone() {
            Some(claim) if same_user => Some(Claim {
                auth_hash: self
                    .context
                    .keys
                    .auth_hash_of(user, !claim.bound.is_empty())?,
                epoch: user.session_epoch(),
                ..claim
            }),
            _ => None,
        };
        let handle = claim.as_ref().and_then(|claim| claim.handle.clone());
        let auth_hash = claim.as_ref().map(|claim| claim.auth_hash.clone());
        self.session.cycle_id().await?;
        if let Some(claim) = claim {
            self.store_claim(user, claim).await?;
        }
        if let Some(registry) = &self.context.registry {
            // Announced with this session's new hash, so that its own open
            // connections adopt it rather than end.
            let keep = handle.as_deref().zip(auth_hash.as_deref());
            registry
                .end_all(&user.id(), handle.as_deref(), keep)
                .await?;
        }
        Ok(())
    }

    /// Lists the signed-in user's sessions, most recently seen first, with
    /// this one marked [`current`](SessionInfo::current). Empty when the
    /// request is anonymous.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoRegistry`] without a session registry on the layer;
    /// [`AuthError`] when the registry fails.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, AuthError> {
        let registry = self.registry()?;
        let Some(user) = self.user() else {
            return Ok(Vec::new());
        };
        let current = self.handle().and_then(|handle| handle.parse().ok());
        let sessions = registry
            .list_marked(&user_key(&user.id())?, current.as_ref())
            .await?;
        Ok(sessions)
    }

    /// Revokes the signed-in user's session `handle`. This session's own
    /// handle signs it out. A handle that is not one of this user's
    /// sessions changes nothing: [`Revocation::NotFound`], also for an
    /// anonymous request.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoRegistry`] without a session registry on the layer;
    /// [`AuthError`] when the registry or the session store fails.
    pub async fn revoke_session(
        &mut self,
        handle: &SessionHandle,
    ) -> Result<Revocation, AuthError> {
        let registry = self.registry()?.clone();
        let Some(user) = self.user() else {
            return Ok(Revocation::NotFound);
        };
        if self.handle().as_deref() == Some(handle.as_str()) {
            self.logout().await?;
            return Ok(Revocation::SignedOut);
        }
        if !registry.end(&user.id(), handle.as_str()).await? {
            return Ok(Revocation::NotFound);
        }
        Ok(Revocation::Revoked)
    }

    /// Revokes every session of the signed-in user but this one; returns
    /// how many. This session keeps its id (nothing about it changed).
    ///
    /// # Errors
    ///
    /// [`AuthError::NoRegistry`] without a session registry on the layer;
    /// [`AuthError`] when the registry fails.
    pub async fn revoke_other_sessions(&self) -> Result<u64, AuthError> {
        let registry = self.registry()?;
        let Some(user) = self.user() else {
            return Ok(0);
        };
        let handle = self.handle();
        let revoked = registry
            .end_all(&user.id(), handle.as_deref(), None)
            .await?;
        Ok(revoked)
    }

    /// Revokes every session of the signed-in user, this one included (it is
    /// signed out); returns how many. For account deletion.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoRegistry`] without a session registry on the layer;
    /// [`AuthError`] when the registry or the session store fails.
    pub async fn revoke_all_sessions(&mut self) -> Result<u64, AuthError> {
        let registry = self.registry()?.clone();
        let Some(user) = self.user() else {
            return Ok(0);
        };
        let revoked = registry.end_all(&user.id(), None, None).await?;
        self.logout().await?;
        Ok(revoked)
    }

    fn registry(&self) -> Result<&SessionRegistry, AuthError> {
        self.context.registry.as_ref().ok_or(AuthError::NoRegistry)
    }

    /// This session's registry handle, as its record holds it.
    fn handle(&self) -> Option<String> {
        self.claim.as_ref()?.handle.clone()
    }

    /// Removes this session's registry entry, if it has one: the signed-in
    /// user's, or the one of a session refused for its device.
    async fn forget_entry(&self) -> Result<(), AuthError> {
        let Some(registry) = &self.context.registry else {
            return Ok(());
        };
        let held = match (&self.identity, &self.unproven) {
            (Identity::Authenticated(user), _) => Some((user.id(), self.handle())),
            (Identity::Anonymous, Some(unproven)) => {
                Some((unproven.user.id(), unproven.claim.handle.clone()))
            }
            (Identity::Anonymous, None) => None,
        };
        if let Some((user_id, Some(handle))) = held {
            registry.end(&user_id, &handle).await?;
        }
        Ok(())
    }

    /// Stores `claim`, which the caller made for `user` before it changed
    /// anything, and gives the cookie its tier's lifetime.
    async fn store_claim(&mut self, user: &U, claim: Claim) -> Result<(), AuthError> {
        let record = AuthRecord {
            user_id: user.id(),
            claim,
        };
        self.session.insert(SESSION_KEY, &record).await?;
        self.session
            .set_expiry(Some(record.claim.times.cookie_expiry(&self.context.times)));
        self.claim = Some(record.claim);
        self.identity = Identity::Authenticated(user.clone());
        Ok(())
    }

    fn emit(&self, kind: AuthEventKind, user_id: U::Id) {
        if let (Some(events), Some(request)) = (&self.context.events, &self.request) {
            events.emit(kind, Some(user_id), request.clone());
        }
    }
}

/// Prints whether the request is signed in, never the session: tower-sessions'
/// own `Debug` shows the session id (the cookie's value) and its data.
impl<U> fmt::Debug for AuthSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSession")
            .field("session", &format_args!("<redacted>"))
            .field("authenticated", &self.identity.is_authenticated())
            .finish_non_exhaustive()
    }
}

impl<U, S> FromRequestParts<S> for AuthSession<U>
where
    U: SessionUser,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = extension(parts, AuthRejection::MissingSessionLayer)?;
        let identity = identity(&parts.extensions)?;
        let Checked { context, claim, .. } = extension(parts, AuthRejection::MissingAuthLayer)?;
        let request = context.events.as_ref().map(|events| {
            events
                .capture()
                .request_info(&parts.headers, &parts.extensions)
        });
        let sign_in = context
            .registry
            .as_ref()
            .map(|registry| registry.sign_in_details(&parts.headers, &parts.extensions));
        Ok(Self {
            session,
            context,
            identity,
            claim,
            request,
            sign_in,
            unproven: parts.extensions.get::<Unproven<U>>().cloned(),
            #[cfg(feature = "dbsc")]
            offer: parts.extensions.get::<crate::dbsc::Offer>().cloned(),
        })
    }
}

/// The factors and credentials a sign-in (or, with `kept`, a
/// re-authentication of the same user) leaves the session with: the
/// factors of `options` proved `now` beside those `kept` proved before, and
/// the credential of `options` beside those `kept` depends on.
fn proved<U: SessionUser>(
    keys: &crate::AuthKeys,
    user: &U,
    options: &SignIn,
    kept: Option<&Claim>,
    now: UnixMillis,
) -> Result<(Proofs, Vec<Bound>), AuthError> {
    let mut bound = kept.map(|kept| kept.bound.clone()).unwrap_or_default();
    if let Some(id) = &options.credential {
        if id.is_empty() {
            return Err(HashError::UnknownCredential.into());
        }
        let version = user
            .credential_version(id)
            .ok_or(HashError::UnknownCredential)?;
        let credential = URL_SAFE_NO_PAD.encode(id);
        bound.retain(|old| old.credential != credential);
        bound.push(Bound {
            tag: keys.binding_tag(user, id, version)?,
            credential,
        });
    }
    let factors: &[Factor] = if options.factors.is_empty() {
        &[Factor::PWD]
    } else {
        &options.factors
    };
    let mut proofs: Vec<Proof> = kept
        .map(|kept| {
            kept.proofs()
                .filter(|old| !factors.contains(&old.factor))
                .collect()
        })
        .unwrap_or_default();
    proofs.extend(factors.iter().map(|&factor| Proof { factor, at: now }));
    proofs.sort_unstable_by_key(|proof| proof.factor);
    // A password alone, proved now: what a record without factors says.
    let password_only = proofs.len() == 1 && proofs[0].factor == Factor::PWD;
    Ok(((!password_only).then(|| proofs.into_boxed_slice()), bound))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower_sessions::{MemoryStore, Session};

    use super::*;
    use crate::{config::Config, error::HashError, hash::AuthKeys, test_support::User};

    fn handle_on(session: &Session) -> AuthSession<Account> {
        AuthSession {
            session: session.clone(),
            context: Arc::new(Config::new(AuthKeys::new([1_u8; 32]).unwrap(), "Account")),
            identity: Identity::Anonymous,
            claim: None,
            request: None,
            sign_in: None,
            unproven: None,
            #[cfg(feature = "dbsc")]
            offer: None,
        }
    }

    /// User 1 with a credential of the test's choosing.
    #[derive(Clone, Debug)]
    struct Account(&'static [u8]);

    impl SessionUser for Account {
        type Id = u8;
        fn id(&self) -> u8 {
            1
        }
        fn credential(&self) -> &[u8] {
            self.0
        }
    }

    #[tokio::test]
    async fn an_empty_credential_is_refused_and_changes_nothing() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let mut auth = handle_on(&session);
        let empty = Account(b"");
        let refused = auth.login(&empty).await.unwrap_err();
        assert!(
            matches!(refused, AuthError::Hash(HashError::EmptyCredential)),
            "{refused:?}"
        );
        assert!(auth.user().is_none());
        assert_eq!(session.get::<String>(SESSION_KEY).await.unwrap(), None);

        auth.login(&Account(b"$argon2id$v=19$m=19456,t=2,p=1$a$b"))
            .await
            .unwrap();
        session.save().await.unwrap();
        let (id, stored) = (
            session.id(),
            session.get::<String>(SESSION_KEY).await.unwrap(),
        );
        for refused in [
            auth.update_session_auth_hash(&empty).await.unwrap_err(),
            auth.login(&empty).await.unwrap_err(),
        ] {
            assert!(
                matches!(refused, AuthError::Hash(HashError::EmptyCredential)),
                "{refused:?}"
            );
            assert_eq!(session.id(), id, "the id is kept");
            assert_eq!(
                session.get::<String>(SESSION_KEY).await.unwrap(),
                stored,
                "the record is kept"
            );
            assert!(auth.user().is_some(), "still signed in");
        }
    }

    #[tokio::test]
    async fn debug_hides_the_session_id_and_data() {
        let session = Session::new(None, Arc::new(MemoryStore::default()), None);
        let keys = AuthKeys::new([1_u8; 32]).unwrap();
        let mut auth = AuthSession {
            session: session.clone(),
            context: Arc::new(Config::new(keys, "User")),
            identity: Identity::Anonymous,
            claim: None,
            request: None,
            sign_in: None,
            unproven: None,
            #[cfg(feature = "dbsc")]
            offer: None,
        };
        auth.login(&User).await.unwrap();
        session.save().await.unwrap();
        let id = session.id().unwrap();
        let stored: String = session.get(SESSION_KEY).await.unwrap().unwrap();

        let printed = format!("{auth:?}");
        assert!(printed.contains("authenticated: true"), "{printed}");
        // Both forms of the id: the cookie's, and the number inside `Id`.
        assert!(!printed.contains(&id.to_string()), "{printed}");
        assert!(!printed.contains(&id.0.to_string()), "{printed}");
        assert!(format!("{session:?}").contains(&id.0.to_string()));
        assert!(!printed.contains(&stored[..43]), "{printed}");
    }
}
