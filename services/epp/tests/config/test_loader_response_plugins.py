"""Loading EndpointPickerConfig: the response plugins, wired to their hooks and checked."""

import pytest

from igw.epp.config import ConfigError, load_config

HEAD = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


RESPONSE_PLUGINS = (
    HEAD
    + """\
plugins:
- type: destination-endpoint-served-verifier
- name: cost
  type: request-attribute-reporter
  parameters:
    attributes:
    - key: {name: x-gateway-inference-request-cost}
      expression: usage.prompt_tokens + usage.completion_tokens
"""
)


def test_response_plugins_are_wired_to_their_hooks() -> None:
    control = load_config(RESPONSE_PLUGINS).request_control
    assert [p.type_name for p in control.response_header_plugins] == [
        "destination-endpoint-served-verifier"
    ]
    assert [p.name for p in control.response_body_plugins] == ["cost"]
    assert (control.has_response_header, control.has_response_body) == (True, True)


def test_no_response_plugins_by_default() -> None:
    control = load_config().request_control
    assert (control.has_response_header, control.has_response_body) == (False, False)


@pytest.mark.parametrize(
    ("attribute", "path", "message"),
    [
        pytest.param("{key: {name: c}, expression: 'usage.(' }", ".attributes[0].expression",
                     "invalid CEL", id="expression-syntax"),
        pytest.param("{key: {name: c}, expression: usage.total_tokens, condition: '> 1'}",
                     ".attributes[0].condition", "invalid CEL", id="condition-syntax"),
        pytest.param("{key: {name: c}, expression: request.size + 1}",
                     ".attributes[0].expression", "unknown CEL variable request",
                     id="unknown-variable"),
        pytest.param("{key: {name: ''}, expression: usage.total_tokens}",
                     ".attributes[0].key.name", "must not be empty", id="empty-name"),
        pytest.param("{key: {namespace: envoy.lb}, expression: usage.total_tokens}",
                     ".attributes[0].key.name", "missing required field", id="missing-name"),
        pytest.param("{key: {name: c}}", ".attributes[0].expression", "missing required field",
                     id="missing-expression"),
    ],
)  # fmt: skip
def test_bad_reporter_attributes_name_the_field(attribute: str, path: str, message: str) -> None:
    text = HEAD + (
        "plugins:\n- type: request-attribute-reporter\n"
        f"  parameters: {{attributes: [{attribute}]}}\n"
    )
    with pytest.raises(ConfigError, match=message) as info:
        load_config(text)
    assert info.value.path == "plugins[0].parameters" + path


def test_reporter_needs_an_attribute() -> None:
    text = HEAD + "plugins: [{type: request-attribute-reporter, parameters: {attributes: []}}]\n"
    with pytest.raises(ConfigError, match="at least one") as info:
        load_config(text)
    assert info.value.path == "plugins[0].parameters.attributes"
