"""Plain HTTP against the running binary: curl-style raw publish, problem documents, long poll."""

import requests


def test_raw_publish_like_curl(base_url, unique):
    reply = requests.post(f"{base_url}/v1/topics/{unique}/messages", data="hello", timeout=10)
    assert reply.status_code == 200, reply.text
    msg_id = reply.json()["msg_id"]
    message = requests.get(f"{base_url}/v1/messages/{msg_id}", timeout=10).json()
    assert message["body"] == "hello"
    assert message["state"] == "stored"


def test_problem_documents(base_url, unique):
    reply = requests.post(f"{base_url}/v1/topics", data="{", headers={"content-type": "application/json"}, timeout=10)
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["type"] == "urn:ferrymq:error:invalid-argument"
    assert problem["errors"][0]["field"] == ""
    reply = requests.get(f"{base_url}/v1/topics/{unique}", timeout=10)
    assert reply.status_code == 404
    assert reply.json()["type"] == "urn:ferrymq:error:not-found"


def test_receive_ack_over_http(base_url, unique):
    topic, group = unique, unique + "-g"
    requests.post(f"{base_url}/v1/topics/{topic}/messages", json={"body": "x"}, timeout=10).raise_for_status()
    got = requests.post(
        f"{base_url}/v1/groups/{group}/receive", json={"topic": topic, "wait_ms": 2000}, timeout=10
    ).json()["messages"]
    assert len(got) == 1
    reply = requests.post(f"{base_url}/v1/groups/{group}/ack", json={"receipts": [got[0]["receipt"]]}, timeout=10)
    assert reply.json() == {"acked": 1, "failed": []}
    bad = requests.post(f"{base_url}/v1/groups/{group}/ack", json={"receipts": ["nonsense"]}, timeout=10)
    assert bad.status_code == 400
