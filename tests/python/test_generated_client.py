"""A client generated from openapi/openapi.json with openapi-python-client drives the server:
create a topic, publish, receive, ack. This is what any OpenAPI user gets."""

import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text("project_name_override: ferrymq-generated\npackage_name_override: ferrymq_generated\n")
    subprocess.run(
        [
            sys.executable, "-m", "openapi_python_client", "generate",
            "--path", str(SPEC), "--output-path", str(out / "ferrymq_generated"),
            "--config", str(config), "--meta", "none", "--overwrite",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    # With `--meta none` the output path is the package itself.
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("ferrymq_generated")
    finally:
        sys.path.remove(str(out))


def test_create_publish_receive_ack(api, base_url, unique):
    from ferrymq_generated import Client
    from ferrymq_generated.api.consume import ack_messages, receive_messages
    from ferrymq_generated.api.groups import get_group
    from ferrymq_generated.api.messages import publish_messages
    from ferrymq_generated.api.topics import create_topic
    from ferrymq_generated.models import AckBody, CreateTopic, PublishMessage, ReceiveBody

    client = Client(base_url=base_url, raise_on_unexpected_status=True)
    topic, group = unique, unique + "-g"

    created = create_topic.sync_detailed(client=client, body=CreateTopic(name=topic, queues=2))
    assert created.status_code == 201
    assert created.parsed.name == topic
    assert created.parsed.queues == 2

    published = publish_messages.sync_detailed(
        topic, client=client, body=PublishMessage(body="from a generated client", tag="gen")
    )
    assert published.status_code == 200, published.content
    msg_id = published.parsed.msg_id
    assert msg_id

    received = receive_messages.sync_detailed(
        group, client=client, body=ReceiveBody(topic=topic, max_messages=10, wait_ms=2000)
    )
    assert received.status_code == 200
    messages = received.parsed.messages
    assert [m.msg_id for m in messages] == [msg_id]
    assert messages[0].body == "from a generated client"
    assert messages[0].tag == "gen"
    assert messages[0].receipt

    acked = ack_messages.sync_detailed(group, client=client, body=AckBody(receipts=[messages[0].receipt]))
    assert acked.status_code == 200
    assert acked.parsed.acked == 1
    assert acked.parsed.failed == []

    detail = get_group.sync_detailed(group, client=client)
    assert sum(o.lag for o in detail.parsed.offsets) == 0
