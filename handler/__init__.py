"""Automated VPC Traffic Mirroring: the Lambda handler and its operator CLI.

The Lambda entry point is `handler.app.lambda_handler`. Only boto3 (from the Lambda
runtime) and the standard library are imported on that path.
"""
