"""Who may do what on the sandbox's S3: the operator's identity, the roles a Nuxeo server
assumes for each batch, and the session policy of each batch's credentials (SeaweedFS's IAM
configuration, in AWS's own policy language)."""

from __future__ import annotations

import base64
import secrets
from enum import StrEnum
from typing import Any

ACCOUNT = "arn:aws:iam::000000000000"
ROLE_NAME = "NuxeoDirectUpload"
ROLE_ARN = f"{ACCOUNT}:role/{ROLE_NAME}"
PUT_ONLY_ROLE_NAME = "NuxeoDirectUploadPutOnly"
PUT_ONLY_ROLE_ARN = f"{ACCOUNT}:role/{PUT_ONLY_ROLE_NAME}"
OPERATOR_NAME = "operator"
# What AWS refuses to a session whose policy grants only s3:PutObject, but SeaweedFS 4.48 lets
# through (it denies HeadObject, GetObject and ListMultipartUploads by itself).
HOUSEKEEPING_ACTIONS = ["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]


class AccessPolicy(StrEnum):
    """What each batch's temporary credentials may do.

    STOCK is the session policy of a stock Nuxeo server (`policyTemplate`): `s3:PutObject` on the
    whole bucket, which covers a single PUT and the create, part and complete calls of a
    multipart upload, and nothing else. PERMISSIVE also grants GetObject, ListParts and
    AbortMultipartUpload, on the shared key prefix.
    """

    STOCK = "stock"
    PERMISSIVE = "permissive"


def iam_config(*, bucket: str, access_key_id: str, secret_access_key: str, credential_ttl_s: int) -> dict[str, Any]:
    """SeaweedFS's identities, STS settings, policies and roles for one bucket."""
    bucket_arns = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    config = {
        "identities": [
            {
                "name": OPERATOR_NAME,
                "credentials": [
                    {
                        "accessKey": access_key_id,
                        "secretKey": secret_access_key,
                    }
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ],
        "sts": {
            # The lifetime of minted credentials; AssumeRole is called without
            # DurationSeconds so that tests can use lifetimes below STS's 900 s minimum.
            "tokenDuration": f"{credential_ttl_s}s",
            "maxSessionLength": "12h",
            "issuer": "nxup-sandbox-sts",
            "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
        },
        "policy": {"defaultEffect": "Deny", "storeType": "memory"},
        "policies": [
            _policy("BucketAccess", "Allow", ["s3:*"], bucket_arns),
            # SeaweedFS grants ListParts and AbortMultipartUpload to any session allowed
            # s3:PutObject, but honours an explicit Deny; putting it in the role keeps the
            # session policy exactly Nuxeo's.
            _policy("NoHousekeeping", "Deny", HOUSEKEEPING_ACTIONS, bucket_arns),
        ],
        "roles": [
            _role(ROLE_NAME, ["BucketAccess"]),
            _role(PUT_ONLY_ROLE_NAME, ["BucketAccess", "NoHousekeeping"]),
        ],
    }
    return config


def session_policy(policy: AccessPolicy, *, bucket: str, key_prefix: str) -> tuple[str, dict[str, Any]]:
    """The role to assume and the session policy of one batch's credentials under `policy`."""
    if policy is AccessPolicy.STOCK:
        # Nuxeo's stock `policyTemplate`, word for word.
        statement = {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": [f"arn:aws:s3:::{bucket}/*"],
        }
        return PUT_ONLY_ROLE_ARN, {"Version": "2012-10-17", "Statement": [statement]}
    statement = {
        "Effect": "Allow",
        "Action": ["s3:PutObject", "s3:GetObject", *HOUSEKEEPING_ACTIONS],
        "Resource": [f"arn:aws:s3:::{bucket}/{key_prefix}*"],
    }
    return ROLE_ARN, {"Version": "2012-10-17", "Statement": [statement]}


def _policy(
    name: str, effect: str, actions: list[str], resources: list[str]
) -> dict[str, Any]:
    statement = {"Effect": effect, "Action": actions, "Resource": resources}
    return {
        "name": name,
        "document": {"Version": "2012-10-17", "Statement": [statement]},
    }


def _role(name: str, policies: list[str]) -> dict[str, Any]:
    """A role the operator may assume, with these attached policies."""
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": f"{ACCOUNT}:user/{OPERATOR_NAME}"},
        "Action": ["sts:AssumeRole"],
    }
    return {
        "roleName": name,
        "roleArn": f"{ACCOUNT}:role/{name}",
        "attachedPolicies": policies,
        "trustPolicy": {"Version": "2012-10-17", "Statement": [trust]},
    }
