"""The customer-service example's parts, called directly: the triage rules, knowledge-base
retrieval, the CRM update through the workflow's own SQL agent on a copy of the real
SQLite file, and the outbox. No model is loaded.
"""

from __future__ import annotations

import email.policy
import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from podium import Escalate, TaskContext, TaskInput, parse_workflow
from podium.agents.sql import SQLError

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is imported from the repository root, as Podium does
    sys.path.insert(0, str(ROOT))

from examples.customer_service import agents, kb, make_data, triage  # noqa: E402
from examples.customer_service.models import Handled  # noqa: E402

FOLDER = ROOT / "examples" / "customer_service"
WORKFLOW = ROOT / "examples" / "customer_service.yaml"
SHIPPED_URL = "sqlite:///examples/customer_service/crm.db"
KB = str(FOLDER / "kb.md")
ENTRIES = kb.load(KB)


def _ticket(body: str, subject: str = "", sender: str = "ann.lee@example.com",
            name: str = "Ann Lee", id: str = "T-9001") -> dict[str, str]:
    return {"id": id, "from": sender, "name": name, "subject": subject, "body": body}


def _judge(body: str, **kw: str) -> dict[str, Any]:
    return triage.judge(_ticket(body, **kw), ENTRIES)


def _ctx(key: str, run_id: str = "run-1", task_id: str = "close") -> TaskContext:
    return TaskContext(run_id=run_id, task_id=task_id, attempt=1, idempotency_key=key,
                       inputs={}, outputs={})


def _rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


# -- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field", "value"), [
    ("Hello, please change the email address on my account C-10002 to "
     "maria.home@fastmail.com. Thanks", "email", "maria.home@fastmail.com"),
    ("We moved! Please update the delivery address for customer C-10008 to "
     "1187 Linden Avenue, Apt 3, Madison, WI 53703.", "address",
     "1187 Linden Avenue, Apt 3, Madison, WI 53703"),
    ("Please move account c10005 from Plus to the Pro plan.", "plan", "pro"),
    ("change plan to basic please - C-10005", "plan", "basic"),
])
def test_a_readable_account_change_goes_to_the_crm(body: str, field: str, value: str) -> None:
    verdict = _judge(body)
    assert (verdict["intent"], verdict["route"], verdict["sure"]) == (
        "account_change", "crm", True)
    assert verdict["change"] == {"field": field, "value": value}
    assert verdict["customer_id"] in ("C-10002", "C-10005", "C-10008")


@pytest.mark.parametrize(("body", "why"), [
    ("Please change my email to new.me@example.org, thanks.", "without a customer number"),
    ("Please change the email on C-10002 and C-10003 to x@example.org", "several customer"),
    ("Please update the address on C-10002, I moved abroad.", "could not read the new"),
])
def test_an_account_change_the_rules_cannot_apply_goes_to_a_person(body: str, why: str) -> None:
    verdict = _judge(body)
    assert (verdict["intent"], verdict["route"]) == ("account_change", "human")
    assert why in verdict["reason"] and verdict["change"] is None


def test_the_senders_own_address_is_not_taken_for_the_new_one() -> None:
    verdict = _judge("Please change the email on C-10002 to ann.new@example.org",
                     sender="ann.lee@example.com")
    assert verdict["change"] == {"field": "email", "value": "ann.new@example.org"}
    verdict = _judge("Please change the email on C-10002, I write from ann.lee@example.com")
    assert verdict["route"] == "human"


@pytest.mark.parametrize("body", [
    "This is the THIRD time my order has arrived damaged. Refund me now!!",
    "Worst service ever, I'm speaking to a lawyer.",
    "Why was my account locked?? This is a joke.",
    "Please change my email on C-10002 to x@example.org. Your site is useless.",
])
def test_any_sign_of_anger_goes_to_a_person_as_a_complaint(body: str) -> None:
    verdict = _judge(body)
    assert (verdict["intent"], verdict["route"], verdict["sure"]) == (
        "complaint", "human", True)
    assert verdict["reason"].startswith("upset customer")


def test_a_statement_name_in_capitals_is_not_shouting() -> None:
    verdict = _judge("There's a charge from LARKSPUR*MEMBER on my card statement. What is it?")
    assert (verdict["intent"], verdict["route"]) == ("faq", "faq")
    assert verdict["kb"]["id"] == "membership-billing"


@pytest.mark.parametrize(("body", "cue"), [
    ("Under the GDPR I request a copy of all personal data you hold about me.",
     "data protection"),
    ("My late mother had an account (C-10031). How do we close it?", "bereavement"),
    ("After my divorce I need to change the email on C-10044 to a@example.org", "divorce"),
    (" ".join(["I have a question about my order."] * 12), "long message"),
])
def test_a_complex_ticket_goes_to_a_person_whatever_it_asks(body: str, cue: str) -> None:
    verdict = _judge(body)
    assert verdict["route"] == "human" and verdict["complexity"] == "complex"
    assert cue in verdict["reason"] and verdict["change"] is None


def test_a_clear_question_is_answered_from_the_knowledge_base_without_the_model() -> None:
    verdict = _judge("I forgot my password and the reset link never arrived. How do I reset it?")
    assert (verdict["intent"], verdict["route"], verdict["decided_by"]) == (
        "faq", "faq", "rules")
    assert verdict["kb"]["id"] == "resetting-your-password"


def test_when_the_rules_are_unsure_the_model_decides_within_their_bounds() -> None:
    vague = _judge("Hi, I have a question about my account.")
    assert vague["sure"] is False and vague["decided_by"] == "model"
    # The model may call it an FAQ, but no entry matches: a person answers.
    settled = triage.settle(vague, {"intent": "faq", "complexity": "simple",
                                    "customer_id": "C-12345"})
    assert (settled["intent"], settled["route"]) == ("other", "human")
    assert settled["customer_id"] is None  # the model's invented number is never used

    possible = _judge("Is cash on delivery possible?")
    assert possible["sure"] is False
    assert triage.settle(possible, {"intent": "faq", "complexity": "complex"})["route"] == "faq"
    assert triage.settle(possible, {"intent": "complaint", "complexity": "simple"})[
        "route"] == "human"
    assert triage.settle(possible, None)["reason"] == "rules unsure and no model answer"


def test_the_rules_on_the_shipped_stream_never_act_on_what_needs_a_person() -> None:
    """Against the generator's labels: complaints, complex and ambiguous tickets never get
    an automatic answer from the rules; every readable account change reaches the CRM."""
    _, stream = make_data.tickets()
    outcome: Counter[tuple[str, str]] = Counter()
    for ticket in stream:
        verdict = triage.judge(ticket.record(), ENTRIES)
        route = verdict["route"] if verdict["sure"] else "model"
        outcome[ticket.kind.split(":")[0], route] += 1
        if ticket.kind in ("complaint", "complex", "ambiguous"):
            assert route in ("human", "model"), (ticket.id, verdict)
        if ticket.kind == "complaint":
            assert verdict["intent"] == "complaint", (ticket.id, verdict)
        if ticket.kind == "account_change":
            assert route == "crm", (ticket.id, verdict)
        if ticket.kind == "faq":
            assert route in ("faq", "model"), (ticket.id, verdict)
    assert outcome["faq", "faq"] >= 0.75 * (outcome["faq", "faq"] + outcome["faq", "model"])
    assert outcome["unsafe_change", "human"] == 2  # no customer number
    assert outcome["unsafe_change", "crm"] == 2  # unknown customer, wrong sender: the CRM refuses


def test_plan_settles_the_unsure_verdicts_with_the_model_answers_in_order() -> None:
    verdicts = [triage.judge(_ticket(body, id=f"T-{n}"), ENTRIES) for n, body in enumerate([
        "Is cash on delivery possible?",
        "How do I reset my password? I never got the reset link.",
        "Can someone help me please",
    ])]
    assert [v["sure"] for v in verdicts] == [False, True, False]
    planned = agents.plan(verdicts, [{"intent": "faq", "complexity": "simple"}, None])
    assert [(p["ticket_id"], p["route"], p["decided_by"]) for p in planned] == [
        ("T-0", "faq", "model"), ("T-1", "faq", "rules"), ("T-2", "human", "model")]


# -- knowledge base -------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "entry"), [
    ("How long does standard delivery take?", "delivery-times"),
    ("Do you ship to Australia?", "international-delivery"),
    ("My mug arrived cracked, what should I do?", "damaged-or-faulty-items"),
    ("When will my refund show on my card?", "refunds"),
    ("I'm locked out after too many attempts", "locked-account"),
    ("How do I turn on two-step verification?", "two-step-verification"),
    ("Can I pay with PayPal?", "payment-methods"),
])
def test_retrieval_finds_the_entry_that_answers(question: str, entry: str) -> None:
    best = kb.search(question, ENTRIES)[0]
    assert best.entry.id == entry and best.score > 0 and 0 < best.coverage <= 1


def test_retrieval_scores_nothing_for_words_the_knowledge_base_never_uses() -> None:
    assert [m.score for m in kb.search("Is this still available?", ENTRIES)] == [0, 0, 0]


def test_the_knowledge_base_file_parses_into_complete_entries(tmp_path: Path) -> None:
    assert len(ENTRIES) >= 15 and len({e.id for e in ENTRIES}) == len(ENTRIES)
    assert all(e.title and e.keywords and len(e.answer) > 60 for e in ENTRIES)
    bad = tmp_path / "kb.md"
    bad.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no '## ' entries"):
        kb.load(bad)
    bad.write_text("## Empty\nkeywords: a, b\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'Empty' has no answer"):
        kb.load(bad)


def test_an_faq_reply_quotes_the_entry_as_it_stands() -> None:
    step = _judge("How long does standard delivery take?", name="Priya Raman")
    handled = agents.handle(step, plan=[step], crm_update=[], kb=KB)
    entry = {e.id: e for e in ENTRIES}["delivery-times"]
    assert handled["handled_by"] == "workflow" and handled["resolution"] == "faq:delivery-times"
    assert handled["reply"].startswith("Hi Priya,") and entry.answer in handled["reply"]
    Handled.model_validate(handled)


def test_a_ticket_for_a_person_escalates_with_its_reason() -> None:
    step = _judge("Worst service ever, I'm speaking to a lawyer.")
    with pytest.raises(Escalate, match="complaint, complex: upset customer"):
        agents.handle(step, plan=[step], crm_update=[], kb=KB)


# -- the CRM, through the workflow's own SQL agent ------------------------------------------


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    path = tmp_path / "crm.db"
    shutil.copyfile(FOLDER / "crm.db", path)
    return path


async def _update(crm: Path, **params: str) -> Any:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert SHIPPED_URL in text
    workflow = parse_workflow(text.replace(SHIPPED_URL, f"sqlite:///{crm}"), str(WORKFLOW))
    agent = workflow.agents["crm"]
    return await agent.run(TaskInput(args={"params": params}), _ctx("run-1:crm_update[0]"))


async def test_an_account_change_updates_exactly_one_row_and_is_idempotent(crm: Path) -> None:
    before = _rows(crm, "SELECT * FROM customers ORDER BY id")
    change = {"customer_id": "C-10002", "field": "email", "value": "maria.home@fastmail.com",
              "sender": "Maria.Lopez@outlook.com", "ticket": "T-0002"}
    result = await _update(crm, **change)
    assert result["rowcount"] == 1
    assert result["rows"][0] | {"email": None} == {
        "id": "C-10002", "email": None, "address": before[1][3], "plan": before[1][4],
        "last_ticket": "T-0002"}
    assert result["rows"][0]["email"] == "maria.home@fastmail.com"
    # Run again, as after a crash: the sender is no longer the email on file, but this
    # ticket made the change, so it applies again instead of failing.
    assert (await _update(crm, **change))["rowcount"] == 1
    after = _rows(crm, "SELECT * FROM customers ORDER BY id")
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 1 and changed[0][1][:5] == (
        "C-10002", "Maria Lopez", "maria.home@fastmail.com", before[1][3], before[1][4])


@pytest.mark.parametrize("field_value", [("address", "9 Elm Street, Austin, TX 78704"),
                                         ("plan", "pro")])
async def test_address_and_plan_changes_touch_only_their_column(
        crm: Path, field_value: tuple[str, str]) -> None:
    field, value = field_value
    ((email, address, plan),) = _rows(
        crm, "SELECT email, address, plan FROM customers WHERE id = 'C-10005'")
    result = await _update(crm, customer_id="C-10005", field=field, value=value,
                           sender=email, ticket="T-0005")
    expected = {"email": email, "address": address, "plan": plan} | {field: value}
    assert {k: result["rows"][0][k] for k in expected} == expected


@pytest.mark.parametrize(("customer_id", "sender"), [
    ("C-19999", "someone@example.com"),  # no such customer
    ("C-10002", "intruder@example.com"),  # not the customer's email on file
])
async def test_a_change_that_cannot_be_verified_changes_nothing(
        crm: Path, customer_id: str, sender: str) -> None:
    before = _rows(crm, "SELECT * FROM customers")
    result = await _update(crm, customer_id=customer_id, field="email",
                           value="new@example.org", sender=sender, ticket="T-0100")
    assert result == {"rows": [], "rowcount": 0}
    assert _rows(crm, "SELECT * FROM customers") == before
    step = {"ticket_id": "T-0100", "route": "crm", "customer_id": customer_id,
            "sender": sender, "change": {"field": "email", "value": "new@example.org"},
            "name": "Ann Lee"}
    with pytest.raises(Escalate, match="the CRM did not change"):
        agents.handle(step, plan=[step], crm_update=[result], kb=KB)


async def test_the_database_refuses_an_email_another_customer_has(crm: Path) -> None:
    ((taken,),) = _rows(crm, "SELECT email FROM customers WHERE id = 'C-10003'")
    ((mine,),) = _rows(crm, "SELECT email FROM customers WHERE id = 'C-10002'")
    with pytest.raises(SQLError, match="UNIQUE constraint failed") as caught:
        await _update(crm, customer_id="C-10002", field="email", value=taken, sender=mine,
                      ticket="T-0101")
    assert caught.value.retryable is False


async def test_a_crm_change_is_confirmed_from_the_row_the_crm_returned(crm: Path) -> None:
    ((email,),) = _rows(crm, "SELECT email FROM customers WHERE id = 'C-10005'")
    faq = _judge("How do I reset my password? I never got the reset link.", id="T-0001")
    step = _judge("Please upgrade customer C-10005 to the Pro plan.", sender=email,
                  name="Tom Becker", id="T-0005")
    result = await _update(crm, customer_id="C-10005", field="plan", value="pro",
                           sender=email, ticket="T-0005")
    handled = agents.handle(step, plan=[faq, step], crm_update=[result], kb=KB)
    assert handled["resolution"] == "crm:plan" and handled["handled_by"] == "workflow"
    assert "your account C-10005 is now on the Pro plan" in handled["reply"]


# -- intake, outbox and summary --------------------------------------------------------------


def test_intake_reads_json_lines_or_csv_and_takes_the_first_n(tmp_path: Path) -> None:
    shipped = agents.intake(str(FOLDER / "tickets.jsonl"))
    assert len(shipped) >= 100 and shipped[0]["id"] == "T-0001"
    assert [t["id"] for t in agents.intake(str(FOLDER / "tickets.jsonl"), 3)] == [
        "T-0001", "T-0002", "T-0003"]
    table = tmp_path / "tickets.csv"
    table.write_text("id,from,name,subject,body\nT-1,a@example.com,Ann,Hi,Where is it?\n",
                     encoding="utf-8")
    assert agents.intake(str(table)) == [{"id": "T-1", "from": "a@example.com", "name": "Ann",
                                          "subject": "Hi", "body": "Where is it?"}]


@pytest.mark.parametrize(("lines", "error"), [
    (['{"id": "T-1", "from": "a@example.com", "body": "x"}', "not json"],
     r"tickets.jsonl:2: not a JSON object"),
    (['{"id": "T-1", "from": "a@example.com"}'], r"tickets.jsonl:1: ticket lacks body"),
    (['{"id": "T-1", "from": "a@example.com", "body": "x"}'] * 2, r"'T-1' appears twice"),
])
def test_intake_names_the_line_of_a_bad_ticket(tmp_path: Path, lines: list[str],
                                               error: str) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        agents.intake(str(path))


def test_closing_writes_one_reply_per_ticket_named_from_the_idempotency_key(
        tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    steps = [_judge("How long does standard delivery take?", id="T-0001", name="Priya Raman",
                    subject="Delivery\r\n time"),
             _judge("Is this still available?", id="T-0002", sender="bo@example.com",
                    name="Bo")]
    handled = [{"reply": "Hi Priya, 3 to 5 business days.", "handled_by": "workflow"},
               {"reply": "Hi Bo, which item do you mean?", "handled_by": "human"}]
    first = agents.close(steps[0], 0, handled, str(outbox), _ctx("run-1:close[0]"))
    again = agents.close(steps[0], 0, handled, str(outbox), _ctx("run-1:close[0]"))
    second = agents.close(steps[1], 1, handled, str(outbox), _ctx("run-1:close[1]"))
    assert first == again and first["path"] != second["path"]
    assert sorted(p.name for p in outbox.iterdir()) == ["run-1-close-0.eml", "run-1-close-1.eml"]
    with Path(first["path"]).open("rb") as fh:
        msg = BytesParser(policy=email.policy.default).parse(fh)
    assert msg["To"] == "Priya Raman <ann.lee@example.com>"
    assert msg["Subject"] == "Re: Delivery time [T-0001]" and msg["X-Ticket"] == "T-0001"
    assert msg["Message-ID"].endswith("@larkspur.example>")
    body = msg.get_body(("plain",))
    assert body is not None and "3 to 5 business days" in body.get_content()
    assert second["handled_by"] == "human" and second["intent"] == "other"
    with Path(second["path"]).open("rb") as fh:
        assert BytesParser(policy=email.policy.default).parse(fh)["Subject"] == (
            "Re: your message [T-0002]")


def test_a_sender_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    step = _judge("Where is my parcel?", sender="nobody\r\nBcc: x@example.com")
    with pytest.raises(ValueError, match="is not an email address"):
        agents.write_reply(step, "Hi", tmp_path, "run-1:close[0]")


def test_the_summary_counts_add_up() -> None:
    plan = [{"intent": "faq"}, {"intent": "faq"}, {"intent": "complaint"},
            {"intent": "account_change"}]
    for n, step in enumerate(plan):
        step.update(ticket_id=f"T-{n}", decided_by="model" if n == 1 else "rules")
    close = [{"ticket_id": f"T-{n}", "handled_by": by}
             for n, by in enumerate(["workflow", "human", "human", "workflow"])]
    crm_update = [{"rows": [{"id": "C-10002"}], "rowcount": 1}]
    summary = agents.summarise(plan, close, crm_update, "outbox")
    assert summary | {"outbox": None} == {
        "tickets": 4, "closed_without_human": 2, "escalated": 2,
        "by_intent": {
            "account_change": {"tickets": 1, "closed_without_human": 1, "escalated": 0},
            "complaint": {"tickets": 1, "closed_without_human": 0, "escalated": 1},
            "faq": {"tickets": 2, "closed_without_human": 1, "escalated": 1}},
        "crm_rows_changed": 1, "decided_by": {"model": 1, "rules": 3},
        "escalated_tickets": ["T-1", "T-2"], "replies": 4, "outbox": None}


# -- the data --------------------------------------------------------------------------------


def test_the_generator_is_deterministic_and_matches_the_shipped_tickets(tmp_path: Path) -> None:
    assert make_data.write(tmp_path) == (60, len(make_data.tickets()[1]))
    assert (tmp_path / "tickets.jsonl").read_bytes() == (FOLDER / "tickets.jsonl").read_bytes()
    shipped = [json.loads(line) for line in (FOLDER / "tickets.jsonl").read_text().splitlines()]
    assert len(shipped) >= 100
    assert _rows(tmp_path / "crm.db", "SELECT count(*), count(DISTINCT email) FROM customers"
                 ) == [(60, 60)]


def test_the_generator_runs_as_a_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(FOLDER / "make_data.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "wrote 60 customers" in done.stdout and (tmp_path / "crm.db").is_file()
