"""STS: the job's own credentials, for the code a worker runs for it; who the caller is."""

from __future__ import annotations

from stepburst import aws
from stepburst.adapters.translation import translated

# The shortest session STS gives; a longer command refreshes nothing, so ask for its bound.
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43_200


def job_credentials(role_arn: str, session_name: str, seconds: int) -> dict[str, str]:
    """Temporary credentials of ``role_arn`` as the environment variables boto3 and the AWS CLI
    read."""
    duration = max(MIN_SESSION_SECONDS, min(MAX_SESSION_SECONDS, seconds))
    with translated(f"assuming {role_arn}"):
        credentials = aws.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=duration
        )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def caller_arn() -> str:
    """The ARN of the principal whose credentials the clients use (who cancels, say)."""
    with translated("asking STS who the caller is"):
        return str(aws.client("sts").get_caller_identity()["Arn"])
