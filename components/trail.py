"""The CloudTrail trail EventBridge needs to see EC2 API calls, and the bucket it writes to.

One multi-region trail in the home region covers every region. It records write-only
management events: the calls the rules match are all writes, and reads would multiply the
volume. The bucket blocks public access, encrypts at rest, refuses plain HTTP, and lets
CloudTrail write only on behalf of this trail (`aws:SourceArn`). The trail's ARN is built
from its name, because the bucket policy must exist before CloudTrail will create the trail.
`pulumi destroy` keeps the bucket, its logs and its settings unless `force_destroy_trail_bucket`.
"""

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from .config import Options
from .naming import physical_name


@dataclass
class TrailResources:
    trail: aws.cloudtrail.Trail
    bucket: aws.s3.Bucket
    bucket_policy: aws.s3.BucketPolicy
    trail_arn: pulumi.Output[str]


def trail_arn(partition: str, region: str, account: str, trail_name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account}:trail/{trail_name}"


def bucket_policy_document(bucket: str, partition: str, account: str, source_trail_arn: str) -> dict[str, Any]:
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    only_this_trail = {"aws:SourceArn": source_trail_arn}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": only_this_trail},
            },
            {
                "Sid": "AWSCloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
                "Condition": {
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **only_this_trail}
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def create_trail(
    name: str,
    options: Options,
    partition: pulumi.Output[str],
    account: pulumi.Output[str],
    parent: pulumi.Resource,
) -> TrailResources:
    region = options.home_region
    # Unless force-destroy is asked for, `pulumi destroy` leaves the bucket with its logs (an
    # audit trail, and S3 refuses to delete a non-empty bucket) and with the settings that keep
    # it private: only the trail itself goes.
    force = options.deployment.force_destroy_trail_bucket
    kept = pulumi.ResourceOptions(parent=parent, retain_on_delete=not force)
    trail_name = physical_name(name, "trail", max_length=128)
    arn = pulumi.Output.all(partition, account).apply(lambda v: trail_arn(v[0], region, v[1], trail_name))

    bucket = aws.s3.Bucket(
        f"{name}-trail-bucket",
        region=region,
        force_destroy=force,
        opts=kept,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-trail-bucket-ownership",
        bucket=bucket.id,
        region=region,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=kept,
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-trail-bucket-public-access",
        bucket=bucket.id,
        region=region,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=kept,
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-trail-bucket-encryption",
        bucket=bucket.id,
        region=region,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
            )
        ],
        opts=kept,
    )
    if options.deployment.log_expiration_days is not None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-trail-bucket-expiry",
            bucket=bucket.id,
            region=region,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-trail-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=options.deployment.log_expiration_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=kept,
        )
    policy = aws.s3.BucketPolicy(
        f"{name}-trail-bucket-policy",
        bucket=bucket.id,
        region=region,
        policy=pulumi.Output.all(bucket.bucket, partition, account, arn).apply(
            lambda v: json.dumps(bucket_policy_document(v[0], v[1], v[2], v[3]))
        ),
        # S3 rejects a bucket policy while the public access block is being written.
        opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[public_access])),
    )
    trail = aws.cloudtrail.Trail(
        f"{name}-trail",
        name=trail_name,
        region=region,
        s3_bucket_name=bucket.id,
        is_multi_region_trail=True,
        include_global_service_events=True,
        enable_log_file_validation=True,
        event_selectors=[
            aws.cloudtrail.TrailEventSelectorArgs(read_write_type="WriteOnly", include_management_events=True)
        ],
        # CloudTrail checks at creation that it may write to the bucket.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy, ownership, encryption]),
    )
    return TrailResources(trail=trail, bucket=bucket, bucket_policy=policy, trail_arn=trail.arn)
