//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): what `kafka-configs
//! --entity-type users` shows and sets for SCRAM. Describe answers from this broker's image, as
//! Kafka's brokers do from their metadata cache; Alter is committed by the active controller
//! (`metadata::scram_credentials::plan_alter`) and answered once this broker has applied it, so
//! the user can authenticate here at once.
//!
//! The client sends a salted password (never the password); this handler turns it into the
//! stored and server keys before forwarding, so the salted password goes no further.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::controller::{self, Command};
use crate::error::KafkaCode;
use crate::metadata::scram_credentials::{self, AlterResult, ScramDeletion, ScramUpsertion};
use crate::security::scram::ScramMechanism;

fn text(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

pub(super) fn describe(ctx: &Ctx, req: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let users: Option<Vec<String>> = req
        .users
        .map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    let image = ctx.broker.metadata.image();
    let results = scram_credentials::describe(image.scram_credentials(), users.as_deref())
        .into_iter()
        .map(|(user, result)| {
            let base = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match result {
                Ok(infos) => base.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism)
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err(e) => base
                    .with_error_code(ctx.code(&e))
                    .with_error_message(text(e.to_string())),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

pub(super) fn alter(ctx: &Ctx, req: AlterUserScramCredentialsRequest) -> Reply<AlterUserScramCredentialsResponse> {
    let deletions: Vec<ScramDeletion> = req
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            name: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<ScramUpsertion> = req
        .upsertions
        .iter()
        .map(|u| {
            // An unknown mechanism has no keys; the controller refuses it by its code.
            let keys = ScramMechanism::from_type_code(u.mechanism)
                .map(|m| m.credential(&u.salt, &u.salted_password, u.iterations));
            ScramUpsertion {
                name: u.name.to_string(),
                mechanism: u.mechanism,
                iterations: u.iterations,
                salt: u.salt.to_vec(),
                stored_key: keys.as_ref().map(|k| k.stored_key.clone()).unwrap_or_default(),
                server_key: keys.map(|k| k.server_key).unwrap_or_default(),
            }
        })
        .collect();
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let names: Vec<String> = deletions
            .iter()
            .map(|d| d.name.clone())
            .chain(upsertions.iter().map(|u| u.name.clone()))
            .collect();
        let command = Command::AlterScramCredentials { deletions, upsertions };
        let results: Vec<AlterResult> = match ctx.broker.submit_published(command).await {
            Ok(controller::Reply::ScramAltered { results, .. }) => results,
            Ok(other) => {
                let why = format!("unexpected controller reply {other:?}");
                return failed(&ctx, names, ResponseError::UnknownServerError, why);
            }
            Err(e) => return failed(&ctx, names, e.kafka_error(), e.to_string()),
        };
        let results = results
            .into_iter()
            .map(|(user, result)| {
                let (code, message) = match result {
                    Ok(()) => (0, None),
                    Err(e) => (ctx.code(&e), text(e.to_string())),
                };
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        AlterUserScramCredentialsResponse::default().with_results(results)
    }))
}

/// The whole change failed (no controller, say): every user named gets the error once.
fn failed(ctx: &Ctx, mut names: Vec<String>, e: ResponseError, why: String) -> AlterUserScramCredentialsResponse {
    names.sort();
    names.dedup();
    let code = ctx.count(e);
    let results = names
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user))
                .with_error_code(code)
                .with_error_message(text(why.clone()))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
