//! The OpenAPI document: generated from the handlers (`utoipa_axum::routes!`), then completed
//! here with what every operation shares, so no operation can forget it: the error shape of
//! every refusal and the declaration of every `{parameter}` in its path.

use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "loopctl", description = "Control plane for AI-driven development loops"),
    components(schemas(loopctl_api::ErrorEnvelope, loopctl_api::ErrorCode))
)]
pub(crate) struct ApiDoc;

/// The document before the routes are merged into it.
pub(crate) fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Completes a merged document (the routes are only known after the merge).
pub(crate) fn complete(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations =
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete, &mut item.head];
        for operation in operations.into_iter().flatten() {
            declare_path_parameters(path, operation);
            declare_refusals(operation);
        }
    }
    doc
}

/// Every `{name}` of the path template is a required path parameter: a UUID, or where the API
/// takes names too (projects, skills, state), a reference.
fn declare_path_parameters(path: &str, operation: &mut Operation) {
    let names = path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'));
    for name in names {
        let description = match name {
            "name" => "the skill's name (`loopctl:review`)",
            "version" => "the skill version (a whole number)",
            "project_id" => "the project's UUID, slug or name",
            _ if path.starts_with("/api/v1/projects/{id}") => "the project's UUID (GET also takes its slug or name)",
            _ => "the record's UUID",
        };
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        let declared = parameters.iter_mut().find_map(|p| match p {
            RefOr::T(p) if p.name == name && p.parameter_in == ParameterIn::Path => Some(p),
            _ => None,
        });
        match declared {
            Some(parameter) => {
                parameter.description.get_or_insert_with(|| description.to_string());
            }
            None => {
                let parameter = ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some(description))
                    .schema(Some(Object::with_type(Type::String)))
                    .build();
                parameters.push(RefOr::T(parameter));
            }
        }
    }
}

/// Every refusal has one shape, `ErrorEnvelope`; 4XX for what the caller can fix, 5XX for
/// the server (503 with `Retry-After` when the database is busy).
fn declare_refusals(operation: &mut Operation) {
    for (status, description) in [("4XX", "refused: `error.code` says why (ErrorCode)"), ("5XX", "the server failed")] {
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
            )
            .build();
        operation.responses.responses.entry(status.to_string()).or_insert(response.into());
    }
}
