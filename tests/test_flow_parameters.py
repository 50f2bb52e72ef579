"""Every flow's parameters carry a description in Prefect's UI (its parameter schema), read by
Prefect from the flow's Google-style ``Args:`` docstring section."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from prefect import Flow
from prefect.utilities.callables import parameter_schema

import flows


def _flows() -> list[Flow]:
    found: dict[str, Flow] = {}
    for module in pkgutil.iter_modules(flows.__path__, "flows."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, Flow):
                found[value.name] = value
    return sorted(found.values(), key=lambda f: f.name)


FLOWS = _flows()


def test_the_flows_are_found() -> None:
    # The deployment's flow at least (prefect.yaml): the test below cannot pass on no flow at all.
    assert "settlement-reconciliation" in {f.name for f in FLOWS}


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_has_its_description(flow: Flow) -> None:
    names = list(inspect.signature(flow.fn).parameters)
    for schema in (flow.parameters.model_dump(), parameter_schema(flow.fn).model_dump()):
        properties = schema["properties"]
        assert list(properties) == names
        missing = [name for name in names if not properties[name].get("description", "").strip()]
        assert not missing, f"flow {flow.name}: no description in the docstring's Args: for {missing}"
    # The docstring's summary stays the flow's description; Args: does not replace it.
    assert flow.description and not flow.description.startswith("Args:")


def test_the_settlement_flow_describes_what_each_option_does() -> None:
    from flows.settlement import settlement_reconciliation

    properties = settlement_reconciliation.parameters.model_dump()["properties"]
    assert properties["dry_run"]["description"].split()[-2:] == ["post", "nothing."]
    assert '"hold"' in properties["missing_invoices"]["description"]
    assert "HOME/sandbox" in properties["sandbox"]["description"]
    assert settlement_reconciliation.description.startswith("Settle Amazon settlement reports in M3.")
