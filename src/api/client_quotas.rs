//! DescribeClientQuotas and AlterClientQuotas (KIP-546): what `kafka-configs --entity-type
//! users/clients` shows and sets for quotas. Describe answers from this broker's image; Alter
//! is committed by the active controller (`metadata::client_quotas::plan_alter`) and answered
//! once this broker has applied it, so its quota managers enforce it from then on.

use kafka_protocol::messages::alter_client_quotas_response::{self, EntryData as AlterEntry};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{Ctx, Reply};
use crate::controller::{self, Command};
use crate::error::KafkaCode;
use crate::metadata::client_quotas::{self, QuotaAlteration, QuotaError};

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(super) fn describe(ctx: &Ctx, req: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    let components: Vec<(String, i8, Option<String>)> = req
        .components
        .iter()
        .map(|c| {
            (
                c.entity_type.to_string(),
                c.match_type,
                c._match.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    let image = ctx.broker.metadata.image();
    match client_quotas::describe(image.client_quotas(), &components, req.strict) {
        Ok(found) => {
            let entries = found
                .into_iter()
                .map(|(entity, values)| {
                    EntryData::default()
                        .with_entity(
                            entity
                                .into_iter()
                                .map(|(t, n)| {
                                    EntityData::default()
                                        .with_entity_type(text(t))
                                        .with_entity_name(n.map(text))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .into_iter()
                                .map(|(k, v)| ValueData::default().with_key(text(k)).with_value(v))
                                .collect(),
                        )
                })
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
        Err(e) => DescribeClientQuotasResponse::default()
            .with_error_code(ctx.code(&e))
            .with_error_message(Some(text(e.to_string()))),
    }
}

pub(super) fn alter(ctx: &Ctx, req: AlterClientQuotasRequest) -> Reply<AlterClientQuotasResponse> {
    let alterations: Vec<QuotaAlteration> = req
        .entries
        .iter()
        .map(|e| QuotaAlteration {
            entity: e
                .entity
                .iter()
                .map(|d| (d.entity_type.to_string(), d.entity_name.as_ref().map(|n| n.to_string())))
                .collect(),
            ops: e
                .ops
                .iter()
                .map(|o| (o.key.to_string(), (!o.remove).then_some(o.value)))
                .collect(),
        })
        .collect();
    let ctx = ctx.clone();
    Reply::Later(Box::pin(async move {
        let command = Command::AlterClientQuotas {
            alterations: alterations.clone(),
            validate_only: req.validate_only,
        };
        let results: Vec<Result<(), QuotaError>> = match ctx.broker.submit_published(command).await {
            Ok(controller::Reply::QuotasAltered { results, .. }) => results,
            Ok(other) => {
                let why = format!("unexpected controller reply {other:?}");
                return failed(&ctx, &alterations, ResponseError::UnknownServerError, why);
            }
            Err(e) => return failed(&ctx, &alterations, e.kafka_error(), e.to_string()),
        };
        let entries = alterations
            .iter()
            .zip(results)
            .map(|(a, result)| {
                let (code, message) = match result {
                    Ok(()) => (0, None),
                    Err(e) => (ctx.code(&e), Some(text(e.to_string()))),
                };
                entry(a).with_error_code(code).with_error_message(message)
            })
            .collect();
        AlterClientQuotasResponse::default().with_entries(entries)
    }))
}

fn entry(a: &QuotaAlteration) -> AlterEntry {
    AlterEntry::default().with_entity(
        a.entity
            .iter()
            .map(|(t, n)| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(text(t.clone()))
                    .with_entity_name(n.clone().map(text))
            })
            .collect(),
    )
}

/// The whole change failed (no controller, say): every entity gets the error.
fn failed(ctx: &Ctx, alterations: &[QuotaAlteration], e: ResponseError, why: String) -> AlterClientQuotasResponse {
    let code = ctx.count(e);
    let entries = alterations
        .iter()
        .map(|a| {
            entry(a)
                .with_error_code(code)
                .with_error_message(Some(text(why.clone())))
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
