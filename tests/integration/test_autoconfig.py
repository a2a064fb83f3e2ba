"""Client setup documents (issue 14): Thunderbird's autoconfig XML, Outlook's
autodiscover answer and an Apple profile, served by the admin without a login
and on Admin.Autoconfig's own listener; a POP3 client that follows them logs
in."""

import plistlib
import poplib
import ssl
import xml.etree.ElementTree as ET

import pytest

from admin_testlib import Admin, wait_port, with_admin
from posuto_testlib import USER1, free_port, sample_message

AD_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
    'outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress>'
    '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/'
    'autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
    '</Request></Autodiscover>')
AD_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"

# What Thunderbird's parser (comm-central, mailnews/base/src/
# accountcreation: readFromXML.sys.mjs) accepts for the fields it reads.
TB_SOCKET = {"plain", "SSL", "STARTTLS"}
TB_AUTH = {"password-cleartext", "plain", "password-encrypted", "secure",
           "GSSAPI", "NTLM", "OAuth2", "none", "client-IP-address",
           "TLS-client-cert"}


@pytest.fixture
def acsrv(servers, tls_cert, maildir):
    maildir.deliver(sample_message(0))
    cfg = servers.config()
    p = cfg["Pop3Server"]
    del p["BindAddress"]
    del p["Port"]
    p["Listen"] = [
        {"Address": "127.0.0.1", "Port": free_port(), "Tls": "starttls"},
        {"Address": "127.0.0.1", "Port": free_port(), "Tls": "implicit"},
        {"Address": "127.0.0.1", "Port": free_port(), "Protocol": "smtp-sink"},
    ]
    p["Tls"] = {"Certificate": tls_cert[0], "Key": tls_cert[1]}
    pub = free_port()
    with_admin(cfg, Autoconfig={"Hostname": "mail.example.com",
                                "LoginName": "Address", "Port": pub,
                                "Address": "127.0.0.1"})
    s = servers.start(cfg)
    wait_port(cfg["Admin"]["Port"])
    wait_port(pub)
    s.cfg = cfg
    s.admin = Admin(cfg["Admin"]["Port"])
    s.public = Admin(pub)
    s.listen = p["Listen"]
    return s


def get(a, path, **kw):
    st, hdr, _sc, body = a.request("GET", path, **kw)
    return st, hdr, body


def test_thunderbird_config_has_the_fields_thunderbird_reads(acsrv):
    for path in ("/mail/config-v1.1.xml?emailaddress=user1%40example.com",
                 "/.well-known/autoconfig/mail/config-v1.1.xml"):
        st, hdr, body = get(acsrv.admin, path)   # no login
        assert st == 200, body
        assert hdr["content-type"].startswith("text/xml")
        root = ET.fromstring(body)
        assert root.tag == "clientConfig" and root.get("version") == "1.1"
        prov = root.find("emailProvider")
        assert prov.get("id") == "example.com"
        assert prov.findtext("domain") == "example.com"
        assert prov.findtext("displayName")
        inc = prov.findall("incomingServer")
        assert [s.get("type") for s in inc] == ["pop3", "pop3"]
        # Best first: implicit TLS, then STARTTLS; the ports listening.
        assert [int(s.findtext("port")) for s in inc] == \
            [acsrv.listen[1]["Port"], acsrv.listen[0]["Port"]]
        assert [s.findtext("socketType") for s in inc] == ["SSL", "STARTTLS"]
        for s in inc:
            assert s.findtext("hostname") == "mail.example.com"
            assert s.findtext("socketType") in TB_SOCKET
            assert s.findtext("authentication") in TB_AUTH
            assert s.findtext("username") == "%EMAILADDRESS%"
        out = prov.find("outgoingServer")
        assert out.get("type") == "smtp"
        assert int(out.findtext("port")) == acsrv.listen[2]["Port"]
        assert out.findtext("hostname") == "localhost"
        assert out.findtext("authentication") == "none"


def test_a_client_following_the_document_logs_in(acsrv, tls_cert):
    _st, _h, body = get(acsrv.admin, "/mail/config-v1.1.xml")
    inc = ET.fromstring(body).find("emailProvider/incomingServer")
    assert inc.findtext("socketType") == "SSL"
    user = inc.findtext("username").replace("%EMAILADDRESS%", USER1)
    ctx = ssl.create_default_context(cafile=tls_cert[0])
    ctx.check_hostname = False
    c = poplib.POP3_SSL("127.0.0.1", int(inc.findtext("port")), context=ctx,
                        timeout=30)
    c.user(user)
    c.pass_("password")
    assert c.stat()[0] == 1
    c.quit()


def test_autodiscover(acsrv):
    st, hdr, _sc, body = acsrv.admin.request(
        "POST", "/Autodiscover/Autodiscover.xml",
        raw_body=(AD_REQUEST % USER1).encode(),
        headers={"Content-Type": "text/xml"}, csrf=False)
    assert st == 200, body
    acc = ET.fromstring(body).find(AD_NS + "Response/" + AD_NS + "Account")
    protos = acc.findall(AD_NS + "Protocol")
    pop = protos[0]
    assert pop.findtext(AD_NS + "Type") == "POP3"
    assert pop.findtext(AD_NS + "Server") == "mail.example.com"
    assert int(pop.findtext(AD_NS + "Port")) == acsrv.listen[1]["Port"]
    assert pop.findtext(AD_NS + "Encryption") == "SSL"
    assert pop.findtext(AD_NS + "LoginName") == USER1
    assert protos[1].findtext(AD_NS + "Type") == "SMTP"


@pytest.mark.parametrize("body", [
    b"",
    b"not xml",
    b"<Other/>",
    (AD_REQUEST % "nobody").encode(),
    (AD_REQUEST % "a<b@c").replace("a<b", "a&lt;b").encode(),
    b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
])
def test_autodiscover_bad_requests(acsrv, body):
    st, _h, _sc, text = acsrv.admin.request(
        "POST", "/autodiscover/autodiscover.xml", raw_body=body, csrf=False)
    assert st == 400, text
    assert b"root:" not in text


def test_mobileconfig_is_a_plist_profile(acsrv):
    st, hdr, body = get(acsrv.admin, "/mobileconfig?email=user1%40example.com")
    assert st == 200
    assert hdr["content-type"] == "application/x-apple-aspen-config"
    assert "attachment" in hdr["content-disposition"]
    prof = plistlib.loads(body)
    assert prof["PayloadType"] == "Configuration"
    assert prof["PayloadVersion"] == 1
    mail = prof["PayloadContent"][0]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypePOP"
    assert mail["EmailAddress"] == USER1
    assert mail["IncomingMailServerHostName"] == "mail.example.com"
    assert mail["IncomingMailServerPortNumber"] == acsrv.listen[1]["Port"]
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == USER1
    assert mail["OutgoingMailServerPortNumber"] == acsrv.listen[2]["Port"]
    assert len({prof["PayloadUUID"], mail["PayloadUUID"]}) == 2
    # Same address again: same UUIDs, so installing it again replaces it.
    assert plistlib.loads(get(acsrv.admin, "/mobileconfig?email=user1%40example.com")[2]) == prof


@pytest.mark.parametrize("query", ["email=nobody", "email=a%3Cscript%3E%40b",
                                   "email=a%40b%0d%0aX:%20y"])
def test_bad_address_refused(acsrv, query):
    assert get(acsrv.admin, "/mobileconfig?" + query)[0] == 400
    assert get(acsrv.admin, "/mail/config-v1.1.xml?" + query.replace(
        "email=", "emailaddress="))[0] == 400


def test_public_listener_serves_only_the_documents(acsrv):
    st, _h, body = get(acsrv.public, "/mail/config-v1.1.xml",
                       host="autoconfig.example.com")
    assert st == 200
    assert ET.fromstring(body).tag == "clientConfig"
    for path in ("/", "/api/v1/me", "/api/v1/login", "/index.html", "/metrics"):
        assert get(acsrv.public, path)[0] == 404, path
    # The admin itself still refuses a foreign Host.
    assert get(acsrv.admin, "/mail/config-v1.1.xml",
               host="autoconfig.example.com")[0] == 421


def test_wrong_method(acsrv):
    st, hdr, _sc, _b = acsrv.admin.request("POST", "/mail/config-v1.1.xml",
                                           raw_body=b"x", csrf=False)
    assert st == 405
    assert get(acsrv.admin, "/autodiscover/autodiscover.xml")[0] == 405
