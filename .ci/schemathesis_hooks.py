"""Hooks for .ci/schemathesis.sh.

One hook, `filter_failure`, drops a "schema-valid request rejected" failure (ST202) only when
calltrail's answer is one of the refusals below. Each depends on something a JSON Schema
cannot say, so a generator that follows the schema makes such requests; the refusals are
documented `400`/`422` answers of their operations and are tested in tests/api/. Any other
failure, and any other answer to a schema-valid request, still fails the run.
"""

import json

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

# (parameter named in the problem's `errors`, words in its message): refusals of a
# combination of parameters, or of a value only the API can mint.
PARAMETER_REFUSALS = {
    # `until` must be later than `since`: a relation between two parameters.
    ("until", "must be later than since"),
    # A cursor is minted by the API; the schema gives its alphabet, but a random string of
    # that alphabet is not one.
    ("cursor", "not a cursor"),
    # `bucket` with `since`/`until` far apart: at most 10000 buckets, a relation again.
    ("bucket", "buckets"),
}

# Reprocessing answers for the stored body, not for the request: a delivery stored as
# rejected is refused again with the problem `/notify` gave it.
STORED_BODY_REFUSALS = {
    "urn:calltrail:problem:malformed-body",
    "urn:calltrail:problem:invalid-notification",
}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    if not isinstance(problem, dict):
        return True
    # The receiving endpoints read any content type as their source's format (JSON, or a
    # form for Twilio), as documented (`*/*`); for `*/*` schemathesis writes the object as
    # XML, which is neither.
    label = case.operation.label
    if label.startswith(("POST /notify", "POST /jambonz/notify")):
        content_type = response.request.headers.get("Content-Type", "")
        sent_json = "json" in content_type
        return sent_json or problem.get("type") != "urn:calltrail:problem:malformed-body"
    if label.startswith("POST /twilio/notify"):
        content_type = response.request.headers.get("Content-Type", "")
        sent_form = "x-www-form-urlencoded" in content_type
        return sent_form or problem.get("type") not in STORED_BODY_REFUSALS
    if case.operation.label == "POST /v1/deliveries/{id}/reprocess":
        return problem.get("type") not in STORED_BODY_REFUSALS
    # A key reused with another body is refused for what an earlier request did.
    if problem.get("type") == "urn:calltrail:problem:idempotency-key-reused":
        return False
    if problem.get("type") != "urn:calltrail:problem:invalid-parameter":
        return True
    for error in problem.get("errors") or []:
        for field, words in PARAMETER_REFUSALS:
            if error.get("field") == field and words in error.get("message", ""):
                return False
    return True
