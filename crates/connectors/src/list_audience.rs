//! One implementation of [`AudienceDestination`] for the email-list platforms (Klaviyo lists, SendGrid
//! lists, Mailchimp static segments), which share its whole shape: the audience is a named list found by
//! paging or created, members go in capped chunks keyed by email, nobody needs a minimum audience, the
//! channel is email, and where adds are remote import jobs only adds are (removals are synchronous).
//! Each platform implements the small [`ListPlatform`] trait with what really differs (its calls, its
//! id check, its limits); the blanket impl below turns that into the destination the engine sees.
//! [`Keyed`] is their shared bookkeeping of one chunk: members grouped by the email (or phone) key the
//! platform's replies name; [`poll_import`] their wait for an import job.

use crate::common;
use crate::error::ConnectorError;
use crate::http::{HttpKit, HttpStatsSnapshot};
use crate::model::{
    AudienceRef, BatchOutcome, Channel, Contact, DestinationLimits, JobAction, NoIdentifier,
    PreparedMember, Rejection, SubmittedJob,
};
use crate::traits::AudienceDestination;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// What an email-list platform supplies so [`AudienceDestination`] can be written once for all of them.
#[async_trait]
pub(crate) trait ListPlatform: Send + Sync {
    /// Platform kind, as in the config's `kind`.
    const KIND: &'static str;
    /// What the platform calls the audience, for logs ("list", "static segment").
    const AUDIENCE: &'static str;
    /// Most members per call (and per import job), which is also the engine's batch size.
    const MAX_BATCH: usize;
    /// Whether adds run as remote import jobs ([`Self::submit_add`] / [`Self::finish_add`]).
    const JOB_ADDS: bool;
    /// Pacing reported to the engine when the config sets no `requests_per_second`.
    const DEFAULT_RPS: f64 = 10.0;
    /// What an audience id is called in errors ("Klaviyo list id").
    const ID_NAME: &'static str;

    /// The destination's HTTP kit (its name, pacing and counters).
    fn kit(&self) -> &HttpKit;
    /// Configured destination name (the kit's).
    fn destination(&self) -> &str {
        self.kit().destination()
    }
    /// The platform's pure mapping of a contact.
    fn prepare_member(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier>;
    /// Whether `c` may appear in an audience id (ids go into URL paths, so nothing else is let through).
    fn id_char(c: char) -> bool;
    /// The audience's id, trimmed, when it is non-empty and made of [`Self::id_char`]s only.
    fn checked_id<'a>(&self, audience: &'a AudienceRef) -> Result<&'a str, ConnectorError> {
        let id = audience.remote_id.trim();
        if id.is_empty() || !id.chars().all(Self::id_char) {
            return Err(ConnectorError::Invalid {
                destination: self.destination().to_string(),
                message: format!("`{}` is not a {}", audience.remote_id, Self::ID_NAME),
            });
        }
        Ok(id)
    }

    /// The id of the audience called `name`, paging through all of them, or `None`.
    async fn find(&self, name: &str) -> Result<Option<String>, ConnectorError>;
    /// Creates the audience called `name` and returns its id.
    async fn create(&self, name: &str) -> Result<String, ConnectorError>;
    /// Where `audience`'s members live: by default its [checked id](Self::checked_id); a platform that
    /// addresses members by URL builds it from that id. An id that is not the platform's shape is refused
    /// before any request.
    fn members_at(&self, audience: &AudienceRef) -> Result<String, ConnectorError> {
        self.checked_id(audience).map(str::to_string)
    }
    /// The refusal of a job of more than [`Self::MAX_BATCH`] members, in the platform's words.
    fn job_too_large(&self) -> String {
        format!("a job takes at most {} members", Self::MAX_BATCH)
    }

    /// Adds one chunk (≤ [`Self::MAX_BATCH`]) and waits for the result. The default, for job
    /// platforms, submits the import job and waits for it.
    async fn add_chunk(
        &self,
        at: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let mut outcome = common::submit_and_await(
            members,
            |m| self.submit_add(at, m),
            |job, held| async move { self.finish_add(&job, &held).await },
        )
        .await?;
        outcome.accepted = members.len() - outcome.rejected.len();
        Ok(outcome)
    }
    /// Removes one chunk (≤ [`Self::MAX_BATCH`]).
    async fn remove_chunk(
        &self,
        at: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError>;

    /// Submits an import job adding `members` and returns without waiting. Only called when
    /// [`Self::JOB_ADDS`]; the default refuses.
    async fn submit_add(
        &self,
        _at: &str,
        _members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.destination().to_string(),
            operation: "add as a job",
        })
    }
    /// Waits for an import job and attributes what it refused to `members`. Only called when
    /// [`Self::JOB_ADDS`]; the default refuses.
    async fn finish_add(
        &self,
        _job_id: &str,
        _members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.destination().to_string(),
            operation: "add as a job",
        })
    }
}

/// Only adds are jobs, and a job holds at most one batch. A platform without jobs refuses `call` the
/// way [`AudienceDestination`]'s defaults do.
fn check_job<P: ListPlatform>(
    p: &P,
    call: &'static str,
    action: JobAction,
    rows: usize,
) -> Result<(), ConnectorError> {
    let refuse = |operation| ConnectorError::Unsupported {
        destination: p.destination().to_string(),
        operation,
    };
    if !P::JOB_ADDS {
        return Err(refuse(call));
    }
    if action != JobAction::Add {
        return Err(refuse("remove as a job"));
    }
    if rows > P::MAX_BATCH {
        return Err(ConnectorError::Invalid {
            destination: p.destination().to_string(),
            message: p.job_too_large(),
        });
    }
    Ok(())
}

#[async_trait]
impl<P: ListPlatform> AudienceDestination for P {
    fn name(&self) -> &str {
        self.destination()
    }

    fn kind(&self) -> &'static str {
        P::KIND
    }

    fn limits(&self) -> DestinationLimits {
        DestinationLimits {
            max_batch: P::MAX_BATCH,
            min_audience_size: 0,
            requests_per_second: self.kit().requests_per_second().unwrap_or(P::DEFAULT_RPS),
        }
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn prepare(&self, contact: &Contact) -> Result<PreparedMember, NoIdentifier> {
        self.prepare_member(contact)
    }

    async fn find_or_create_audience(
        &self,
        name: &str,
        _description: &str,
    ) -> Result<AudienceRef, ConnectorError> {
        common::find_or_create(
            self.destination(),
            name,
            P::AUDIENCE,
            self.find(name),
            self.create(name),
        )
        .await
    }

    async fn add_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let at = self.members_at(audience)?;
        common::in_chunks(members, P::MAX_BATCH, |chunk| self.add_chunk(&at, chunk)).await
    }

    async fn remove_members(
        &self,
        audience: &AudienceRef,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        let at = self.members_at(audience)?;
        common::in_chunks(members, P::MAX_BATCH, |chunk| self.remove_chunk(&at, chunk)).await
    }

    /// Adds are import jobs where the platform has them; removals are synchronous.
    fn remote_job(&self, action: JobAction) -> bool {
        P::JOB_ADDS && action == JobAction::Add
    }

    async fn submit_job(
        &self,
        audience: &AudienceRef,
        action: JobAction,
        members: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        check_job(self, "submit_job", action, members.len())?;
        self.submit_add(&self.members_at(audience)?, members).await
    }

    async fn await_job(
        &self,
        _audience: &AudienceRef,
        action: JobAction,
        job_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        check_job(self, "await_job", action, members.len())?;
        self.finish_add(job_id, members).await
    }

    fn http_stats(&self) -> Option<HttpStatsSnapshot> {
        Some(self.kit().stats())
    }
}

/// One chunk's members grouped by the key the platform answers with (an email; for Klaviyo also
/// `phone:<E.164>`). Several customers can share a key, so what a reply says about a key concerns all
/// of them, and each customer is rejected at most once.
pub(crate) struct Keyed<'a> {
    /// Distinct keys in first-seen order: what is sent.
    pub(crate) keys: Vec<String>,
    owners: HashMap<String, Vec<&'a PreparedMember>>,
}

impl<'a> Keyed<'a> {
    /// Groups `members` by `key_of(payload)`; a member whose stored payload yields no key is rejected
    /// with `no_key` (the payload predates a mapping change, or is corrupt) and not sent.
    pub(crate) fn group(
        members: &'a [PreparedMember],
        outcome: &mut BatchOutcome,
        key_of: impl Fn(&Value) -> Option<String>,
        no_key: &str,
    ) -> Self {
        let mut chunk = Keyed {
            keys: Vec::new(),
            owners: HashMap::new(),
        };
        for m in members {
            match key_of(&m.payload) {
                Some(k) => {
                    let owners = chunk.owners.entry(k.clone()).or_default();
                    if owners.is_empty() {
                        chunk.keys.push(k);
                    }
                    owners.push(m);
                }
                None => outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: no_key.to_string(),
                }),
            }
        }
        chunk
    }

    /// The first member with `key`, whose payload stands for all of them.
    pub(crate) fn first(&self, key: &str) -> Option<&'a PreparedMember> {
        self.owners.get(key).and_then(|o| o.first()).copied()
    }

    /// Rejects every customer behind `key` (as the platform spelled it: trimmed and lower-cased before
    /// the lookup) with `reason`; `false` when no member of the chunk has that key.
    pub(crate) fn reject(&self, key: &str, reason: &str, outcome: &mut BatchOutcome) -> bool {
        let Some(owners) = self.owners.get(&key.trim().to_lowercase()) else {
            return false;
        };
        for m in owners {
            if !outcome
                .rejected
                .iter()
                .any(|r| r.customer_id == m.customer_id)
            {
                outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: reason.to_string(),
                });
            }
        }
        true
    }
}

/// What one poll of an import job found.
pub(crate) enum JobPoll<T> {
    /// The job finished; its result.
    Done(T),
    /// Still running, with the platform's status word for the timeout message.
    Running(String),
}

/// Polls an import job with `poll` every `interval` until it is done. Still running after `timeout` is a
/// transient [`ConnectorError::Transport`], so the engine keeps the batch pending and it is sent again
/// (the imports are idempotent upserts); an error from `poll` (a cancelled job, a bad reply) ends it.
pub(crate) async fn poll_import<T, F, Fut>(
    destination: &str,
    job_id: &str,
    interval: Duration,
    timeout: Duration,
    mut poll: F,
) -> Result<T, ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<JobPoll<T>, ConnectorError>>,
{
    let started = tokio::time::Instant::now();
    let mut polls = 0u32;
    loop {
        polls += 1;
        match poll().await? {
            JobPoll::Done(result) => return Ok(result),
            JobPoll::Running(status) => {
                if started.elapsed() >= timeout {
                    return Err(ConnectorError::Transport {
                        destination: destination.to_string(),
                        operation: "poll import job".into(),
                        attempts: polls,
                        message: format!(
                            "import job {job_id} still `{status}` after {}s; the batch will be sent again",
                            timeout.as_secs()
                        ),
                    });
                }
                tokio::time::sleep(interval).await;
            }
        }
    }
}
