"""Pulumi component for Automated VPC Traffic Mirroring.

    from traffic_mirror.components import TrafficMirrorAutomation

    TrafficMirrorAutomation("mirror", {"regions": ["us-east-1", "eu-west-1"]})
"""

from .automation import TYPE_TOKEN, TrafficMirrorAutomation, TrafficMirrorAutomationArgs
from .config import ConfigError

__all__ = ["TYPE_TOKEN", "ConfigError", "TrafficMirrorAutomation", "TrafficMirrorAutomationArgs"]
