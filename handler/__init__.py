"""Automated VPC Traffic Mirroring: the Lambda handler (installed as `traffic_mirror.handler`).

The Lambda entry point is `handler.app.lambda_handler`. Only boto3 (from the Lambda
runtime) and the standard library are imported on that path; the operator CLI lives in
`cli/` (`traffic_mirror.cli`), outside the Lambda archive.
"""
