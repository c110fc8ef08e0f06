"""Hooks of .ci/schemathesis.sh: which refusals of a schema-valid request are not about its shape.

The OpenAPI document states every rule on a request's shape, so a schema-valid request refused
with 400 is a failure, except for the refusals below: each depends on what is stored (or on the
clock, or on two fields together, which JSON Schema cannot state), and SPEC 1 fixes its status at
400. Only those exact refusals are let through, recognised by code and text; any other 400 of a
schema-valid request still fails the run.
"""

import json

import schemathesis

# (SPEC 1 code, a part of the description): why it is not a shape refusal.
STATE_REFUSALS = [
    # The conversation was closed by an earlier step (SPEC 4: 400/6501).
    (6501, "is closed"),
    # The integration or its hub was created or updated as Paused by an earlier step (SPEC: 400/6502).
    (6502, "is paused"),
    # An update names another channel than the stored one (SPEC 3: "channelId cannot change").
    (206, "cannot change"),
    # Establishing on an integration that an earlier step created as Agent, Bot or System
    # (SPEC 4: only a Customer integration has conversations, any other type is 400/206).
    (206, "conversations are established on Customer integrations"),
    # A sender that an earlier step created in another hub, or of a type that cannot send here.
    (206, "the sender must be an integration of the conversation's hub"),
    (206, "cannot send to this conversation"),
    # A customer activity in a hub where no earlier step created an active Agent or Bot.
    (5501, "no active Agent or Bot integration"),
    # A secret's expiration must be in the future: the clock, not the shape.
    (206, "must be in the future"),
    # Mailgun's incomingAddress must be on its domain: a rule between two fields.
    (201, "must be an address on the domain"),
]


def _is_other_channels_configuration(case, error, errors) -> bool:
    """An update's configuration that fits another channel than the stored one.

    The document gives an update the configuration of any channel (an update need not name its
    channel); the stored integration's channel decides which one it must be. The shapes of every
    channel's configuration are checked exactly on create, where the body names its channel. A
    configuration that is not an object at all is let through only when the same answer says
    that the body named another channel than the stored one (the configuration that the body's
    channel allows, such as Slack's, which an update ignores, is then judged as the stored one's).
    """
    if case.operation.label != "PUT /api/v1/integrations/{integrationId}":
        return False
    description = error.get("description", "")
    if "'configuration." in description:
        return True
    other_channel = any(e.get("code") == 206 and "cannot change" in e.get("description", "") for e in errors)
    return other_channel and "'configuration'" in description


def _is_nul_in_a_property_name(error) -> bool:
    """A conversation property's name holding NUL: OpenAPI 3.0 has no `propertyNames` to say it
    (the document says it in words). A NUL in a value is stated by a pattern and not let through:
    its error names a path without NUL."""
    description = error.get("description", "")
    return error.get("code") == 201 and "must not contain NUL" in description and "\x00" in description


def _is_state_refusal(case, response) -> bool:
    if response.status_code != 400:
        return False
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all(
        any(e.get("code") == code and text in e.get("description", "") for code, text in STATE_REFUSALS)
        or _is_other_channels_configuration(case, e, errors)
        or _is_nul_in_a_property_name(e)
        for e in errors
    )


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep every failure but the rejection of positive data by the refusals above."""
    if failure.code == "ST202" and _is_state_refusal(case, response):
        return False
    return True
