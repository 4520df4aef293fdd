"""Running it: Prometheus metrics, health and readiness, structured logs, the metrics port, ``doctor``.

:func:`chatcanvas.ops.install.install_ops` hooks an app's engine, job table and assistant (the app
does this once, in ``build_app``); the web adapter serves ``/healthz``, ``/readyz`` and ``/metrics``,
and so does the small server on ``CHATCANVAS_METRICS_PORT`` (:mod:`chatcanvas.ops.server`).
"""
