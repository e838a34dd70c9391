//! DN formatting checked against what Java's `X500Principal.getName()` printed for the same
//! names (OpenJDK 17 on this machine, through jshell); mapping rules against the cases of
//! Kafka's docs and SslPrincipalMapperTest.

use super::*;

/// A DER TLV with a short or long length: names for the tests are built here, not parsed.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n => out.extend_from_slice(&[0x81, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut bytes = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            bytes.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        body.extend(bytes.into_iter().rev());
    }
    tlv(0x06, &body)
}

const UTF8: u8 = 0x0c;
const PRINTABLE: u8 = 0x13;
const IA5: u8 = 0x16;
const BMP: u8 = 0x1e;

/// A Name from RDNs in encoded (DER) order; each RDN a list of (oid, string tag, value).
fn name(rdns: &[&[(&str, u8, &[u8])]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        let mut set = Vec::new();
        for (o, tag, value) in rdn.iter() {
            set.extend(tlv(0x30, &[oid(o), tlv(*tag, value)].concat()));
        }
        seq.extend(tlv(0x31, &set));
    }
    tlv(0x30, &seq)
}

fn dn(der: &[u8]) -> String {
    let (rest, parsed) = X509Name::from_der(der).unwrap();
    assert!(rest.is_empty());
    rfc2253(&parsed)
}

const CN: &str = "2.5.4.3";
const O: &str = "2.5.4.10";
const OU: &str = "2.5.4.11";
const C: &str = "2.5.4.6";
const UID: &str = "0.9.2342.19200300.100.1.1";
const EMAIL: &str = "1.2.840.113549.1.9.1";

#[test]
fn dn_lists_rdns_last_first_with_java_keywords() {
    let der = name(&[
        &[(C, PRINTABLE, b"US")],
        &[(O, UTF8, b"Acme")],
        &[(OU, UTF8, b"eng")],
        &[(CN, UTF8, b"alice")],
    ]);
    assert_eq!(dn(&der), "CN=alice,OU=eng,O=Acme,C=US");
}

#[test]
fn dn_escapes_special_characters_and_outer_spaces_as_java() {
    let der = name(&[&[(CN, UTF8, br#"a,b+c=d<e>f#g;h"i\j"#)]]);
    assert_eq!(dn(&der), r#"CN=a\,b\+c\=d\<e\>f\#g\;h\"i\\j"#);
    assert_eq!(dn(&name(&[&[(CN, UTF8, b"#lead")]])), r"CN=\#lead");
    assert_eq!(
        dn(&name(&[&[(CN, UTF8, b" lead and trail ")]])),
        r"CN=\ lead and trail\ "
    );
    assert_eq!(dn(&name(&[&[(CN, UTF8, b"a  b")]])), "CN=a  b");
    assert_eq!(dn(&name(&[&[(CN, UTF8, "été".as_bytes())]])), "CN=été");
    assert_eq!(dn(&name(&[&[(CN, BMP, &[0, b'b', 0, b'o'])]])), "CN=bo");
}

#[test]
fn dn_joins_a_multi_valued_rdn_with_plus_in_encoded_order() {
    let der = name(&[&[(O, UTF8, b"x")], &[(CN, UTF8, b"a"), (UID, UTF8, b"b")]]);
    assert_eq!(dn(&der), "CN=a+UID=b,O=x");
}

#[test]
fn dn_prints_types_without_a_keyword_as_oid_and_hex_der() {
    let der = name(&[&[(EMAIL, IA5, b"a@b.c")], &[(CN, UTF8, b"x")]]);
    assert_eq!(dn(&der), "CN=x,1.2.840.113549.1.9.1=#16056140622e63");
}

#[test]
fn garbage_is_not_a_certificate() {
    assert!(matches!(
        subject_dn(b"not a certificate"),
        Err(PrincipalError::Certificate(_))
    ));
}

fn mapper(rules: &str) -> SslPrincipalMapper {
    SslPrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("{rules}: {e}"))
}

#[test]
fn kafkas_valid_rules_parse() {
    for rules in [
        "DEFAULT",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
        "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
        "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
        "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    ] {
        mapper(rules);
    }
}

#[test]
fn kafkas_invalid_rules_are_refused() {
    for rules in [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
    ] {
        assert!(
            matches!(SslPrincipalMapper::parse(rules), Err(PrincipalError::InvalidRule(_))),
            "{rules}"
        );
    }
    // A Java pattern this regex engine cannot run is refused at start, not at a handshake.
    assert!(SslPrincipalMapper::parse(r"RULE:^CN=(\w)\1$/$1/").is_err());
}

#[test]
fn first_matching_rule_wins_with_back_references_and_case() {
    let m = mapper(
        &[
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
            "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
            "DEFAULT",
        ]
        .join(", "),
    );
    assert_eq!(m.name("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(), "duke");
    assert_eq!(m.name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(), "duke@sme");
    assert_eq!(m.name("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(), "DUKE@SME");
    assert_eq!(m.name("cN=duke,OU=JavaSoft,O=Sun Microsystems").unwrap(), "DUKE");
    assert_eq!(
        m.name("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
        "OU=JavaSoft,O=Sun Microsystems,C=US"
    );
}

#[test]
fn an_escaped_comma_in_a_cn_survives_the_rule() {
    let m = mapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
    assert_eq!(
        m.name(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(),
        r"Tkac\, Adam"
    );
}

#[test]
fn the_brief_rule_maps_alice() {
    let m = mapper("RULE:^CN=([^,]+),.*$/$1/L");
    assert_eq!(m.name("CN=Alice,O=Acme").unwrap(), "alice");
    assert!(matches!(m.name("O=Acme"), Err(PrincipalError::NoMatchingRule(_))));
    // Without DEFAULT nothing matches an empty rule list either.
    assert!(mapper("").name("CN=x").is_err());
}

#[test]
fn rules_split_as_kafka_splits_them() {
    for (expected, rules) in [
        ("[]", ""),
        ("[DEFAULT]", "DEFAULT"),
        ("[RULE:/]", "RULE://"),
        ("[RULE:/.*]", "RULE:/.*/"),
        ("[RULE:/.*/L]", "RULE:/.*/L"),
        ("[RULE:/, DEFAULT]", "RULE://,DEFAULT"),
        ("[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  "),
        ("[RULE:   /     , DEFAULT]", "  RULE:   /     / ,  DEFAULT  "),
        ("[RULE:  /     /U, DEFAULT]", "  RULE:  /     /U   ,DEFAULT  "),
        (
            "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
            "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
        ),
        ("[]", ",   , , ,      , , ,   "),
        ("[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,"),
        ("[RULE: /   , DEFAULT]", ",  , RULE: /   /    ,,,   DEFAULT, ,   "),
        ("[RULE:   /  /U, DEFAULT]", "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,"),
        (r"[RULE:\**\/+/*/L, RULE:\/*\**/**]", r"RULE:\**\/+/*/L,RULE:\/*\**/**/"),
    ] {
        assert_eq!(mapper(rules).to_string(), expected, "{rules:?}");
    }
}

#[test]
fn replacement_follows_java_group_syntax() {
    let m = mapper(r"RULE:^CN=(\w+),O=(\w+)$/$2-$1-$3-\$1-${x}/");
    // $3 is past the last group: literal, as Kafka escapes it; ${x} names no group: an error.
    assert!(matches!(m.name("CN=a,O=b"), Err(PrincipalError::Replacement { .. })));
    let m = mapper(r"RULE:^CN=(\w+),O=(?P<org>\w+)$/$2-$1-$3-\$1-${org}-$12/");
    assert_eq!(m.name("CN=a,O=b").unwrap(), "b-a-$3-$1-b-a2");
    // Java's replaceAll also replaces the empty match at the end of `.*`.
    assert_eq!(mapper("RULE:.*/x/").name("abc").unwrap(), "xx");
}

#[test]
fn a_bad_rule_is_a_startup_error_naming_the_setting() {
    let bad = ["ssl.principal.mapping.rules=RULE:^CN=(.*)$/$1/X".to_string()];
    let err = crate::config::load(None, &bad).expect_err("refused").to_string();
    assert!(err.contains("ssl.principal.mapping.rules"), "{err}");
    let good = ["ssl.principal.mapping.rules=RULE:^CN=([^,]+),.*$/$1/L,DEFAULT".to_string()];
    assert!(crate::config::load(None, &good).is_ok());
}
