"""The email channel end to end: a hub reading a real Dovecot mailbox over IMAP and sending
through a real SMTP server (aiosmtpd), with the demo bot and the inbox API."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_channels.conftest import MakeHub
from tests.test_channels.mailservers import (  # noqa: F401 - fixtures
    Mailbox,
    SmtpServer,
    dovecot_fixture,
    mailbox_fixture,
    smtp_server_fixture,
)
from tests.test_channels.support import agent_reply, conversations, messages, wait_for

NAME = "support-mail"
SUPPORT = "support@example.com"
CUSTOMER = "ann@customer.test"
FLANKER = Path(__file__).resolve().parent.parent / "fixtures" / "email" / "flanker"
WAIT = 15.0  # generous: IMAP IDLE normally brings a mail within a second


def mail(
    text: str,
    subject: str = "Where is my order?",
    sender: str = CUSTOMER,
    message_id: str | None = None,
    to: str = SUPPORT,
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = email.utils.formataddr(("Ann Lee", sender))
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = message_id or email.utils.make_msgid(domain="customer.test")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def reply_to(previous: EmailMessage, text: str, **headers: str) -> EmailMessage:
    """The customer's answer to one of our mails, as a mail client writes it."""
    answer = mail(
        f"{text}\n\nOn {previous['Date']}, Kefu Shop Support <{SUPPORT}> wrote:\n"
        + "".join(f"> {line}\n" for line in previous.get_content().splitlines()),
        subject="Re: " + str(previous["Subject"]).removeprefix("Re: "),
        to=str(previous["Reply-To"] or SUPPORT),
        In_Reply_To=str(previous["Message-ID"]),
        References=f"{previous.get('References', '')} {previous['Message-ID']}".strip(),
    )
    for name, value in headers.items():
        del answer[name.replace("_", "-")]
        answer[name.replace("_", "-")] = value
    return answer


def channel(mailbox: Mailbox, smtp: SmtpServer, **options: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "type": "email",
        "address": SUPPORT,
        "from_name": "Kefu Shop Support",
        "imap": mailbox.imap_settings(poll_interval=1.0),
        "smtp": smtp.smtp_settings(),
        **options,
    }


@pytest.fixture
def hub(
    make_hub: MakeHub, mailbox: Mailbox, smtp_server: SmtpServer
) -> tuple[TestClient, dict[str, str]]:
    return make_hub(channels=[channel(mailbox, smtp_server)])


def sent_to(smtp: SmtpServer, address: str, count: int = 1) -> list[EmailMessage]:
    """The mails the hub sent to `address`, once there are at least `count` of them."""

    def found() -> list[EmailMessage]:
        mails = [m.message for m in smtp.messages if address in m.rcpt_tos]
        return mails if len(mails) >= count else []

    return wait_for(found, f"{count} mail(s) to {address}", WAIT)  # type: ignore[no-any-return]


def inbound(client: TestClient, auth: dict[str, str], count: int) -> list[dict[str, Any]]:
    """The customer messages stored on the channel, once there are `count`, oldest first;
    each with its `conversation_id`."""

    def found() -> list[dict[str, Any]]:
        got = sorted(
            (
                m
                for c in conversations(client, auth, channel=NAME)
                for m in messages(client, auth, c["id"])
                if m["direction"] == "in"
            ),
            key=lambda m: m["id"],
        )
        return got if len(got) >= count else []

    return wait_for(found, f"{count} stored mail(s)", WAIT)  # type: ignore[no-any-return]


# ---- in, answered, threaded ----------------------------------------------------------------


def test_a_mail_is_stored_marked_seen_and_answered_in_its_thread(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    first = mail("Hello, where is my order 12345678?", message_id="<m1@customer.test>")
    uid = mailbox.deliver(bytes(first))

    [stored] = inbound(client, auth, 1)
    [answer] = sent_to(smtp_server, CUSTOMER)

    assert stored["text"] == "Hello, where is my order 12345678?"
    assert stored["details"]["email"]["subject"] == "Where is my order?"
    assert stored["details"]["email"]["thread"] == "new"
    wait_for(lambda: "\\Seen" in mailbox.flags(uid), "the mail marked seen", WAIT)
    assert answer["Subject"] == "Re: Where is my order?"
    assert answer["In-Reply-To"] == "<m1@customer.test>"
    assert answer["References"] == "<m1@customer.test>"
    assert answer["Message-ID"].startswith("<kefu.") and answer["Message-ID"].endswith(
        "@example.com>"
    )
    assert answer["Auto-Submitted"] == "auto-replied"  # the bot's mail (RFC 3834)
    assert email.utils.parseaddr(answer["From"]) == ("Kefu Shop Support", SUPPORT)
    assert email.utils.parseaddr(answer["Reply-To"])[1].startswith("support+c")
    assert answer.get_content().strip()  # the bot said something
    [conversation] = conversations(client, auth, channel=NAME)
    bot = [m for m in messages(client, auth, conversation["id"]) if m["direction"] == "out"]
    assert bot and all(m["delivery"] == "sent" for m in bot)


def test_replies_land_in_their_conversation_and_quotes_are_stripped(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("Hello, I need help with an invoice.", subject="Invoice")))
    [answer] = sent_to(smtp_server, CUSTOMER)

    answered = reply_to(answer, "I want to talk to a person please")
    mailbox.deliver(bytes(answered))
    first, second = inbound(client, auth, 2)

    assert second["conversation_id"] == first["conversation_id"]
    assert second["details"]["email"]["thread"] == "in-reply-to"
    assert second["text"] == "I want to talk to a person please"  # the quoted mail is gone
    assert "wrote:" in second["details"]["email"]["original_text"]  # kept for the record
    assert len(conversations(client, auth, channel=NAME)) == 1


def test_an_outlook_reply_with_its_own_in_reply_to_still_threads(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("Hello", subject="Refund")))
    [answer] = sent_to(smtp_server, CUSTOMER)

    outlook = reply_to(answer, "Any news?", In_Reply_To="<AM0PR01MB@eurprd01.outlook.com>")
    mailbox.deliver(bytes(outlook))
    first, second = inbound(client, auth, 2)

    assert second["conversation_id"] == first["conversation_id"]
    assert second["details"]["email"]["thread"] == "references"


def test_reply_token_subject_and_a_new_subject(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("Hello", subject="Delivery address")))
    [answer] = sent_to(smtp_server, CUSTOMER)
    token = email.utils.parseaddr(answer["Reply-To"])[1]

    # no thread headers at all, but written to the Reply-To address (a forward, say)
    mailbox.deliver(bytes(mail("From my phone: same question", subject="Fwd: x", to=token)))
    # no headers, plain address, same subject: "回复:" and "Re:" don't count
    mailbox.deliver(bytes(mail("and one more thing", subject="回复: Re: Delivery address")))
    # another subject: another conversation
    mailbox.deliver(bytes(mail("Hello, I need an invoice", subject="Invoice please")))
    first, by_token, by_subject, other = inbound(client, auth, 4)

    assert [by_token["details"]["email"]["thread"], by_subject["details"]["email"]["thread"]] == [
        "reply-token",
        "subject",
    ]
    assert by_token["conversation_id"] == by_subject["conversation_id"] == first["conversation_id"]
    assert other["conversation_id"] != first["conversation_id"]
    assert other["details"]["email"]["thread"] == "new"


def test_an_agent_reply_is_a_mail_in_the_thread_without_auto_submitted(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("Hello, I want to talk to a person", subject="Broken lamp")))
    [stored] = inbound(client, auth, 1)
    sent_to(smtp_server, CUSTOMER)

    agent_reply(client, auth, stored["conversation_id"], "Hi Ann, a new lamp is on its way.")
    mails = sent_to(smtp_server, CUSTOMER, 2)
    agents = [m for m in mails if "new lamp" in m.get_content()]

    assert len(agents) == 1
    [agent] = agents
    assert agent["Subject"] == "Re: Broken lamp" and "Auto-Submitted" not in agent
    assert agent["In-Reply-To"] == stored["details"]["email"]["message_id"]
    assert stored["details"]["email"]["message_id"] in agent["References"]


# ---- content ---------------------------------------------------------------------------------


def test_html_only_chinese_mail_and_an_attachment_with_a_chinese_name(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox
) -> None:
    client, auth = hub
    message = EmailMessage()
    message["From"] = email.utils.formataddr(("张三", CUSTOMER))
    message["To"] = SUPPORT
    message["Subject"] = "发票问题"
    message["Message-ID"] = "<cn1@customer.test>"
    message.set_content(
        "<html><body><p>你好，</p><p>请问<b>发票</b>什么时候开？</p></body></html>",
        subtype="html",
        charset="gb18030",
    )
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="发票.pdf"
    )
    mailbox.deliver(message.as_bytes())

    [stored] = inbound(client, auth, 1)

    assert "你好" in stored["text"] and "发票" in stored["text"] and "<" not in stored["text"]
    [attachment] = stored["attachments"]
    assert attachment["name"] == "发票.pdf" and attachment["mime_type"] == "application/pdf"
    assert client.get(attachment["url"]).content == b"%PDF-1.4 invoice"
    raw = client.get(stored["details"]["email"]["raw"])
    assert raw.status_code == 200 and b"<cn1@customer.test>" in raw.content
    [conversation] = conversations(client, auth, channel=NAME)
    assert conversation["contact"]["name"] == "张三"


# ---- no loops -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List_Id": "<news.customer.test>"},
        {"X_Autoreply": "yes"},
    ],
    ids=["auto-submitted", "precedence", "list-id", "x-autoreply"],
)
def test_mail_from_machines_is_stored_and_never_answered(
    hub: tuple[TestClient, dict[str, str]],
    mailbox: Mailbox,
    smtp_server: SmtpServer,
    headers: dict[str, str],
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("I am out of the office until Monday.", **headers)))
    mailbox.deliver(bytes(mail("hello", subject="Real question", sender="bob@customer.test")))

    stored = inbound(client, auth, 2)
    sent_to(smtp_server, "bob@customer.test")  # the human got an answer by now

    automated = next(m for m in stored if m["text"].startswith("I am out"))
    assert automated["details"]["email"]["automated"]
    assert [m for m in smtp_server.messages if CUSTOMER in m.rcpt_tos] == []


def test_the_bot_answers_one_sender_only_so_often(
    make_hub: MakeHub, mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = make_hub(channels=[channel(mailbox, smtp_server, auto_reply_limit=2)])
    for i in range(3):
        mailbox.deliver(bytes(mail(f"hello {i}", subject=f"Loop {i}")))

    stored = inbound(client, auth, 3)
    sent_to(smtp_server, CUSTOMER, 2)

    assert "in an hour" in stored[2]["details"]["email"]["automated"]
    assert len([m for m in smtp_server.messages if CUSTOMER in m.rcpt_tos]) == 2


def test_a_bounce_marks_our_mail_failed_and_stores_nothing(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    mailbox.deliver(bytes(mail("Hello", subject="Where is it")))
    [answer] = sent_to(smtp_server, CUSTOMER)
    [stored] = inbound(client, auth, 1)
    original = (FLANKER / "bounce_zed.eml").read_bytes()
    ours = str(answer["Message-ID"]).encode()
    bounce = bounce_for(original, ours)

    mailbox.deliver(bounce)

    def failed() -> list[dict[str, Any]]:
        out = messages(client, auth, stored["conversation_id"])
        return [m for m in out if m["delivery"] == "failed"]

    [marked] = wait_for(failed, "the bounced mail marked failed", WAIT)
    assert marked["delivery_error"].startswith("bounced: 5.1.1")
    assert len(inbound(client, auth, 1)) == 1  # the report itself is not a customer message


def bounce_for(original: bytes, message_id: bytes) -> bytes:
    """flanker's bounce_zed.eml, reporting on our mail `message_id` instead of its own."""
    import re

    found = re.findall(rb"Message-I[dD]: *(<[^>]+>)", original)
    assert found, "the vector quotes the bounced mail's Message-ID"
    bounced = found[-1]
    return original.replace(bounced, message_id)


# ---- delivery --------------------------------------------------------------------------------


def test_smtp_refusals_are_visible_and_temporary_ones_retried(
    hub: tuple[TestClient, dict[str, str]], mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    client, auth = hub
    smtp_server.fail_next("RCPT", "451 4.3.0 Try again later")
    mailbox.deliver(bytes(mail("Hello", subject="First")))
    sent_to(smtp_server, CUSTOMER)  # the retry went through
    [stored] = inbound(client, auth, 1)

    smtp_server.fail_next("RCPT", "550 5.1.1 No such user here")
    agent_reply(client, auth, stored["conversation_id"], "Are you there?")

    def failed() -> list[dict[str, Any]]:
        out = messages(client, auth, stored["conversation_id"])
        return [m for m in out if m["delivery"] == "failed"]

    [refused] = wait_for(failed, "the refused mail marked failed", WAIT)
    assert "550" in refused["delivery_error"] and "No such user" in refused["delivery_error"]
    assert "smtp-secret" not in refused["delivery_error"]


def test_a_restart_neither_loses_nor_repeats_mail(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    mailbox: Mailbox,
    smtp_server: SmtpServer,
) -> None:
    settings = make_settings(sqlite_url, tmp_path, channels=[channel(mailbox, smtp_server)])
    create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        mailbox.deliver(bytes(mail("hello one", subject="One")))
        inbound(client, auth, 1)
        sent_to(smtp_server, CUSTOMER, 1)

    mailbox.deliver(bytes(mail("hello two", subject="Two")))  # arrives while the hub is down
    with client_for(settings, classifier, flows) as client:  # same database, same state
        auth = login(client)
        got = inbound(client, auth, 2)
        sent_to(smtp_server, CUSTOMER, 2)

    assert [m["text"] for m in got] == ["hello one", "hello two"]
    assert len([m for m in smtp_server.messages if CUSTOMER in m.rcpt_tos]) == 2


def test_an_unreachable_or_refused_mailbox_shows_in_readyz(
    make_hub: MakeHub, mailbox: Mailbox, smtp_server: SmtpServer
) -> None:
    wrong = channel(mailbox, smtp_server)
    wrong["imap"] = mailbox.imap_settings(password="not-the-password")
    client, _ = make_hub(channels=[wrong])

    def problem() -> str:
        status = client.get("/readyz").json()["channels"][NAME]
        return "" if status in ("ok", "not connected to the IMAP server yet") else status

    reported = wait_for(problem, "the IMAP failure in /readyz", WAIT)
    assert "IMAP" in reported and "not-the-password" not in reported
    assert client.get("/readyz").status_code == 200  # the other channels serve
