"""channels/email/content.py: what the hub reads from a raw mail. Real mail first: the shared
vectors in tests/fixtures/email/ (talon's and email_reply_parser's replies, flanker's bounces,
SpamScope's GB2312 spam, CPython's test mails) with the results their manifest gives; then
mails built with the stdlib email package, and Chinese clients' reply layouts written here."""

from __future__ import annotations

import base64
import email
import email.iterators
import email.policy
import json
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.email.content import html_to_text, normalize_subject, parse_mail
from channels.email.mime import decode_text, part_text
from channels.email.quotes import reply_text, strip_quotes
from channels.email.reports import Bounce, automated_reason

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mail(text: str) -> bytes:
    """A hand-written mail: headers and body as one string, CRLF line ends as on the wire."""
    return text.lstrip("\n").replace("\n", "\r\n").encode("utf-8")


# ---- charsets -----------------------------------------------------------------------------


def test_gb2312_subject_with_a_gbk_only_byte_decodes_without_replacement_characters() -> None:
    parsed = parse_mail(raw("mail-parser/mail_test_9.eml"))
    assert parsed.subject.startswith("我把镜头拉近些，你们看看这个是什么")
    assert "\ufffd" not in parsed.subject
    assert "\u5c44" in parsed.subject  # the character encoded with the GBK-only byte 0x8C
    # The body is text/html labelled gb2312 with a GBK-only character too.
    assert parsed.text.startswith(
        "http://go2buy.com.cn/ 9065\n\n13:33:39 13:33:39\n\n我把镜头拉近些"
    )
    assert "\ufffd" not in parsed.text
    assert parsed.html is not None and "<HTML>" in parsed.html


def test_gb2312_headers_and_a_utf8_body_mislabelled_gb2312() -> None:
    parsed = parse_mail(raw("mail-parser/mail_test_12.eml"))
    assert parsed.from_name == "张先生"
    assert parsed.from_address == "baoguan@hotmail.com"
    assert parsed.subject == "代开各地增值税发票"
    assert parsed.text.startswith("你好！我公司可代开各类增")
    assert parsed.to == ("danglüe@email.com",)  # raw 8-bit UTF-8 in a header
    assert parsed.date == datetime(2018, 5, 13, 4, 32, 22, tzinfo=UTC)


def test_cpython_msg_10_each_transfer_encoding_decodes() -> None:
    message = email.message_from_bytes(raw("cpython/msg_10.txt"))
    parts = [part_text(p) for p in message.walk() if not p.is_multipart()]
    assert parts == [
        "This is a 7bit encoded message.\n",
        "\u00a1This is a Quoted Printable encoded message!\n",
        "This is a Base64 encoded message.",
        "This is a Base64 encoded message.\n",
        "This has no Content-Transfer-Encoding: header.\n",
    ]
    parsed = parse_mail(raw("cpython/msg_10.txt"))
    assert parsed.html == "\u00a1This is a Quoted Printable encoded message!\n"
    assert parsed.text == (
        "This is a 7bit encoded message.\n\nThis is a Base64 encoded message.\n\n"
        "This is a Base64 encoded message.\n\nThis has no Content-Transfer-Encoding: header."
    )


def test_cpython_msg_07_gif_attachment() -> None:
    parsed = parse_mail(raw("cpython/msg_07.txt"))
    (gif,) = parsed.attachments
    assert (gif.name, gif.mime_type, gif.inline) == ("dingusfish.gif", "image/gif", False)
    assert gif.data.startswith(b"GIF87a") and len(gif.data) == 3512
    assert parsed.text == "Hi there,\n\nThis is the dingus fish."


def test_latin1_name_in_a_raw_8bit_header_is_not_read_as_chinese() -> None:
    assert parse_mail(raw("flanker/from-encoding.eml")).from_name == "Ingo Lütkebohle"


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        ("发票".encode("gbk"), "gb2312", "发票"),
        ("喆".encode("gbk"), "GB2312", "喆"),  # GBK-only: not in GB2312
        ("喆".encode("gbk"), "gbk", "喆"),
        ("你好".encode(), "GB2312", "你好"),  # UTF-8 bytes under a GB2312 label
        ("Müller".encode(), "iso-8859-1", "Müller"),  # UTF-8 under a single-byte label
        ("Müller".encode("latin-1"), "iso-8859-1", "Müller"),
        ("Crème brûlée".encode("cp1252"), "windows-1252", "Crème brûlée"),
        ("你好，世界".encode("gbk"), None, "你好，世界"),
        ("你好，世界".encode("gbk"), "x-unknown-charset", "你好，世界"),
        ("你好".encode(), "base64", "你好"),  # a codec that is no charset is ignored
        ("你好".encode(), "unicode_escape", "你好"),
        ("hello".encode("utf-16"), "utf-16", "hello"),
        ("\ufeffhello".encode(), None, "hello"),
        (b"plain ascii", "utf-8", "plain ascii"),
    ],
)
def test_decode_text(data: bytes, declared: str | None, expected: str) -> None:
    assert decode_text(data, declared) == expected


def test_decode_text_never_raises_on_garbage() -> None:
    garbage = bytes(range(256)) * 40
    assert isinstance(decode_text(garbage, None), str)
    assert isinstance(decode_text(garbage, "us-ascii"), str)
    assert isinstance(decode_text(garbage, "\x00bad label"), str)


def test_rfc2047_character_split_across_two_encoded_words() -> None:
    name = "张先生".encode("gbk")
    first, second = (base64.b64encode(b).decode() for b in (name[:3], name[3:]))
    parsed = parse_mail(
        mail(f"From: =?gbk?B?{first}?=\n =?gbk?B?{second}?= <zhang@example.com>\nSubject: hi\n\nx")
    )
    assert parsed.from_name == "张先生"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?UTF-8?B?Rm9vLCBCYXI=?=", "Foo, Bar"),
        ("=?utf-8?q?caf=C3=A9_au_lait?=", "café au lait"),
        ("=?utf-8?Q?a?= =?utf-8?Q?b?= c", "ab c"),  # space between words isn't text
        ("=?GB2312?B?tPq/qrj3tdjU9ta1y7C3osax?=", "代开各地增值税发票"),
        ("=?utf-8?B?5L2g5aW9?=", "你好"),  # missing padding
        ("=?unknown-8bit?Q?caf=C3=A9?=", "café"),
        ("=?utf-8?B?!!!?=", ""),
        ("Re: =?utf-8*zh?B?5L2g5aW9?=", "Re: 你好"),  # RFC 2231 language suffix
    ],
)
def test_encoded_word_subjects(header: str, expected: str) -> None:
    assert parse_mail(mail(f"Subject: {header}\n\nbody")).subject == expected


# ---- headers ------------------------------------------------------------------------------


def test_ids_addresses_and_date() -> None:
    parsed = parse_mail(
        mail(
            """
Message-ID: < abc123@mail.example.com >
In-Reply-To: <p2@example.com> (Zhang's message of Sunday)
References: <p0@example.com>
 <p1@example.com>	<p2@example.com>
From: "Zhang, San" <Zhang.San@Example.COM>
Reply-To: Support <Help@Example.com>, other@example.com
To: =?utf-8?B?5a6i5pyN?= <support@shop.example>, undisclosed-recipients:;
Cc: a@b.example
Date: Sun, 5 Nov 2023 10:00:00 +0800
Subject: Re: =?utf-8?B?6K6i5Y2V?=
  folded

hi
"""
        )
    )
    assert parsed.message_id == "<abc123@mail.example.com>"
    assert parsed.in_reply_to == ("<p2@example.com>",)
    assert parsed.references == ("<p0@example.com>", "<p1@example.com>", "<p2@example.com>")
    assert (parsed.from_name, parsed.from_address) == ("Zhang, San", "zhang.san@example.com")
    assert parsed.reply_to == ("help@example.com", "other@example.com")
    assert parsed.to == ("support@shop.example",)
    assert parsed.cc == ("a@b.example",)
    assert parsed.date == datetime(2023, 11, 5, 2, 0, tzinfo=UTC)
    assert parsed.subject == "Re: 订单 folded"


def test_missing_headers_and_bad_date() -> None:
    parsed = parse_mail(mail("Date: Mon, 99 Foo 99999 99:99:99 +9999\n\nhello"))
    assert (parsed.message_id, parsed.from_address, parsed.from_name, parsed.date) == (None,) * 4
    assert (parsed.subject, parsed.to, parsed.references) == ("", (), ())
    assert parsed.text == "hello"


def test_a_date_without_zone_is_utc() -> None:
    parsed = parse_mail(mail("Date: Sun, 5 Nov 2023 10:00:00 -0000\n\nx"))
    assert parsed.date == datetime(2023, 11, 5, 10, 0, tzinfo=UTC)


def test_bare_message_ids_are_bracketed() -> None:
    parsed = parse_mail(mail("Message-ID: abc@example.com\nReferences: a@x b@y\n\nx"))
    assert parsed.message_id == "<abc@example.com>"
    assert parsed.references == ("<a@x>", "<b@y>")


# ---- HTML ---------------------------------------------------------------------------------

HTML = """<html><head><style>p { color: red }</style><script>var secret = 1;</script>
<title>Order</title></head><body>
<div>Hello&nbsp;&amp; welcome,<br>second    line</div>
<p>Para  one</p><p>Para two</p>
<ul><li>first</li><li>second <b>bold</b></li></ul>
<ol><li>uno</li><li>dos</li></ol>
<p>See <a href="https://shop.example.com/o/1">your order</a>, <a href="https://shop.example.com/">shop.example.com</a>
or <a href="mailto:help@shop.example.com">help@shop.example.com</a>.</p>
<table><tr><td>Item</td><td>Qty</td></tr><tr><td>Tea</td><td>2</td></tr></table>
<div><br><br><br><br></div>
<p>5 &lt; 6 &#20320;&#22909; &eacute;</p>
</body></html>"""


def test_html_to_text() -> None:
    assert html_to_text(HTML) == (
        "Hello & welcome,\nsecond line\n\nPara one\n\nPara two\n\n- first\n- second bold\n"
        "1. uno\n2. dos\n\nSee your order (https://shop.example.com/o/1), shop.example.com or "
        "help@shop.example.com.\n\nItem Qty\nTea 2\n\n5 < 6 你好 é"
    )


def test_html_only_mail_becomes_clean_text() -> None:
    message = EmailMessage()
    message["From"] = "客户 <customer@example.com>"
    message["Subject"] = "订单"
    message.set_content(
        "<p>您好，<br>我的订单<b>20231105</b>还没到。</p><p>谢谢</p>", subtype="html"
    )
    parsed = parse_mail(message.as_bytes())
    assert parsed.text == "您好，\n我的订单20231105还没到。\n\n谢谢"
    assert parsed.html is not None and "<b>20231105</b>" in parsed.html


def test_plain_text_is_preferred_to_html() -> None:
    message = EmailMessage()
    message.set_content("the plain one")
    message.add_alternative("<p>the <i>html</i> one</p>", subtype="html")
    parsed = parse_mail(message.as_bytes())
    assert parsed.text == "the plain one"
    assert parsed.html == "<p>the <i>html</i> one</p>\n"


def test_hostile_html() -> None:
    assert html_to_text("<div>" * 100_000 + "x") is not None
    assert html_to_text("") == ""
    assert html_to_text("<?xml version='1.0' encoding='utf-8'?><p>hi</p>") == "hi"
    assert "\x00" not in html_to_text("a\x00b<a href='x'>")
    assert (
        html_to_text("<p>unclosed <a href='https://x.example'>link")
        == "unclosed link (https://x.example)"
    )


# ---- quoted replies and signatures ---------------------------------------------------------

TALON = sorted(p.name for p in (FIXTURES / "talon_standard_replies").glob("*.eml"))


def test_the_talon_vectors_are_all_here() -> None:
    assert len(TALON) == 12


@pytest.mark.parametrize("name", TALON)
def test_talon_standard_replies(name: str) -> None:
    """As talon's test_standard_replies: the first text/plain part without its quotation is
    <name>_reply_text if present, else "Hello". reply_text also drops the signature."""
    path = FIXTURES / "talon_standard_replies" / name
    message = email.message_from_bytes(path.read_bytes())
    body = next(email.iterators.typed_subpart_iterator(message, subtype="plain"))
    expected_file = path.with_name(path.stem + "_reply_text")
    expected = expected_file.read_text().strip() if expected_file.exists() else "Hello"
    assert strip_quotes(part_text(body)) == expected
    assert reply_text(parse_mail(path.read_bytes()).text) == "Hello"


@pytest.mark.parametrize(
    "name", [n for n in TALON if b"text/html" in raw(f"talon_standard_replies/{n}")]
)
def test_talon_html_parts_as_text_lose_their_quotes_too(name: str) -> None:
    """The same replies from their HTML part, as a customer whose client sends only HTML."""
    message = email.message_from_bytes(raw(f"talon_standard_replies/{name}"))
    (html,) = (p for p in message.walk() if p.get_content_type() == "text/html")
    expected = "Allo! Follow up MIME!" if name == "outlook.eml" else "Hello"  # its HTML differs
    assert reply_text(html_to_text(part_text(html))) == expected


REPLY_PARSER = MANIFEST["quoted_reply_stripping"]["email-reply-parser/*.txt"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [(k.split(" ")[0], v) for k, v in REPLY_PARSER["expected_exact"].items()],
)
def test_email_reply_parser_exact(name: str, expected: str) -> None:
    assert reply_text((FIXTURES / "email-reply-parser" / name).read_text()) == expected


def reply_of(name: str) -> str:
    return reply_text((FIXTURES / "email-reply-parser" / name).read_text())


def test_email_reply_parser_contains() -> None:
    assert "Sent from my iPhone" not in reply_of("email_iPhone.txt")
    assert "You can list the keys for the bucket" in reply_of("email_1_2.txt")
    started = time.monotonic()
    assert reply_of("pathological.txt").startswith("I think you're onto something.")
    assert time.monotonic() - started < 5  # a hang guard, not a speed claim


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("correct_sig.txt", "this is an email with a correct -- signature."),
        ("email_1_4.txt", "Awesome! I haven't had another problem with it."),
        ("email_1_7.txt", ":+1:"),
        ("email_BlackBerry.txt", "Here is another email"),
        ("email_multi_word_sent_from_my_mobile_device.txt", "Here is another email"),
        (
            "email_sent_from_my_not_signature.txt",
            "Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
        ),
        (
            "email_1_6.txt",  # "On … <address>\nwrote:" over three lines
            "I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
        ),
        (
            "email_sig_delimiter_in_middle_of_line.txt",
            "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai",
        ),
    ],
)
def test_email_reply_parser_more(name: str, expected: str) -> None:
    assert reply_of(name) == expected


def test_on_at_the_start_of_a_sentence_is_not_an_attribution() -> None:
    for name in ("greedy_on.txt", "email_partial_quote_header.txt"):
        reply = reply_of(name)
        assert reply.startswith("On your remote host you can run:\n\n     telnet 127.0.0.1 52698")
        assert reply.endswith("fails, the tunnel is not working.")


def test_replies_written_between_and_below_quotes_are_kept() -> None:
    reply = reply_of("email_1_8.txt")
    assert reply == "I will reply under this one\n\n\nand under this."
    assert strip_quotes("On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi\nHello") == "Hello"


# Chinese clients' reply layouts, as they put them in text/plain (or html_to_text makes them).
CHINESE_REPLIES = {
    "qq_mail": """好的，谢谢！

------------------ 原始邮件 ------------------
发件人: "客服"<support@shop.example>;
发送时间: 2023年11月5日(星期天) 上午10:00
收件人: "张三"<zhangsan@qq.com>;
主题: 回复：订单问题

您好，您的订单已发货。
""",
    "foxmail": """收到，我再看看。



------------------ Original ------------------
From:  "客服"<support@shop.example>;
Date:  Sun, Nov 5, 2023 10:00 AM
To:  "张三"<zhangsan@foxmail.com>;
Subject:  订单问题

您好，您的订单已发货。
""",
    "outlook_zh_cn": """收到，谢谢。

发件人: 客服 <support@shop.example>
发送时间: 2023年11月5日 10:00
收件人: 张三 <zhangsan@example.com>
抄送: 李四 <lisi@example.com>
主题: 订单问题

您好，您的订单已发货。
""",
    "outlook_zh_cn_underscores": """收到，谢谢。

________________________________
发件人: 客服 <support@shop.example>
发送时间: 2023年11月5日 10:00
收件人: 张三 <zhangsan@example.com>
主题: 订单问题

您好，您的订单已发货。
""",
    "outlook_zh_tw": """收到，謝謝。

寄件者: 客服 <support@shop.example>
寄件日期: 2023年11月5日 上午 10:00
收件者: 張三 <zhangsan@example.com>
主旨: 訂單問題

您好，您的訂單已出貨。
""",
    "163_mail": """我明天再试试。


在 2023-11-05 10:00:00，"客服" <support@shop.example> 写道：
>您好，您的订单已发货。
""",
    "163_original": """我明天再试试。

-----原始邮件-----
发件人："客服" <support@shop.example>
发送时间：2023-11-05 10:00:00 (星期日)
收件人："张三" <zhangsan@163.com>
主题：订单问题

您好，您的订单已发货。
""",
    "gmail_zh": """可以的。

张三 <zhangsan@example.com> 于2023年11月5日周日 10:00写道：

> 您好，您的订单已发货。
""",
    "gmail_zh_wrapped": """可以的。

张三 <zhangsan@example.com> 于2023年11月5日周日
10:00写道：

> 您好，您的订单已发货。
""",
    "apple_mail_zh": """可以的。

> 2023年11月5日 10:00，客服 <support@shop.example> 写道：
>
> 您好，您的订单已发货。
""",
    "qq_mobile": """可以的。
在 2023年11月5日 周日 10:00，张三 <zhangsan@qq.com> 写道：
您好，您的订单已发货。
""",
}


def test_outlook_header_block_without_addresses() -> None:
    text = "Thanks, will do.\n\nFrom: Zhang San\nSent: Monday, November 6, 2023 10:00 AM\nTo: Li Si\nSubject: RE: order\n\nPlease check."
    assert reply_text(text) == "Thanks, will do."


@pytest.mark.parametrize("layout", sorted(CHINESE_REPLIES))
def test_chinese_client_replies(layout: str) -> None:
    reply = reply_text(CHINESE_REPLIES[layout])
    assert reply in (
        "好的，谢谢！",
        "收到，我再看看。",
        "收到，谢谢。",
        "收到，謝謝。",
        "我明天再试试。",
        "可以的。",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("好的\n\n发自我的iPhone", "好的"),
        ("好的\n\n发自我的华为手机\n", "好的"),
        ("好的\n\n发自我的 iPad", "好的"),
        ("Sure.\n\nSent from my Android", "Sure."),
        ("Sure.\n\nGet Outlook for iOS", "Sure."),
        ("Sure.\n\n-- \nZhang San\nKefu Shop", "Sure."),
        ("好的\n\n发自网易邮箱大师", "好的"),
        (
            "Sure.\nSent from my iPhone\n\nOn 5 Nov 2023, at 10:00, Shop <s@shop.example> wrote:\n> hi",
            "Sure.",
        ),
    ],
)
def test_signatures(text: str, expected: str) -> None:
    assert reply_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "On second thought, here is what I wrote:\nthe invoice is wrong.",
        "My colleague wrote: the invoice is wrong.\nPlease check.",
        "他在信里写道：\n东西坏了。",
        "From: my account page\nI can't log in.",
        "From: Beijing\nTo: Shanghai\nDate: Monday\n\nWhere is my parcel?",
        "On 5 Nov I wrote:\nthe invoice is wrong.",
        "Please use -- as a separator.\nThanks",
        "来自北京的客户",
    ],
)
def test_legitimate_text_is_kept(text: str) -> None:
    assert reply_text(text) == text


def test_a_forward_is_not_a_quote() -> None:
    text = "FYI\n\n---------- Forwarded message ---------\nFrom: Shop <s@shop.example>\nDate: Sun, Nov 5, 2023\nSubject: Order\n\nYour order shipped."
    assert "FYI" in reply_text(text)


# ---- subjects -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: RE: Fwd: FW: Fw: 回复: 回覆：答复: 转发: 轉寄：  Order   #123", "order #123"),
        ("RE：你好", "你好"),
        ("Re[2]: Re (3): hi", "hi"),
        ("Re : Fwd :hello", "hello"),
        ("[External] Re: Hello", "[external] re: hello"),
        ("Reply needed", "reply needed"),
        ("Refund", "refund"),
        ("  ", ""),
        ("Straße", "strasse"),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


# ---- attachments --------------------------------------------------------------------------


def multipart(*parts: str) -> bytes:
    body = "".join(f"--B\n{p.strip()}\n\n" for p in parts)
    return mail(f"From: a@example.com\nContent-Type: multipart/mixed; boundary=B\n\n{body}--B--\n")


ATTACHMENT_HEADERS = {
    "rfc2231": "Content-Disposition: attachment; filename*=UTF-8''%E5%8F%91%E7%A5%A8.pdf",
    "rfc2231 continuations": (
        "Content-Disposition: attachment;\n filename*0*=UTF-8''%E5%8F%91;\n filename*1*=%E7%A5%A8.pdf"
    ),
    "rfc2231 plain continuations": (
        'Content-Disposition: attachment; filename*0="发"; filename*1="票.pdf"'
    ),
    "rfc2231 wins over filename": (
        "Content-Disposition: attachment; filename=\"fapiao.pdf\"; filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf"
    ),
    "rfc2047": 'Content-Disposition: attachment; filename="=?UTF-8?B?5Y+R56WoLnBkZg==?="',
    "rfc2047 gb2312": 'Content-Disposition: attachment; filename="=?gb2312?B?t6LGsQ==?=.pdf"',
    "raw utf-8": 'Content-Disposition: attachment; filename="发票.pdf"',
    "content-type name": "Content-Disposition: attachment",
    "path": 'Content-Disposition: attachment; filename="../../发票.pdf"',
}


@pytest.mark.parametrize("case", sorted(ATTACHMENT_HEADERS))
def test_attachment_names(case: str) -> None:
    ctype = (
        'application/pdf; name="=?UTF-8?B?5Y+R56Wo?=.pdf"'
        if case == "content-type name"
        else "application/pdf"
    )
    parsed = parse_mail(
        multipart(
            "Content-Type: text/plain; charset=utf-8\n\nsee attached",
            f"Content-Type: {ctype}\n{ATTACHMENT_HEADERS[case]}\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK",
        )
    )
    assert parsed.text == "see attached"
    (pdf,) = parsed.attachments
    assert (pdf.name, pdf.mime_type, pdf.data, pdf.inline) == (
        "发票.pdf",
        "application/pdf",
        b"%PDF-1.4\n",
        False,
    )


def test_stdlib_built_attachments_with_long_chinese_names() -> None:
    long_name = "二〇二三年十一月增值税专用发票（第一联）扫描件" * 3 + ".pdf"
    message = EmailMessage()
    message.set_content("见附件")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="发票.pdf")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename=long_name)
    raw_mail = message.as_bytes(policy=email.policy.SMTP)
    assert b"filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf" in raw_mail
    assert b"filename*0*=" in raw_mail
    parsed = parse_mail(raw_mail)
    assert [a.name for a in parsed.attachments] == ["发票.pdf", long_name]
    assert parsed.text == "见附件"


def test_inline_image_in_html_is_flagged_inline() -> None:
    message = EmailMessage()
    message.set_content("see the picture")
    message.add_alternative('<p>see <img src="cid:logo@shop"></p>', subtype="html")
    html_part = message.get_payload()[1]
    html_part.add_related(
        b"\x89PNG", "image", "png", cid="<logo@shop>", filename="logo.png", disposition="inline"
    )
    message.add_attachment(b"GIF89a", maintype="image", subtype="gif", filename="photo.gif")
    parsed = parse_mail(message.as_bytes())
    assert parsed.text == "see the picture"
    logo, photo = parsed.attachments
    assert (logo.name, logo.inline, logo.content_id, logo.data) == (
        "logo.png",
        True,
        "logo@shop",
        b"\x89PNG",
    )
    assert (photo.name, photo.inline, photo.content_id) == ("photo.gif", False, None)


def test_outlook_inline_image_without_disposition() -> None:
    parsed = parse_mail(
        mail(
            """
Content-Type: multipart/related; boundary=R

--R
Content-Type: text/html; charset=utf-8

<p>logo: <img src="cid:image001.png@01DA0F00.12345670"></p>
--R
Content-Type: image/png; name="image001.png"
Content-ID: <image001.png@01DA0F00.12345670>
Content-Transfer-Encoding: base64

iVBORw==
--R--
"""
        )
    )
    assert parsed.text == "logo:"
    (image,) = parsed.attachments
    assert (image.name, image.inline, image.content_id) == (
        "image001.png",
        True,
        "image001.png@01DA0F00.12345670",
    )


def test_vector_attachments() -> None:
    (photo,) = parse_mail(raw("flanker/iphone.eml")).attachments
    assert (photo.name, photo.mime_type, photo.inline) == ("photo.JPG", "image/jpeg", False)
    assert photo.data.startswith(b"\xff\xd8")
    parsed = parse_mail(raw("flanker/attached-pdf.eml"))
    assert parsed.text == "Test - body content"
    (pdf,) = parsed.attachments
    assert (pdf.name, pdf.mime_type) == ("test.pdf", "application/pdf")
    assert pdf.data.startswith(b"%PDF-1.3")


def test_an_attached_mail_is_one_attachment_not_body() -> None:
    inner = EmailMessage()
    inner["Subject"] = "the forwarded one"
    inner.set_content("inner body")
    outer = EmailMessage()
    outer.set_content("outer body")
    outer.add_attachment(inner)
    parsed = parse_mail(outer.as_bytes())
    assert parsed.text == "outer body"
    (attached,) = parsed.attachments
    assert attached.mime_type == "message/rfc822"
    assert b"inner body" in attached.data


# ---- machine-sent mail --------------------------------------------------------------------

AUTOMATED = {
    "flanker/bounce_zed.eml": "report: delivery-status",
    "flanker/bounce_mailbox-full.eml": "report: delivery-status",
    "flanker/bounce_office365.eml": "report: delivery-status",
    "flanker/bounce_delayed.eml": "report: delivery-status",
    "flanker/bounce_gmail-invalid-address.eml": "null return-path",
    "flanker/complaints_yahoo.eml": "report: feedback-report",
    "flanker/disposition-notification.eml": "report: disposition-notification",
    "flanker/from-encoding.eml": "precedence: bulk",
    "flanker/iphone.eml": None,
    "flanker/quoted-printable.eml": None,
    "flanker/attached-pdf.eml": None,
    "flanker/encoded-header.eml": None,
    "cpython/msg_16.txt": "report: delivery-status",
}


def test_every_bounce_vector_has_an_expectation() -> None:
    listed = MANIFEST["bounces_autoreplies"]["flanker/*.eml"]["expected"]
    names = {f"flanker/{n}" for key in listed for n in key.split("/") if n.endswith(".eml")}
    assert names | {"cpython/msg_16.txt"} == set(AUTOMATED)


@pytest.mark.parametrize("name", sorted(AUTOMATED))
def test_automated_reason_of_the_vectors(name: str) -> None:
    assert automated_reason(email.message_from_bytes(raw(name))) == AUTOMATED[name]
    assert parse_mail(raw(name)).automated == AUTOMATED[name]


def test_the_other_signals_of_bounce_zed_count_alone() -> None:
    message = email.message_from_bytes(raw("flanker/bounce_zed.eml"))
    message.replace_header("Content-Type", "multipart/mixed")
    assert automated_reason(message) == "auto-submitted: auto-replied"
    del message["Auto-Submitted"]
    assert automated_reason(message) == "null return-path"
    del message["Return-Path"]
    assert automated_reason(message) == "sender: mailer-daemon"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Auto-Submitted: auto-replied", "auto-submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y", "auto-submitted: auto-generated"),
        ("Auto-Submitted: no", None),
        ("Auto-Submitted: No (a person)", None),
        ("Precedence: bulk", "precedence: bulk"),
        ("Precedence: junk", "precedence: junk"),
        ("Precedence: list", "precedence: list"),
        ("Precedence: first-class", None),
        ("List-Id: Shop news <news.shop.example>", "list-id"),
        ("List-Unsubscribe: <mailto:unsubscribe@shop.example>", "list-unsubscribe"),
        ("Return-Path: <>", "null return-path"),
        ("Return-Path: <customer@example.com>", None),
        ("X-Autoreply: yes", "x-autoreply"),
        ("X-Autorespond: vacation", "x-autorespond"),
        ("X-Auto-Response-Suppress: All", "x-auto-response-suppress: all"),
        (
            "X-Auto-Response-Suppress: DR, OOF, AutoReply",
            "x-auto-response-suppress: dr, oof, autoreply",
        ),
        ("X-Auto-Response-Suppress: DR, RN", None),
        (
            "X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent",
            "x-ms-exchange-generated-message-source",
        ),
    ],
)
def test_automated_reason_headers(headers: str, expected: str | None) -> None:
    message = email.message_from_bytes(mail(f"From: Zhang <zhang@example.com>\n{headers}\n\nhi"))
    assert automated_reason(message) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("MAILER-DAEMON@example.com", "sender: mailer-daemon"),
        ("postmaster@163.com", "sender: postmaster"),
        ("noreply@shop.example", "sender: noreply"),
        ("No-Reply@shop.example", "sender: no-reply"),
        ("do-not-reply@shop.example", "sender: do-not-reply"),
        ("noreply+orders@shop.example", "sender: noreply+orders"),
        ("replies@shop.example", None),
        ("norris@example.com", None),
    ],
)
def test_automated_reason_senders(sender: str, expected: str | None) -> None:
    message = email.message_from_bytes(mail(f"From: {sender}\n\nhi"))
    assert automated_reason(message) == expected


def test_a_person_s_mail_is_not_automated() -> None:
    message = EmailMessage()
    message["From"] = "张三 <zhangsan@example.com>"
    message["To"] = "support@shop.example"
    message["Subject"] = "订单问题"
    message.set_content("我的订单还没到")
    assert parse_mail(message.as_bytes()).automated is None


# ---- delivery reports ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "flanker/bounce_zed.eml",
            Bounce(
                kind="bounce",
                status="5.1.1",
                recipients=("asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",),
                original_message_ids=("<20090708054735.GC7578@example.com>",),
                diagnostic="550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. Learn more at 550 5.1.1 http://mail.google.com/support/bin/answer.py?answer=6596 17si20661415yxe.22",
            ),
        ),
        (
            "flanker/bounce_delayed.eml",
            Bounce("delay", "4.0.0", ("foo@example.com",), (), "426 connection timed out"),
        ),
        (
            "flanker/bounce_mailbox-full.eml",
            Bounce(
                "bounce",
                "5.2.2",
                ("user@aol.com",),
                ("<4E326A95.3010907@example.com>",),  # from text/rfc822-headers
                "552 5.2.2 E4.12 user MAILBOX FULL",
            ),
        ),
        (
            "flanker/bounce_office365.eml",
            Bounce(
                "bounce",
                "5.1.10",
                ("noname@example.com",),
                ("<20171013111011.20866.254C2F3A4D7AA526@ninomail.com>",),
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient noname@example.com not found by SMTP address lookup",
            ),
        ),
        (
            "flanker/bounce_gmail-invalid-address.eml",  # no multipart/report
            Bounce(
                "bounce",
                "5.1.0",
                ("awfawfawfawfawfaw@someserverhere.com",),
                ("<CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com>",),
                "550 5.1.0 Recipient rejected: <awfawfawfawfawfaw@someserverhere.com>",
            ),
        ),
        (
            "flanker/complaints_yahoo.eml",
            Bounce(
                "complaint",
                None,
                ("user@yahoo.com",),
                ("<20120711015015.4A8BE2E088E@www.example.com>",),
                "abuse",
            ),
        ),
        (
            "flanker/disposition-notification.eml",
            Bounce(
                "receipt",
                None,
                ("joe_recipient@example.com",),
                ("<199509192301.23456@example.org>",),
                "manual-action/MDN-sent-manually; displayed",
            ),
        ),
        (
            "cpython/msg_16.txt",
            Bounce(
                "bounce",
                "5.0.0",
                ("jangel1@cougar.noc.ucla.edu",),
                ("<002001c144a6$8752e060$56104586@oxy.edu>",),
                "recipient reached disk quota",
            ),
        ),
    ],
)
def test_delivery_reports(name: str, expected: Bounce) -> None:
    assert parse_mail(raw(name)).bounce == expected


@pytest.mark.parametrize(
    "name",
    [
        "flanker/iphone.eml",
        "flanker/quoted-printable.eml",
        "flanker/attached-pdf.eml",
        "flanker/encoded-header.eml",
        "flanker/from-encoding.eml",
    ],
)
def test_mail_from_people_and_lists_is_no_report(name: str) -> None:
    assert parse_mail(raw(name)).bounce is None


def test_a_vacation_reply_is_automated_but_no_bounce() -> None:
    parsed = parse_mail(
        mail(
            "Return-Path: <>\nFrom: Zhang <zhang@example.com>\nAuto-Submitted: auto-replied\nSubject: 自动回复: 订单\n\n我在休假。"
        )
    )
    assert parsed.automated == "auto-submitted: auto-replied"
    assert parsed.bounce is None


def test_a_success_dsn_is_delivered() -> None:
    parsed = parse_mail(
        mail(
            """
From: MAILER-DAEMON@mx.example
Content-Type: multipart/report; report-type=delivery-status; boundary=R

--R
Content-Type: text/plain

Your message was delivered.
--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; Zhang@Example.com
Action: delivered
Status: 2.0.0
--R
Content-Type: text/rfc822-headers

Message-ID: <ours-1@kefu.example>
Subject: hello
--R--
"""
        )
    )
    assert parsed.bounce == Bounce(
        "delivered", "2.0.0", ("zhang@example.com",), ("<ours-1@kefu.example>",), None
    )
    assert parsed.text == "Your message was delivered."


def test_a_chinese_provider_bounce_without_report() -> None:
    parsed = parse_mail(
        mail(
            """
From: postmaster@163.com
To: support@shop.example
Subject: 系统退信
Content-Type: text/plain; charset=utf-8

很抱歉，您的邮件无法送达。
收件人：nobody@163.com
错误：550 5.1.1 User not found

----- 原始邮件 -----
Message-ID: <ours-2@kefu.example>
References: <ours-1@kefu.example>
Subject: 回复：订单
"""
        )
    )
    assert parsed.bounce is not None
    assert (parsed.bounce.kind, parsed.bounce.status) == ("bounce", "5.1.1")
    assert parsed.bounce.original_message_ids == ("<ours-2@kefu.example>", "<ours-1@kefu.example>")
    assert parsed.bounce.diagnostic == "错误：550 5.1.1 User not found"


# ---- hostile input ------------------------------------------------------------------------

HOSTILE = {
    "empty": b"",
    "garbage": bytes(range(256)) * 64,
    "truncated": raw("flanker/bounce_zed.eml")[:1500],
    "truncated in base64": raw("cpython/msg_07.txt")[:2000],
    "no headers": b"just some text\r\nwith two lines\r\n",
    "only headers": b"Subject: hi\r\nFrom: a@b.example",
    "multipart without boundary": mail("Content-Type: multipart/mixed\n\nhello there"),
    "multipart with a missing end": mail(
        "Content-Type: multipart/mixed; boundary=X\n\n--X\nContent-Type: text/plain\n\nhello"
    ),
    "bad charset labels": mail(
        'Content-Type: text/plain; charset="\x01\x02"\nSubject: =?base64?B?aGk=?=\n\nhello'
    ),
    "unknown transfer encoding": mail("Content-Transfer-Encoding: x-weird\n\nhello"),
    "uuencode": mail("Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a.txt\n#86)C\n`\nend"),
    "broken base64": mail("Content-Transfer-Encoding: base64\n\n!!!!====hello"),
    "nul bytes": b"Subject: a\x00b\r\n\r\nbody\x00text",
    "outlook .msg file": raw("mail-parser/mail_outlook_1.eml"),
    "2 MB single line": mail("Subject: big\n\n") + b"x" * 2_000_000,
    "2 MB header": b"Subject: " + b"y" * 2_000_000 + b"\r\n\r\nbody",
    "2 MB of encoded words": b"Subject: " + b"=?utf-8?B?5L2g?= " * 100_000 + b"\r\n\r\nbody",
    "deep multipart": b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
    + b"".join(b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" for _ in range(2000)),
    "deep message/rfc822": b"Content-Type: message/rfc822\r\n\r\n" * 300
    + b"Subject: inner\r\n\r\ninner",
    "bad report": mail(
        "Content-Type: multipart/report; boundary=R\n\n--R\n\nx\n--R\nContent-Type: message/delivery-status\n\n\x00\x01\n--R--"
    ),
    "report without parts": mail(
        "From: MAILER-DAEMON@x.example\nReturn-Path: <>\nContent-Type: multipart/report\n\n"
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_gives_a_sane_result(case: str) -> None:
    started = time.monotonic()
    parsed = parse_mail(HOSTILE[case])
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)
    assert "\x00" not in parsed.text + parsed.subject
    assert all(isinstance(a.data, bytes) for a in parsed.attachments)
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert len(parsed.subject) <= 20_000
    reply_text(parsed.text)
    assert time.monotonic() - started < 5  # a hang guard, not a speed claim


def test_an_8bit_part_with_a_nul_in_its_charset_label_is_still_read() -> None:
    """Found by fuzzing: the stdlib's get_payload() of such a part raises ValueError, which
    made the whole mail unreadable (subject and text lost)."""
    parsed = parse_mail(
        b'Subject: hi\r\nContent-Type: text/plain; charset="a\x00b"\r\n\r\n\xe4\xbd\xa0\xe5\xa5\xbd'
    )
    assert (parsed.subject, parsed.text) == ("hi", "你好")


def test_hostile_input_keeps_what_can_be_read() -> None:
    assert parse_mail(HOSTILE["no headers"]).text == "just some text\nwith two lines"
    assert parse_mail(HOSTILE["multipart without boundary"]).text == "hello there"
    assert parse_mail(HOSTILE["multipart with a missing end"]).text == "hello"
    assert parse_mail(HOSTILE["2 MB single line"]).text == "x" * 2_000_000
    assert parse_mail(HOSTILE["nul bytes"]).text == "bodytext"
    assert parse_mail(HOSTILE["truncated"]).from_address == "mailer-daemon@example.com.com"
