//! Real TLS against the test SMTP server (`openssl`-made certificate for
//! 127.0.0.1): STARTTLS and implicit TLS with a configured CA, AUTH from a
//! password file, and refusals when the certificate is not trusted or the
//! password is wrong.

mod common;

use common::{lines, Host, World};
use logdaemon_sdk::FailureKind;
use logdaemon_tests::smtp::{Options, ServerTls};

fn world(tls: ServerTls, auth: bool, extra: &str) -> World {
    let opts = Options {
        tls,
        auth: auth.then(|| ("alice".to_string(), "correct horse".to_string())),
    };
    let mut w = World::with_server("lines", opts, &format!("max_entries = 1\n{extra}"));
    std::fs::write(w.dir.path().join("smtp-password"), "correct horse\n").unwrap();
    std::fs::write(w.dir.path().join("wrong-password"), "battery staple\n").unwrap();
    let ca = w.srv.ca_cert().unwrap();
    w.config = w.config.replace("CA_FILE", &ca.display().to_string());
    w
}

#[test]
fn starttls_with_a_trusted_ca_and_auth_from_a_password_file() {
    let w = world(
        ServerTls::Starttls,
        true,
        "tls = \"starttls\"\nca_file = \"CA_FILE\"\nusername = \"alice\"\npassword_file = \"smtp-password\"",
    );
    let texts = vec!["over tls".to_string()];
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 1).unwrap();
    let m = w.srv.messages();
    assert_eq!(m.len(), 1);
    assert!(
        m[0].tls && m[0].authenticated,
        "tls {} auth {}",
        m[0].tls,
        m[0].authenticated
    );
    assert!(m[0].body().contains("over tls"));
}

#[test]
fn implicit_tls_with_a_trusted_ca() {
    let w = world(
        ServerTls::Implicit,
        false,
        "tls = \"tls\"\nca_file = \"CA_FILE\"",
    );
    let texts = vec!["smtps".to_string()];
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    h.run(&mut l, 1).unwrap();
    let m = w.srv.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0].tls);
}

#[test]
fn an_untrusted_certificate_is_never_accepted() {
    let w = world(ServerTls::Starttls, false, "tls = \"starttls\"");
    let texts = vec!["must not leak".to_string()];
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let f = h.step(&mut l, 1).unwrap_err();
    assert_eq!(f.kind, FailureKind::Retry, "{f}");
    assert!(
        f.message.to_ascii_lowercase().contains("certificate"),
        "{}",
        f.message
    );
    assert!(w.srv.messages().is_empty());
}

#[test]
fn a_wrong_password_is_fatal_even_with_on_reject_skip() {
    let w = world(
        ServerTls::Starttls,
        true,
        "tls = \"starttls\"\nca_file = \"CA_FILE\"\nusername = \"alice\"\npassword_file = \"wrong-password\"\non_reject = \"skip\"",
    );
    let texts = vec!["x".to_string()];
    let mut h = Host::new(lines(&texts));
    let mut l = w.open(h.acked).unwrap();
    let f = h.step(&mut l, 1).unwrap_err();
    assert_eq!(f.kind, FailureKind::Fatal, "{f}");
    assert!(
        f.message.contains("535") && f.message.contains("password_file"),
        "{}",
        f.message
    );
    assert!(
        !f.message.contains("battery"),
        "the password is never shown"
    );
    assert_eq!(
        h.acked,
        h.journal.entries()[0].start(),
        "nothing is skipped"
    );
    assert!(w.srv.messages().is_empty());
}
