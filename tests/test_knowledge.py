"""The knowledge layer through the real binary: `slmgate rag ingest` of real Debian
documentation (tests/data/rag/README.md says where each file comes from), a RAG route whose
SmolLM2 answer cites its passages, the OpenAI Vector Stores API driven by the official SDK,
team isolation, re-ingest and deletion, restart, and bad input."""

import json
import shutil
import sqlite3
import subprocess

import httpx
import openai
import pytest

from conftest import BIN, MINILM, ROOT, Gateway, remote, smol

ADMIN = "adm-knowledge-secret-1"
DOCS = ROOT / "tests" / "data" / "rag" / "debian"
# Answerable only from base-passwd's users-and-groups.html, with the reference answers.
QUESTIONS = [json.loads(l) for l in (ROOT / "tests" / "data" / "rag" / "questions.jsonl").read_text().splitlines()]
QUESTION, FACT = QUESTIONS[0]["question"], QUESTIONS[0]["answer"]


def config(upstream):
    return f"""
[server]
listen = "${{SLMGATE_LISTEN:-127.0.0.1:0}}"

[auth]
enabled = true
admin_key = "{ADMIN}"

[embeddings]
path = "{MINILM}"

{smol(context=2048, parallel=2)}
{remote("gemma", upstream + "/v1", model="gemma3", max_retries=0)}

[routes.docs]
tiers = [{{ name = "local", models = ["smollm2"] }}]
# One passage: a 135M model reads one well and loses the answer among three.
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 400 }}

[routes.plain]
tiers = [{{ name = "local", models = ["smollm2"] }}]

# A local answer its passage does not fully support goes to Gemma (1.0: every new word must
# be in the passage); 0.0 never escalates.
[routes.checked]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "big", models = ["gemma"] }}]
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 400, min_grounding = 1.0 }}

[routes.trusting]
tiers = [{{ name = "local", models = ["smollm2"] }}, {{ name = "big", models = ["gemma"] }}]
rag = {{ collection = "debian", top_k = 1, max_context_tokens = 400, min_grounding = 0.0 }}

[routes.missing]
tiers = [{{ name = "local", models = ["smollm2"] }}]
rag = {{ collection = "no-such-collection" }}
"""


def rag_cli(tmp, name, *args):
    env = {"SLMGATE_DATA_DIR": str(tmp / f"{name}-data"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(BIN), "rag", *args, "--config", str(tmp / f"{name}.toml")],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def kn(tmp_path_factory, gemma_upstream):
    tmp = tmp_path_factory.mktemp("knowledge")
    text = config(gemma_upstream.url)
    (tmp / "kn.toml").write_text(text)
    out = rag_cli(tmp, "kn", "ingest", "--collection", "debian", str(DOCS))
    assert out.returncode == 0, out.stderr
    gw = Gateway("kn", text, tmp)
    gw.tmp = tmp
    gw.config_text = text
    gw.ingest_out = out.stdout
    yield gw
    gw.stop()


def ask(gw, route, text=QUESTION, stream=False, key=ADMIN):
    return httpx.post(gw.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": route, "max_tokens": 40, "temperature": 0, "stream": stream,
                            "messages": [{"role": "user", "content": text}]})


def audit_entries(gw):
    with sqlite3.connect(gw.db) as c:
        return [json.loads(r[0]) for r in c.execute("SELECT entry FROM audit ORDER BY seq")]


def admin_client(gw, key=ADMIN):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_ingest_reads_every_format(kn):
    # 4 text/Markdown/HTML files and one PDF, none refused.
    assert "6 added" in kn.ingest_out and "0 failed" in kn.ingest_out, kn.ingest_out
    listing = rag_cli(kn.tmp, "kn", "list", "--collection", "debian").stdout
    pdf = [l for l in listing.splitlines() if l.endswith("shared-mime-info-spec.pdf")]
    assert pdf and int(pdf[0].split()[1]) >= 5, listing  # the PDF's text was chunked


def test_retrieval_quality_on_the_labelled_set(kn):
    # 128 questions written over the six documents before measuring (tests/data/rag/README.md).
    out = rag_cli(kn.tmp, "kn", "eval", "--collection", "debian",
                  "--data", str(ROOT / "tests" / "data" / "rag" / "retrieval.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "128 questions (0 left out)" in out.stdout, out.stdout + out.stderr  # every label is in a chunk
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[1][:1].isdigit():
            rows[cells[0]] = {"r1": float(cells[1]), "r5": float(cells[3]), "mrr": float(cells[5])}
    assert set(rows) == {"hybrid (RRF)", "BM25 only", "dense only"}, out.stdout
    hybrid = rows["hybrid (RRF)"]
    # Measured 0.977 (docs/benchmarks.md); fusion finds at least what either ranking finds alone.
    assert hybrid["r5"] >= 0.9, rows
    assert hybrid["r5"] >= max(rows["BM25 only"]["r5"], rows["dense only"]["r5"]), rows
    assert all(0 < r["r1"] <= r["r5"] and 0 < r["mrr"] <= 1 for r in rows.values()), rows


def test_rag_answers_are_right_and_cite_their_source(kn):
    right = {"docs": 0, "plain": 0}
    for q in QUESTIONS:
        r = ask(kn, "docs", q["question"])
        assert r.status_code == 200, r.text
        body = r.json()
        right["docs"] += q["answer"] in body["choices"][0]["message"]["content"]
        cites = body["citations"]
        assert cites and cites[0]["filename"].endswith("users-and-groups.html"), (q, cites)
        assert r.headers["x-slmgate-citations"].split(",") == [c["chunk_id"] for c in cites]
        # The same model without the route option does not know it.
        plain = ask(kn, "plain", q["question"])
        assert plain.status_code == 200
        right["plain"] += q["answer"] in plain.json()["choices"][0]["message"]["content"]
        assert "citations" not in plain.json() and "x-slmgate-citations" not in plain.headers
    print(f"SmolLM2-135M on {len(QUESTIONS)} questions: {right['docs']} right with RAG, {right['plain']} without")
    assert right["docs"] >= len(QUESTIONS) // 2 + 1 and right["plain"] <= 1, right
    # Retrieval is audited: the collection, each chunk with its scores.
    r = ask(kn, "docs")
    rid = r.headers["x-request-id"]
    entry = next(e for e in audit_entries(kn) if e["id"] == rid)
    ret = entry["retrieval"]
    assert ret["collection"].startswith("vs_")
    assert [c["id"] for c in ret["chunks"]] == [c["chunk_id"] for c in r.json()["citations"]]
    assert all(0 < c["score"] <= 1 and c["similarity"] > 0 for c in ret["chunks"])


def test_streamed_rag_answer_carries_citations_header(kn):
    with httpx.stream("POST", kn.url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {ADMIN}"},
                      json={"model": "docs", "max_tokens": 40, "temperature": 0, "stream": True,
                            "messages": [{"role": "user", "content": QUESTION}]}) as r:
        assert r.status_code == 200
        assert r.headers["x-slmgate-citations"].startswith("chunk_")
        text = ""
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for ch in json.loads(line[6:])["choices"]:
                    text += ch["delta"].get("content") or ""
    assert text == ask(kn, "docs").json()["choices"][0]["message"]["content"]


def test_an_ungrounded_answer_escalates_with_its_reason(kn):
    # Retrieval finds the NFS passage, and the answer asked for is a story: its words are not
    # in the passage, whatever the machine's floating point makes SmolLM2 write. (A factual
    # question is not enough: on another CPU the greedy answer changed from an invented user
    # to the passage's own "nobody", which is grounded, and CI failed.)
    nfs = "Tell me a story about a dragon who uses root-squashing over NFS and the nobody user."
    r = ask(kn, "checked", nfs)
    assert r.status_code == 200, r.text
    assert r.headers["x-slmgate-tier"] == "big" and r.headers["x-slmgate-model"] == "gemma"
    reason = r.headers["x-slmgate-route-reason"]
    assert "escalated local->big: ungrounded" in reason, reason
    entry = next(e for e in audit_entries(kn) if e["id"] == r.headers["x-request-id"])
    esc = entry["escalations"]
    assert esc and esc[0]["cause"] == "ungrounded" and esc[0]["from_tier"] == "local"
    assert r.json()["citations"]  # the passage still went in, and is cited
    kept = ask(kn, "trusting", nfs)
    assert kept.headers["x-slmgate-tier"] == "local" and "ungrounded" not in kept.headers["x-slmgate-route-reason"]


def test_unrelated_question_gets_no_passages(kn):
    r = ask(kn, "docs", "Write a haiku about the sea.")
    assert r.status_code == 200
    assert "citations" not in r.json(), r.json().get("citations")


def test_vector_stores_through_the_openai_sdk(kn, tmp_path):
    client = admin_client(kn)
    doc = tmp_path / "glossary.md"
    doc.write_text("# Glossary\n\nA zorblat is the quarterly budget review held by the "
                   "platform team every March.\n\n# Office\n\nThe office cat is called Miso.\n")
    f = client.files.create(file=doc.open("rb"), purpose="assistants")
    assert f.id.startswith("file-") and f.bytes == doc.stat().st_size
    vs = client.vector_stores.create(name="sdk-glossary", metadata={"team": "platform"})
    vf = client.vector_stores.files.create_and_poll(vector_store_id=vs.id, file_id=f.id,
                                                    attributes={"kind": "glossary", "year": 2026})
    assert vf.status == "completed"
    res = client.vector_stores.search(vs.id, query="What is a zorblat?", max_num_results=2)
    assert res.data and res.data[0].filename == "glossary.md"
    assert "quarterly budget review" in res.data[0].content[0].text
    assert 0 < res.data[0].score <= 1
    # Attribute filters.
    hit = client.vector_stores.search(vs.id, query="zorblat",
                                      filters={"type": "eq", "key": "kind", "value": "glossary"})
    miss = client.vector_stores.search(vs.id, query="zorblat",
                                       filters={"type": "gt", "key": "year", "value": 2030})
    assert hit.data and not miss.data
    assert vs.id in [s.id for s in client.vector_stores.list()]
    got = client.vector_stores.retrieve(vs.id)
    assert got.file_counts.completed == 1 and got.name == "sdk-glossary"
    assert [x.id for x in client.vector_stores.files.list(vs.id)] == [f.id]
    # Deleting the file removes its chunks from search.
    client.vector_stores.files.delete(file_id=f.id, vector_store_id=vs.id)
    assert not client.vector_stores.search(vs.id, query="zorblat").data
    assert client.vector_stores.delete(vs.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)
    assert client.files.delete(f.id).deleted


def test_a_key_sees_only_its_teams_collections(kn, tmp_path):
    def key(team, scopes=("vector_stores",)):
        r = httpx.post(kn.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN}"},
                       json={"team": team, "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    a, a2, b = admin_client(kn, key("red")), admin_client(kn, key("red")), admin_client(kn, key("blue"))
    vs = a.vector_stores.create(name="red-notes")
    assert vs.id in [s.id for s in a2.vector_stores.list()]  # same team
    assert vs.id not in [s.id for s in b.vector_stores.list()]
    with pytest.raises(openai.NotFoundError):
        b.vector_stores.retrieve(vs.id)
    with pytest.raises(openai.NotFoundError):
        b.vector_stores.search(vs.id, query="anything")
    doc = tmp_path / "red.txt"
    doc.write_text("Red team secret: the launch code word is tangerine.")
    f = a.files.create(file=doc.open("rb"), purpose="assistants")
    # Another team cannot add red's upload to its own store either.
    blue_vs = b.vector_stores.create(name="blue-notes")
    with pytest.raises(openai.NotFoundError):
        b.vector_stores.files.create(vector_store_id=blue_vs.id, file_id=f.id)
    assert f.id not in [x.id for x in b.files.list()]
    # A key without the scope is refused.
    plain = admin_client(kn, key("red", scopes=()))
    with pytest.raises(openai.PermissionDeniedError) as e:
        plain.vector_stores.list()
    assert e.value.body["code"] == "missing_scope"


def test_bad_input_gets_clear_4xx_and_loses_nothing(kn, tmp_path):
    client = admin_client(kn)
    vs = client.vector_stores.create(name="bad-input")
    good = tmp_path / "good.txt"
    good.write_text("The staging cluster is named Bluebird.")
    client.vector_stores.files.create_and_poll(
        vector_store_id=vs.id, file_id=client.files.create(file=good.open("rb"), purpose="assistants").id)

    def refused(name, content, status):
        p = tmp_path / name
        p.write_bytes(content)
        r = httpx.post(kn.url + "/v1/files", headers={"authorization": f"Bearer {ADMIN}"},
                       files={"file": (name, content)}, data={"purpose": "assistants"})
        if r.status_code == 200:
            r = httpx.post(kn.url + f"/v1/vector_stores/{vs.id}/files", timeout=60,
                           headers={"authorization": f"Bearer {ADMIN}"}, json={"file_id": r.json()["id"]})
        assert r.status_code == status, (name, r.text)
        err = r.json()["error"]
        assert err["message"] and err["code"]
        return err

    assert "empty" in refused("empty.txt", b"", 400)["message"]
    assert "PDF" in refused("broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40, 400)["message"]
    assert "max_line_bytes" in refused("line.txt", b"x" * (10 << 20), 400)["message"]
    assert refused("blob.bin", bytes([0xff, 0xfe, 0, 1]) * 100, 400)["code"] == "invalid_file"
    r = httpx.post(kn.url + "/v1/vector_stores/vs_nope/search", headers={"authorization": f"Bearer {ADMIN}"},
                   json={"query": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.post(kn.url + f"/v1/vector_stores/{vs.id}/search", headers={"authorization": f"Bearer {ADMIN}"},
                   json={"query": "x", "filters": {"type": "like", "key": "a", "value": 1}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "filters"
    # A route whose collection does not exist says so, and the refusal is audited.
    r = ask(kn, "missing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found", r.text
    rid = r.headers["x-request-id"]
    assert any(e["id"] == rid and e["status"] == 404 for e in audit_entries(kn))
    # The good file is still there and still found.
    res = client.vector_stores.search(vs.id, query="What is the staging cluster called?")
    assert res.data and "Bluebird" in res.data[0].content[0].text
    assert client.vector_stores.retrieve(vs.id).file_counts.completed == 1


def test_reingest_replaces_and_deleted_files_leave(kn, tmp_path):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "a.md").write_text("# Parking\n\nVisitors park on level 3 of the north garage.\n")
    (d / "b.md").write_text("# Lunch\n\nThe canteen serves ramen on Thursdays.\n")
    first = rag_cli(kn.tmp, "kn", "ingest", "--collection", "notes", str(d))
    assert "2 added" in first.stdout, first.stdout + first.stderr
    again = rag_cli(kn.tmp, "kn", "ingest", "--collection", "notes", str(d))
    assert "2 unchanged" in again.stdout
    (d / "a.md").write_text("# Parking\n\nVisitors now park on level 7 of the south garage.\n")
    (d / "b.md").unlink()
    third = rag_cli(kn.tmp, "kn", "ingest", "--collection", "notes", str(d))
    assert "1 replaced" in third.stdout and "1 removed" in third.stdout, third.stdout
    # The running gateway sees the CLI's changes at its next search.
    vs = next(s for s in admin_client(kn).vector_stores.list() if s.name == "notes")
    texts = [r.content[0].text for r in admin_client(kn).vector_stores.search(vs.id, query="where do visitors park").data]
    assert any("level 7" in t for t in texts) and not any("level 3" in t for t in texts), texts
    assert not admin_client(kn).vector_stores.search(vs.id, query="ramen canteen Thursdays").data


def test_index_survives_a_restart(kn):
    before = ask(kn, "docs").json()["citations"]
    kn.stop()
    kn.__init__("kn", kn.config_text, kn.tmp)
    after = ask(kn, "docs")
    assert after.status_code == 200
    assert [c["chunk_id"] for c in after.json()["citations"]] == [c["chunk_id"] for c in before]
    # A lost full-text index is rebuilt from the store.
    kn.stop()
    for d in (kn.tmp / "kn-data" / "rag").iterdir():
        shutil.rmtree(d)
    kn.__init__("kn", kn.config_text, kn.tmp)
    again = ask(kn, "docs")
    assert [c["chunk_id"] for c in again.json()["citations"]] == [c["chunk_id"] for c in before]
