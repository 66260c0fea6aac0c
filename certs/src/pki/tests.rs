//! Tests of the PKI: chains, names, pins, persistence and reloading.

use super::*;
use crate::{Pin, describe};

#[test]
fn generated_chains_name_the_mock_cas() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let leaf = pki
        .issuer(Profile::Pinned)
        .issue(&["winatp-gw-cus.microsoft.com"])
        .unwrap();
    assert_eq!(leaf.chain.len(), 2, "leaf + issuing CA, root not sent");
    let summary = describe(&leaf.chain[0]).unwrap();
    assert_eq!(summary.subject_cn, "winatp-gw-cus.microsoft.com");
    assert_eq!(summary.issuer_cn, PINNED_ISSUING_NAME);
    assert_eq!(
        summary.dns_names,
        vec!["winatp-gw-cus.microsoft.com".to_owned()]
    );
    assert!(!summary.is_ca);
    let issuing = describe(&leaf.chain[1]).unwrap();
    assert_eq!(issuing.issuer_cn, PINNED_ROOT_NAME);
    assert!(issuing.is_ca);

    let azure = pki
        .issuer(Profile::Azure)
        .issue(&["*.blob.core.windows.net"])
        .unwrap();
    assert_eq!(
        describe(&azure.chain[0]).unwrap().issuer_cn,
        AZURE_ISSUING_NAME
    );
    assert_eq!(
        pki.inspection().authority().common_name(),
        DEFAULT_INSPECTION_CA_NAME
    );
}

#[test]
fn pins_cover_leaf_issuing_and_root_and_differ_between_profiles() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let pinned = pki.pins(Profile::Pinned);
    let leaf = pki.issuer(Profile::Pinned).issue(&["a.example"]).unwrap();
    for cert in &leaf.chain {
        assert!(pinned.contains(&Pin::of_certificate(cert).unwrap()));
    }
    let root_pin = Pin::of_certificate(pki.root(Profile::Pinned).certificate()).unwrap();
    assert!(pinned.contains(&root_pin));
    let azure_leaf = pki.issuer(Profile::Azure).issue(&["a.example"]).unwrap();
    assert!(!pinned.contains(&Pin::of_certificate(&azure_leaf.chain[0]).unwrap()));
    let minted = pki.inspection().issue(&["a.example"]).unwrap();
    assert!(!pinned.contains(&Pin::of_certificate(&minted.chain[0]).unwrap()));
    assert_eq!(pinned.curl().matches("sha256//").count(), 3);
}

#[test]
fn pin_syntaxes_round_trip() {
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let pin = pki.root(Profile::Azure).pin();
    for text in [pin.curl(), pin.okhttp(), pin.hpkp(), pin.base64()] {
        assert_eq!(Pin::parse(&text).unwrap(), pin, "{text}");
    }
    assert!(pin.curl().starts_with("sha256//"));
    assert!(pin.okhttp().starts_with("sha256/") && !pin.okhttp().starts_with("sha256//"));
    assert!(pin.hpkp().starts_with("pin-sha256=\""));
    assert!(Pin::parse("sha256//not-base64!").is_err());
    assert!(Pin::parse("sha256//AAAA").is_err(), "too short for SHA-256");
}

#[test]
fn state_dir_is_reused_and_keys_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("pki");
    let (first, fresh) = Pki::load_or_generate(&state, &PkiOptions::default()).unwrap();
    assert!(fresh);
    let (second, fresh) = Pki::load_or_generate(&state, &PkiOptions::default()).unwrap();
    assert!(!fresh);
    assert_eq!(first.trust_bundle_pem(), second.trust_bundle_pem());
    assert_eq!(first.pins(Profile::Pinned), second.pins(Profile::Pinned));
    assert_eq!(
        first.inspection().authority().certificate(),
        second.inspection().authority().certificate()
    );
    // A leaf minted from the reloaded PKI still chains to the saved root.
    let leaf = second
        .issuer(Profile::Pinned)
        .issue(&["x.example"])
        .unwrap();
    assert_eq!(
        describe(&leaf.chain[1]).unwrap().pin,
        first.issuer(Profile::Pinned).authority().pin()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for entry in std::fs::read_dir(&state).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.extension().is_some_and(|e| e == "key") {
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
    }
}

#[test]
fn renamed_inspection_ca_is_replaced_but_profiles_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = Pki::load_or_generate(dir.path(), &PkiOptions::default()).unwrap();
    let options = PkiOptions {
        inspection_ca_name: "Contoso Inspect CA".into(),
        ..PkiOptions::default()
    };
    let (second, _) = Pki::load_or_generate(dir.path(), &options).unwrap();
    assert_eq!(
        second.inspection().authority().common_name(),
        "Contoso Inspect CA"
    );
    assert_eq!(first.trust_bundle_pem(), second.trust_bundle_pem());
}

#[test]
fn algorithm_mismatch_in_state_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_generate(dir.path(), &PkiOptions::default()).unwrap();
    let rsa = PkiOptions {
        algorithm: KeyAlgorithm::Rsa2048,
        ..PkiOptions::default()
    };
    let err = Pki::load_or_generate(dir.path(), &rsa).unwrap_err();
    assert!(matches!(err, Error::AlgorithmMismatch { .. }), "{err}");
    assert!(err.to_string().contains("ecdsa-p256"));
}

#[test]
fn rsa_pki_issues_rsa_chains() {
    let pki = Pki::generate(&PkiOptions {
        algorithm: KeyAlgorithm::Rsa2048,
        ..PkiOptions::default()
    })
    .unwrap();
    assert_eq!(
        pki.root(Profile::Pinned).algorithm(),
        Some(KeyAlgorithm::Rsa2048)
    );
    let leaf = pki.issuer(Profile::Pinned).issue(&["rsa.example"]).unwrap();
    assert_eq!(
        describe(&leaf.chain[0]).unwrap().issuer_cn,
        PINNED_ISSUING_NAME
    );
}

#[test]
fn expired_leaf_can_be_minted_for_tests() {
    use std::time::{Duration, SystemTime};
    let pki = Pki::generate(&PkiOptions::default()).unwrap();
    let past = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
    let leaf = pki
        .issuer(Profile::Pinned)
        .issue_with_validity(&["old.example"], past, past + Duration::from_secs(3600))
        .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(describe(&leaf.chain[0]).unwrap().not_after < now);
}
