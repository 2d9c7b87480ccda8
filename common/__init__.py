"""What the component, the CLI and the generator share that the Lambda does not need.

Installed as `traffic_mirror.common`. Nothing here is in the Lambda's archive (it ships `handler/`
only), and nothing in `handler/` imports it: region names and "did you mean" (`regions`), and the
machinery that turns the handler's setting declarations into component arguments, stack-config
keys, environment text and CLI flags (`declarations`).
"""
