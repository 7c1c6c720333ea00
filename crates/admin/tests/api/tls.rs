//! HTTPS serving: a self-signed certificate made at test time, a client that trusts it,
//! and the service's answers over TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use reqwest::StatusCode;
use serde_json::json;
use streamhub_admin::{AdminConfig, AdminHandle, AdminService, Limits, TlsFiles};

use crate::common::*;

/// Writes a certificate for localhost and 127.0.0.1 and its key; returns the files and
/// the certificate's PEM.
pub(crate) fn self_signed(dir: &Path) -> (TlsFiles, Vec<u8>) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "streamhub test").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&cert.x509v3_context(None, None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let pem = cert.build().to_pem().unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, &pem).unwrap();
    std::fs::write(&files.key, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (files, pem)
}

struct Https {
    handle: AdminHandle,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start_https(limits: Limits) -> Https {
    let dir = tempfile::tempdir().unwrap();
    let (files, pem) = self_signed(dir.path());
    let handle = AdminService::start(AdminConfig {
        tls: Some(files),
        secure_cookies: false,
        limits,
        ..config(&dir)
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Https {
        handle,
        client,
        _dir: dir,
    }
}

#[tokio::test]
async fn https_signs_in_with_secure_cookies_and_hsts() {
    let s = start_https(Limits::default()).await;
    let url = s.handle.url().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let res = s
        .client
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(
            c.ends_with("; Secure"),
            "TLS makes cookies Secure without the flag: {c}"
        );
    }
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let (_, body) = json_of(res).await;
    let token = body["token"].as_str().unwrap().to_owned();

    let (status, me) = call(
        s.client
            .get(format!("{url}/api/auth/me"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        (status, me["username"].as_str()),
        (StatusCode::OK, Some("admin"))
    );

    // An event stream over TLS does not hold up the stop.
    let stream = s
        .client
        .get(format!("{url}/api/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(20), s.handle.stop())
        .await
        .expect("the TLS server stops with a stream open")
        .unwrap();
    drop(stream);
}

#[tokio::test]
async fn clients_that_do_not_trust_the_certificate_or_speak_plain_http_get_nothing() {
    let s = start_https(Limits::default()).await;
    let url = s.handle.url().to_owned();
    let untrusting = reqwest::Client::new();
    let err = untrusting
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let plain = url.replacen("https://", "http://", 1);
    let answer = untrusting
        .get(format!("{plain}/api/health"))
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    assert!(
        answer.is_err() || !answer.unwrap().status().is_success(),
        "plain HTTP must not be served on the TLS port"
    );
    let (status, _) = call(s.client.get(format!("{url}/api/health"))).await;
    assert_eq!(status, StatusCode::OK);
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn sign_in_limits_see_the_client_address_over_tls_too() {
    let s = start_https(Limits {
        login_failures_per_address: 2,
        ..Limits::default()
    })
    .await;
    let url = s.handle.url().to_owned();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let res = s
            .client
            .post(format!("{url}/api/auth/login"))
            .json(&json!({"username": format!("u{i}"), "password": "guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_stops_the_start_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = self_signed(dir.path());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (other_files, _) = self_signed(&other);
    let missing = PathBuf::from("/nonexistent/cert.pem");
    for tls in [
        TlsFiles {
            cert: files.cert.clone(),
            key: other_files.key.clone(),
        },
        TlsFiles {
            cert: missing.clone(),
            key: files.key.clone(),
        },
    ] {
        let err = AdminService::start(AdminConfig {
            tls: Some(tls),
            ..AdminConfig::local(dir.path())
        })
        .await
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot use the TLS certificate"),
            "{err:#}"
        );
    }
    assert!(
        !dir.path()
            .join(streamhub_admin::ADMIN_PASSWORD_FILE)
            .exists(),
        "no admin is created by a start that fails"
    );
}
