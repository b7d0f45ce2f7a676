#!/usr/bin/env python3
"""A real SMTP server for logdaemon's tests, on a loopback port.

Each accepted message is stored in DIR/mailbox/ as NNNNNN.eml (the bytes
received) and NNNNNN.json (envelope plus the message as parsed by Python's
`email` package: headers, decoded body, MIME details, defects). Both are
written before the server answers 250, so a client that got 250 finds its
message there.

Behaviour is read from DIR/control.json at every command, so a test can
change it while the server runs:
  {"mode": "accept" | "tempfail",       # tempfail: 451 to MAIL FROM
   "reject": ["addr", ...],             # 550 to RCPT TO for these
   "delay_after_store_ms": 0}           # wait after storing, before 250

Usage: server.py DIR [--port N] [--tls none|starttls|implicit --cert PEM
--key PEM] [--auth-file FILE]. With --tls starttls the server offers and
requires STARTTLS; with implicit it speaks TLS from the first byte. With
--auth-file (two lines: user, password) it requires AUTH (over TLS).
Prints "PORT n" once listening. Exits when its standard input closes (the
test that started it is gone).
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, root):
        self.control = os.path.join(root, "control.json")
        self.mailbox = os.path.join(root, "mailbox")
        os.makedirs(self.mailbox, exist_ok=True)
        self.count = len([n for n in os.listdir(self.mailbox) if n.endswith(".json")])

    def ctl(self):
        try:
            with open(self.control) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.ctl().get("mode") == "tempfail":
            return "451 4.3.0 Try again later (test server in tempfail mode)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.ctl().get("reject", []):
            return "550 5.1.1 <%s>: Recipient address rejected (test server)" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        self.count += 1
        stem = os.path.join(self.mailbox, "%06d" % self.count)
        write(stem + ".eml", raw)
        info = describe(envelope, raw, stem + ".eml")
        info["tls"] = bool(session.ssl) or server.transport.get_extra_info("ssl_object") is not None
        info["authenticated"] = bool(session.authenticated)
        write(stem + ".json", json.dumps(info).encode())
        delay = self.ctl().get("delay_after_store_ms", 0)
        if delay:
            await asyncio.sleep(delay / 1000.0)
        return "250 2.0.0 Message accepted"


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def describe(envelope, raw, eml):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [repr(d) for d in msg.defects]
    headers = []
    for k, v in msg.items():
        headers.append([k, str(v)])
        defects.extend(repr(d) for d in getattr(v, "defects", ()))
    body = None
    if not msg.is_multipart():
        try:
            # The wire has CRLF line ends; tests compare text with LF.
            body = msg.get_content().replace("\r\n", "\n")
        except Exception as e:  # reported, and the test fails on it
            defects.append("body: %r" % e)
    return {
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "headers": headers,
        "content_type": msg.get_content_type(),
        "charset": msg.get_content_charset(),
        "body": body,
        "defects": defects,
        "eml": eml,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth-file")
    args = ap.parse_args()
    # aiosmtpd warns about its own use of a deprecated attribute on AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    handler = Handler(args.dir)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
    authenticator = None
    if args.auth_file:
        with open(args.auth_file) as f:
            user, password = f.read().splitlines()[:2]

        def authenticator(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            return AuthResult(success=ok, handled=False)

    def factory():
        return SMTP(
            handler,
            enable_SMTPUTF8=True,
            hostname="logdaemon-test-smtp",
            tls_context=ctx if args.tls == "starttls" else None,
            require_starttls=args.tls == "starttls",
            authenticator=authenticator,
            auth_required=authenticator is not None,
            auth_require_tls=True,
            loop=loop,
        )

    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host="127.0.0.1",
            port=args.port,
            reuse_address=True,
            ssl=ctx if args.tls == "implicit" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)

    def watch_stdin():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.run_forever()


if __name__ == "__main__":
    main()
