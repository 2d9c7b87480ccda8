"""Provider entry point: serves TrafficMirrorAutomation as `traffic-mirror:index:TrafficMirrorAutomation`.

The repository root's __main__.py is the Pulumi program; this directory is the plugin
(PulumiPlugin.yaml), so `pulumi package add <repo>/provider` generates an SDK from schema.json's
twin, served by the running provider.
"""

from traffic_mirror.components.provider import serve

if __name__ == "__main__":
    serve()
