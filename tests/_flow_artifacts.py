"""The Prefect artifacts a flow run left, as the tests compare them."""

from __future__ import annotations

import json
from typing import Any


def flow_run_artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The flow run's artifacts by key: a table's data as rows, a markdown artifact's text."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found}
