//! The `/v1.1` routes in the OpenAPI document (tag `smooch`, scheme `smoochJwt`): served by the
//! raw endpoint of this module, so described here from SPEC 8's tables. `/v1` serves the same
//! routes (the tag's text says so) and is not listed twice.

use serde_json::{json, Value};

/// The tag's text.
pub const TAG: &str = "The Smooch v1 compatible API (SPEC 8): code written for Smooch's REST API \
(above all the npm client `smooch-core`: 8.x speaks `/v1.1`, 6.x `/v1`) runs against Switchboard \
with `serviceUrl` set to the server's root and new keys. `/v1/…` serves the same routes as the \
`/v1.1/…` listed here; only webhook defaults differ (`/v1`: `triggers: [\"message\"]`, \
`includeFullAppUser: true`). Apps are hubs, webhooks are System integrations with `format: \
\"smooch\"`, app users are customers, messages are activities. Bodies are read as JSON whatever \
the content type; a field Switchboard does not keep is dropped with `Warning: 299 switchboard \
\"ignored: …\"`, any other unknown field is 400. Errors answer `{ error: { code, description }, \
status, errors }`. Out-of-scope features (menus, templates, attachments, channel linking, \
deleting app users or messages, …) answer 501 `not_implemented` naming the feature.";

/// The scheme's text: HS256 shared secrets and what they imply.
pub const SCHEME: &str = "`Authorization: Bearer <JWT>`: HS256, `kid` = a key id of this API \
(`act_…` account keys: `switchboard smooch-key create` or `POST /api/v1/tenants/smooch-keys`; \
`app_…` app keys: `POST /v1.1/apps/{appId}/keys`), signed with the UTF-8 bytes of its secret. \
Scopes: `account` (alias `appMaker`, account keys: every app of the tenant), `app` (app keys: \
their app) and `appUser` with a `userId` (app keys: that app user). `exp` and `nbf` are enforced \
when present (60 s leeway). Security: the secrets are shared HMAC keys, stored encrypted (not \
hashed), so whoever holds the database and its encryption key can recover them; tokens without \
`exp` (smooch-core makes such tokens) stay valid while their key lives: set \
`SWITCHBOARD_SMOOCH_TOKEN_MAX_AGE` to refuse tokens older than that many seconds (`iat` then \
required), and rotate keys by creating a new one and deleting the old (its tokens are refused \
within 5 s on every node). EdDSA tokens of `/connect/token` are refused here, and these tokens \
everywhere else.";

fn error(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/SmoochError" } } } })
}

/// The error body of SPEC 8.2.
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error of the Smooch-compatible API: Smooch's `error` (read by smooch-core as `err.code` and `err.description`) beside SPEC 1's `status` and `errors`.",
        "required": ["error", "status", "errors"],
        "properties": {
            "error": { "type": "object", "required": ["code", "description"], "properties": {
                "code": { "type": "string", "enum": ["bad_request", "unauthorized", "forbidden", "not_found", "conflict", "payload_too_large", "too_many_requests", "internal_server_error", "not_implemented", "service_unavailable"] },
                "description": { "type": "string", "description": "Every description of `errors`, joined with `; `." },
            } },
            "status": { "type": "integer" },
            "errors": { "type": "array", "items": { "$ref": "#/components/schemas/ErrorItem" } },
        },
    })
}

/// The security scheme `smoochJwt`.
pub fn security_scheme() -> Value {
    json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": SCHEME })
}

struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    /// `None`: no body; else the fields.
    body: Option<&'static [&'static str]>,
    created: bool,
    /// The answer's top-level keys.
    answer: &'static [&'static str],
    paged: bool,
    /// Extra query parameters.
    query: &'static [&'static str],
}

const APP: &[&str] = &["name", "settings", "metadata"];
const INTEGRATION: &[&str] = &["type", "displayName"];
const WEBHOOK: &[&str] = &["target", "triggers", "includeClient", "includeFullAppUser"];
const APP_USER: &[&str] = &[
    "userId",
    "givenName",
    "surname",
    "email",
    "signedUpAt",
    "properties",
];
const MESSAGE: &[&str] = &[
    "role",
    "type",
    "text",
    "mediaUrl",
    "actions",
    "items",
    "coordinates",
    "location",
];

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    answer: &'static [&'static str],
) -> Op {
    Op {
        method,
        path,
        id,
        summary,
        body: None,
        created: false,
        answer,
        paged: false,
        query: &[],
    }
}

const fn with_body(mut o: Op, fields: &'static [&'static str], created: bool) -> Op {
    o.body = Some(fields);
    o.created = created;
    o
}

const fn paged(mut o: Op) -> Op {
    o.paged = true;
    o
}

const fn query(mut o: Op, q: &'static [&'static str]) -> Op {
    o.query = q;
    o
}

/// Every documented operation; the app-implicit ones (`/v1.1/webhooks`, `/v1.1/appusers`) are
/// for app and appUser tokens.
const OPS: &[Op] = &[
    with_body(
        op(
            "post",
            "/apps",
            "smooch.apps.create",
            "Create an app (a hub)",
            &["app"],
        ),
        APP,
        true,
    ),
    query(
        paged(op(
            "get",
            "/apps",
            "smooch.apps.list",
            "List apps",
            &["apps", "hasMore", "offset"],
        )),
        &["serviceAccountId"],
    ),
    op(
        "get",
        "/apps/{appId}",
        "smooch.apps.get",
        "Get an app",
        &["app"],
    ),
    with_body(
        op(
            "put",
            "/apps/{appId}",
            "smooch.apps.update",
            "Update an app",
            &["app"],
        ),
        APP,
        false,
    ),
    op(
        "delete",
        "/apps/{appId}",
        "smooch.apps.delete",
        "Delete an app with its integrations, keys, app users and webhooks",
        &[],
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/keys",
            "smooch.keys.create",
            "Create an app key",
            &["key"],
        ),
        &["name"],
        true,
    ),
    op(
        "get",
        "/apps/{appId}/keys",
        "smooch.keys.list",
        "List app keys",
        &["keys"],
    ),
    op(
        "get",
        "/apps/{appId}/keys/{keyId}",
        "smooch.keys.get",
        "Get an app key",
        &["key"],
    ),
    op(
        "get",
        "/apps/{appId}/keys/{keyId}/jwt",
        "smooch.keys.jwt",
        "Get an app-scope JWT signed by an app key",
        &["jwt"],
    ),
    op(
        "delete",
        "/apps/{appId}/keys/{keyId}",
        "smooch.keys.delete",
        "Delete an app key (its tokens are refused)",
        &[],
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/integrations",
            "smooch.integrations.create",
            "Create an integration",
            &["integration"],
        ),
        INTEGRATION,
        true,
    ),
    query(
        paged(op(
            "get",
            "/apps/{appId}/integrations",
            "smooch.integrations.list",
            "List integrations",
            &["integrations", "hasMore", "offset"],
        )),
        &["types"],
    ),
    op(
        "get",
        "/apps/{appId}/integrations/{integrationId}",
        "smooch.integrations.get",
        "Get an integration",
        &["integration"],
    ),
    with_body(
        op(
            "put",
            "/apps/{appId}/integrations/{integrationId}",
            "smooch.integrations.update",
            "Update an integration",
            &["integration"],
        ),
        INTEGRATION,
        false,
    ),
    op(
        "delete",
        "/apps/{appId}/integrations/{integrationId}",
        "smooch.integrations.delete",
        "Delete an integration",
        &[],
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/webhooks",
            "smooch.webhooks.create",
            "Create a webhook (a System integration)",
            &["webhook"],
        ),
        WEBHOOK,
        true,
    ),
    op(
        "get",
        "/apps/{appId}/webhooks",
        "smooch.webhooks.list",
        "List webhooks",
        &["webhooks"],
    ),
    op(
        "get",
        "/apps/{appId}/webhooks/{webhookId}",
        "smooch.webhooks.get",
        "Get a webhook",
        &["webhook"],
    ),
    with_body(
        op(
            "put",
            "/apps/{appId}/webhooks/{webhookId}",
            "smooch.webhooks.update",
            "Update a webhook",
            &["webhook"],
        ),
        WEBHOOK,
        false,
    ),
    op(
        "delete",
        "/apps/{appId}/webhooks/{webhookId}",
        "smooch.webhooks.delete",
        "Delete a webhook",
        &[],
    ),
    with_body(
        op(
            "post",
            "/webhooks",
            "smooch.appWebhooks.create",
            "Create a webhook of the token's app",
            &["webhook"],
        ),
        WEBHOOK,
        true,
    ),
    op(
        "get",
        "/webhooks",
        "smooch.appWebhooks.list",
        "List the webhooks of the token's app",
        &["webhooks"],
    ),
    op(
        "get",
        "/webhooks/{webhookId}",
        "smooch.appWebhooks.get",
        "Get a webhook of the token's app",
        &["webhook"],
    ),
    with_body(
        op(
            "put",
            "/webhooks/{webhookId}",
            "smooch.appWebhooks.update",
            "Update a webhook of the token's app",
            &["webhook"],
        ),
        WEBHOOK,
        false,
    ),
    op(
        "delete",
        "/webhooks/{webhookId}",
        "smooch.appWebhooks.delete",
        "Delete a webhook of the token's app",
        &[],
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/appusers",
            "smooch.appUsers.create",
            "Create an app user",
            &["appUser"],
        ),
        APP_USER,
        true,
    ),
    op(
        "get",
        "/apps/{appId}/appusers/{appUserId}",
        "smooch.appUsers.get",
        "Get an app user (by `_id` or `userId`)",
        &["appUser"],
    ),
    with_body(
        op(
            "put",
            "/apps/{appId}/appusers/{appUserId}",
            "smooch.appUsers.update",
            "Update an app user",
            &["appUser"],
        ),
        APP_USER,
        false,
    ),
    op(
        "get",
        "/apps/{appId}/appusers/{appUserId}/channels",
        "smooch.appUsers.channels",
        "The channels of an app user",
        &["channels"],
    ),
    op(
        "get",
        "/apps/{appId}/appusers/{appUserId}/conversation",
        "smooch.appUsers.conversation",
        "The conversation of an app user, with its messages",
        &["conversation", "messages"],
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/appusers/{appUserId}/conversation/read",
            "smooch.appUsers.read",
            "Mark the conversation read (no effect: unreadCount is always 0)",
            &["conversation"],
        ),
        &[],
        false,
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/appusers/{appUserId}/conversation/activity",
            "smooch.appUsers.activity",
            "Send typing or read activity as the business",
            &["conversation"],
        ),
        &["role", "type"],
        false,
    ),
    with_body(
        op(
            "post",
            "/apps/{appId}/appusers/{appUserId}/messages",
            "smooch.messages.create",
            "Send a message as the business (appMaker) or as the app user (appUser)",
            &["message", "conversation"],
        ),
        MESSAGE,
        true,
    ),
    query(
        op(
            "get",
            "/apps/{appId}/appusers/{appUserId}/messages",
            "smooch.messages.list",
            "List messages (at most 100; before/after in Unix seconds)",
            &["conversation", "messages"],
        ),
        &["before", "after"],
    ),
    with_body(
        op(
            "post",
            "/appusers",
            "smooch.appUsersOfApp.create",
            "Create an app user of the token's app",
            &["appUser"],
        ),
        APP_USER,
        true,
    ),
    op(
        "get",
        "/appusers/{appUserId}",
        "smooch.appUsersOfApp.get",
        "Get an app user of the token's app",
        &["appUser"],
    ),
    with_body(
        op(
            "put",
            "/appusers/{appUserId}",
            "smooch.appUsersOfApp.update",
            "Update an app user of the token's app",
            &["appUser"],
        ),
        APP_USER,
        false,
    ),
    op(
        "get",
        "/appusers/{appUserId}/channels",
        "smooch.appUsersOfApp.channels",
        "The channels of an app user of the token's app",
        &["channels"],
    ),
    op(
        "get",
        "/appusers/{appUserId}/conversation",
        "smooch.appUsersOfApp.conversation",
        "The conversation of an app user of the token's app",
        &["conversation", "messages"],
    ),
    with_body(
        op(
            "post",
            "/appusers/{appUserId}/conversation/read",
            "smooch.appUsersOfApp.read",
            "Mark the conversation read",
            &["conversation"],
        ),
        &[],
        false,
    ),
    with_body(
        op(
            "post",
            "/appusers/{appUserId}/conversation/activity",
            "smooch.appUsersOfApp.activity",
            "Send typing or read activity as the business",
            &["conversation"],
        ),
        &["role", "type"],
        false,
    ),
    with_body(
        op(
            "post",
            "/appusers/{appUserId}/messages",
            "smooch.messagesOfApp.create",
            "Send a message in the token's app",
            &["message", "conversation"],
        ),
        MESSAGE,
        true,
    ),
    query(
        op(
            "get",
            "/appusers/{appUserId}/messages",
            "smooch.messagesOfApp.list",
            "List messages in the token's app",
            &["conversation", "messages"],
        ),
        &["before", "after"],
    ),
];

/// The documented paths: `(path, method, operation)`.
pub fn operations() -> Vec<(String, &'static str, Value)> {
    OPS.iter()
        .map(|o| {
            let mut params: Vec<Value> = o
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|name| {
                    json!({ "name": name, "in": "path", "required": true,
                        "description": "An id; one naming nothing the token can reach answers 404, whatever its shape.",
                        "schema": { "type": "string" } })
                })
                .collect();
            if o.paged {
                params.push(json!({ "name": "limit", "in": "query", "description": "1 to 100 (default 25).", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }));
                params.push(json!({ "name": "offset", "in": "query", "description": "From 0 (default 0).", "schema": { "type": "integer", "minimum": 0 } }));
            }
            for q in o.query {
                params.push(json!({ "name": q, "in": "query", "schema": { "type": "string" } }));
            }
            let properties: serde_json::Map<String, Value> = o
                .answer
                .iter()
                .map(|k| ((*k).to_owned(), json!({})))
                .collect();
            let ok_status = if o.created { "201" } else { "200" };
            let mut responses = json!({
                ok_status: { "description": if o.created { "Created." } else { "Done." },
                    "content": { "application/json": { "schema": {
                        "type": "object", "required": o.answer, "properties": properties } } } },
                "400": error("A body that is not a JSON object (300), an unknown field (303), a wrong type (302), a missing field (301), a value out of range (206)."),
                "401": error("No token, or a token that is not an HS256 JWT of a live key with a valid scope (102)."),
                "403": error("The token's scope may not use this route or app user (101)."),
                "404": error("No such route, or an id naming nothing the token can reach (105)."),
                "413": error("The body is larger than 1 MiB."),
                "429": error("Past the key's rate limit, with Retry-After."),
                "501": error("A feature SPEC 8.10 puts out of scope (107)."),
            });
            if o.body.is_some() && o.method != "get" {
                responses["409"] = error("A name, `displayName` or `userId` already taken (106).");
                if o.path.contains("integrations") {
                    responses["503"] = error("The provider is unreachable while the integration is provisioned (100).");
                }
            }
            let mut operation = json!({
                "tags": ["smooch"],
                "summary": o.summary,
                "operationId": o.id,
                "security": [ { "smoochJwt": [] } ],
                "parameters": params,
                "responses": responses,
            });
            if let Some(fields) = o.body {
                let props: serde_json::Map<String, Value> =
                    fields.iter().map(|k| ((*k).to_owned(), json!({}))).collect();
                operation["requestBody"] = json!({ "content": { "application/json": { "schema": {
                    "type": "object", "properties": props,
                    "description": "Read as JSON whatever the content type; an absent or empty body is `{}`. Channel types take their own fields (SPEC 8.6)." } } } });
            }
            (format!("/v1.1{}", o.path), o.method, operation)
        })
        .collect()
}
