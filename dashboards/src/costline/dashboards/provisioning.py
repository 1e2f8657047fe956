"""Grafana provisioning: the Prometheus data source and a file provider for the dashboards, so a fresh Grafana
shows everything with no clicking."""

from __future__ import annotations

from costline.dashboards.config import MixinConfig


def datasources(config: MixinConfig) -> dict[str, object]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": config.datasource_uid,
                "type": "prometheus",
                "access": "proxy",
                "url": config.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": config.scrape_interval},
            }
        ],
    }


def dashboard_providers(config: MixinConfig) -> dict[str, object]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "costline",
                "folder": "Costline",
                "type": "file",
                "disableDeletion": True,
                # Generated files are the source of truth: edits in the UI would be lost on the next build.
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": config.grafana_dashboards_path},
            }
        ],
    }
