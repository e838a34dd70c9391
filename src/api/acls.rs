//! CreateAcls, DescribeAcls, DeleteAcls: Kafka's ACL administration (`kafka-acls`). Creating
//! and deleting go to the active controller as AccessControlEntry records (any broker
//! forwards); describing reads this broker's image, as Kafka's brokers answer from their own
//! authorizer. Without an authorizer all three answer SECURITY_DISABLED, as Kafka does.
//!
//! May call: `Broker::create_acls`/`delete_acls`, the image's ACL table, `authz` for the
//! types. The checks of an ACL's content are `authz::acl`'s.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Ctx;
use crate::authz::plan::describe_acls as matching;
use crate::authz::{Acl, AclError, AclFilter, Operation, PatternType, Permission, ResourceType};
use crate::metadata::MetadataError;

const SECURITY_DISABLED: &str = "No Authorizer is configured.";

/// Why an item of an ACL request is answered with an error before reaching the controller.
fn refusal(ctx: &Ctx, op: Operation) -> Option<Answer> {
    let access = ctx.access();
    if !access.enabled() {
        let code = ctx.count(ResponseError::SecurityDisabled);
        return Some((code, Some(StrBytes::from_static_str(SECURITY_DISABLED))));
    }
    if !access.cluster(op) {
        return Some((ctx.count(ResponseError::ClusterAuthorizationFailed), None));
    }
    None
}

fn invalid(ctx: &Ctx, e: &AclError) -> Answer {
    (ctx.code(e), Some(StrBytes::from_string(e.to_string())))
}

fn decoded<T>(code: i8, what: &str, from: fn(i8) -> Option<T>) -> Result<T, AclError> {
    from(code).ok_or_else(|| AclError::Invalid(format!("Unknown {what} {code}")))
}

fn acl_of(c: &AclCreation) -> Result<Acl, AclError> {
    Ok(Acl {
        resource_type: decoded(c.resource_type, "resource type", ResourceType::from_code)?,
        resource_name: c.resource_name.to_string(),
        pattern_type: decoded(c.resource_pattern_type, "pattern type", PatternType::from_code)?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: decoded(c.operation, "operation", Operation::from_code)?,
        permission: decoded(c.permission_type, "permission type", Permission::from_code)?,
    })
}

/// A filter from its wire fields (DescribeAcls' request and DeleteAcls' filters share them).
#[allow(clippy::too_many_arguments)]
fn filter_of(
    resource_type: i8,
    resource_name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, AclError> {
    Ok(AclFilter {
        resource_type: decoded(resource_type, "resource type", ResourceType::from_code)?,
        resource_name: resource_name.as_ref().map(|s| s.to_string()),
        pattern_type: decoded(pattern_type, "pattern type", PatternType::from_code)?,
        principal: principal.as_ref().map(|s| s.to_string()),
        host: host.as_ref().map(|s| s.to_string()),
        operation: decoded(operation, "operation", Operation::from_code)?,
        permission: decoded(permission, "permission type", Permission::from_code)?,
    })
}

fn delete_filter(f: &DeleteAclsFilter) -> Result<AclFilter, AclError> {
    filter_of(
        f.resource_type_filter,
        &f.resource_name_filter,
        f.pattern_type_filter,
        &f.principal_filter,
        &f.host_filter,
        f.operation,
        f.permission_type,
    )
}

fn creation_result((code, message): Answer) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code)
        .with_error_message(message)
}

/// An item's answer: 0 and no message, or an error code and its message.
type Answer = (i16, Option<StrBytes>);

/// Sends the items that decoded to the controller with `run` and gives each item of the
/// request its outcome, in request order: one that did not decode keeps its error, and all
/// answer the same error when the controller could not be reached.
fn through_controller<I: Clone, O: Default>(
    ctx: &Ctx,
    parsed: Vec<Result<I, AclError>>,
    run: impl FnOnce(Vec<I>) -> Result<Vec<Result<O, AclError>>, MetadataError>,
) -> Vec<Result<O, Answer>> {
    let valid: Vec<I> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut outcomes = match run(valid) {
        Ok(outcomes) => outcomes.into_iter(),
        Err(e) => {
            let failed = (ctx.code(&e), Some(StrBytes::from_string(e.to_string())));
            return parsed.iter().map(|_| Err(failed.clone())).collect();
        }
    };
    parsed
        .into_iter()
        .map(|p| {
            let outcome = match p {
                Err(e) => Err(e),
                Ok(_) => outcomes.next().unwrap_or_else(|| Ok(O::default())),
            };
            outcome.map_err(|e| invalid(ctx, &e))
        })
        .collect()
}

/// CreateAcls (ALTER on the cluster). Blocking: waits for the controller.
pub(super) fn create_acls(ctx: &Ctx, req: CreateAclsRequest) -> CreateAclsResponse {
    if let Some(refused) = refusal(ctx, Operation::Alter) {
        let results = req.creations.iter().map(|_| creation_result(refused.clone())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed = req.creations.iter().map(acl_of).collect();
    let results = through_controller(ctx, parsed, |acls| ctx.broker.create_acls(acls))
        .into_iter()
        .map(|outcome| creation_result(outcome.err().unwrap_or((0, None))))
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// DescribeAcls (DESCRIBE on the cluster), from this broker's image, grouped by resource
/// pattern as Kafka answers.
pub(super) fn describe_acls(ctx: &Ctx, req: DescribeAclsRequest) -> DescribeAclsResponse {
    if let Some((code, message)) = refusal(ctx, Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(message);
    }
    let filter = filter_of(
        req.resource_type_filter,
        &req.resource_name_filter,
        req.pattern_type_filter,
        &req.principal_filter,
        &req.host_filter,
        req.operation,
        req.permission_type,
    );
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            let (code, message) = invalid(ctx, &e);
            return DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(message);
        }
    };
    let mut acls = matching(ctx.broker.metadata.image().acls(), &filter);
    acls.sort();
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in acls {
        let entry = AclDescription::default()
            .with_principal(StrBytes::from_string(acl.principal.clone()))
            .with_host(StrBytes::from_string(acl.host.clone()))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        let same = resources.last().is_some_and(|r| {
            r.resource_type == acl.resource_type.code()
                && r.resource_name.as_str() == acl.resource_name
                && r.pattern_type == acl.pattern_type.code()
        });
        match resources.last_mut() {
            Some(last) if same => last.acls.push(entry),
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_acls(vec![entry]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

fn filter_result((code, message): Answer) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(code)
        .with_error_message(message)
}

fn matching_acl(acl: &Acl) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(acl.resource_type.code())
        .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
        .with_pattern_type(acl.pattern_type.code())
        .with_principal(StrBytes::from_string(acl.principal.clone()))
        .with_host(StrBytes::from_string(acl.host.clone()))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}

/// DeleteAcls (ALTER on the cluster). Blocking: waits for the controller.
pub(super) fn delete_acls(ctx: &Ctx, req: DeleteAclsRequest) -> DeleteAclsResponse {
    if let Some(refused) = refusal(ctx, Operation::Alter) {
        let results = req.filters.iter().map(|_| filter_result(refused.clone())).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed = req.filters.iter().map(delete_filter).collect();
    let results = through_controller(ctx, parsed, |filters| ctx.broker.delete_acls(filters))
        .into_iter()
        .map(|outcome| match outcome {
            Ok(acls) => filter_result((0, None)).with_matching_acls(acls.iter().map(matching_acl).collect()),
            Err(answer) => filter_result(answer),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
