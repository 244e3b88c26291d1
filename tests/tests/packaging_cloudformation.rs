//! CI checks for the CloudFormation templates in `packaging/` (issue 7):
//!
//! - `cfn-lint` (pinned in `target/pyenv` by `scripts/test`) reports nothing on any template:
//!   no error, no warning, no informational finding (exit code 0).
//! - The conformance-pack rules cfn-lint does not know (`conformance.rs`) hold for every
//!   template, and each rule is shown to fire on a small broken fixture
//!   (`tests/fixtures/cloudformation/RULE*.yaml`), flagged with that rule and no other.
//! - The gateway template has what the issue lists: the parameters, the load balancer, the
//!   launch template, the role's exact permissions, the alarms and the outputs.
//!
//! The templates are YAML with CloudFormation's short-form tags (`!Ref`, `!Sub`), which is what
//! operators read and write. They are decoded with cfn-lint's own decoder (the same Python
//! environment, printing JSON), so the checker sees exactly what cfn-lint and CloudFormation
//! see, and no YAML crate that mishandles the tags is needed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "packaging_cloudformation/conformance.rs"]
mod conformance;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use conformance::{check, Finding, Rule};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A program from `target/pyenv/bin`; CI always has it (`scripts/test` installs it).
fn pyenv_bin(name: &str) -> PathBuf {
    let path = workspace_root().join("target/pyenv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/test --deps-only` to install cfn-lint into target/pyenv",
        path.display()
    );
    path
}

/// Every template operators deploy.
fn templates() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut found = Vec::new();
    for dir in ["packaging/cloudformation", "packaging/target-host"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    let names: Vec<String> = found
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"sallyport.yaml".to_owned())
            && names.contains(&"target-host.yaml".to_owned()),
        "templates missing: found {names:?}"
    );
    found
}

fn fixtures() -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/fixtures/cloudformation");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    found.sort();
    found
}

/// Decodes templates with cfn-lint's decoder: one Python process, a JSON object by path.
fn decode(paths: &[PathBuf]) -> BTreeMap<PathBuf, Value> {
    const SCRIPT: &str = r#"
import json, sys
from cfnlint.decode import decode
out = {}
for path in sys.argv[1:]:
    template, matches = decode(path)
    if matches:
        sys.exit("%s: %s" % (path, "; ".join(str(m) for m in matches)))
    out[path] = template
json.dump(out, sys.stdout)
"#;
    let output = Command::new(pyenv_bin("python"))
        .arg("-c")
        .arg(SCRIPT)
        .args(paths)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "decoding failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let all: BTreeMap<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    all.into_iter()
        .map(|(k, v)| (PathBuf::from(k), v))
        .collect()
}

/// The gateway template, decoded once for every test here.
fn gateway_template() -> &'static Value {
    static DECODED: OnceLock<Value> = OnceLock::new();
    DECODED.get_or_init(|| {
        let path = workspace_root().join("packaging/cloudformation/sallyport.yaml");
        decode(std::slice::from_ref(&path)).remove(&path).unwrap()
    })
}

#[test]
fn cfn_lint_reports_nothing_on_any_template() {
    let templates = templates();
    let output = Command::new(pyenv_bin("cfn-lint"))
        .args(["--format", "parseable", "--include-checks", "I", "--"])
        .args(&templates)
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Exit code bits: 2 error, 4 warning, 8 informational.
    assert_eq!(
        output.status.code(),
        Some(0),
        "cfn-lint found problems in {templates:?}:\n{shown}"
    );
    assert!(shown.trim().is_empty(), "cfn-lint printed:\n{shown}");
}

#[test]
fn cfn_lint_can_fail() {
    // The same invocation on a template with a known error must not pass.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      NoSuchProperty: 1\n",
    )
    .unwrap();
    let status = Command::new(pyenv_bin("cfn-lint"))
        .args(["--format", "parseable", "--include-checks", "I", "--"])
        .arg(&bad)
        .output()
        .unwrap()
        .status;
    assert_eq!(
        status.code().map(|c| c & 2),
        Some(2),
        "cfn-lint missed an error"
    );
}

#[test]
fn every_template_meets_the_conformance_rules() {
    let decoded = decode(&templates());
    for (path, template) in &decoded {
        let findings = check(template);
        assert!(
            findings.is_empty(),
            "{} breaks conformance rules:\n{}",
            path.display(),
            findings
                .iter()
                .map(|f| format!("  {f}\n"))
                .collect::<String>()
        );
    }
}

/// Each fixture is named after the rule it breaks (`open-ingress-ipv6.yaml` breaks
/// `open-ingress`); it must be flagged with that rule and with no other, and every rule must
/// have a fixture.
#[test]
fn each_broken_fixture_is_flagged_with_its_rule_only() {
    let fixtures = fixtures();
    let decoded = decode(&fixtures);
    let mut covered = BTreeSet::new();
    for path in &fixtures {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        // The longest rule name the file name starts with.
        let rule = Rule::ALL
            .iter()
            .filter(|r| stem == r.name() || stem.starts_with(&format!("{}-", r.name())))
            .max_by_key(|r| r.name().len())
            .copied()
            .unwrap_or_else(|| panic!("fixture {stem}.yaml is not named after a rule"));
        let findings: Vec<Finding> = check(&decoded[path]);
        assert!(
            findings.iter().any(|f| f.rule == rule),
            "{stem}.yaml was not flagged with [{}]; findings: {findings:#?}",
            rule.name()
        );
        let others: Vec<&Finding> = findings.iter().filter(|f| f.rule != rule).collect();
        assert!(
            others.is_empty(),
            "{stem}.yaml should break [{}] only, but also: {others:#?}",
            rule.name()
        );
        covered.insert(rule);
    }
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| !covered.contains(*r))
        .map(|r| r.name())
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a broken fixture: {missing:?}"
    );
}

fn resources_of_type<'t>(t: &'t Value, ty: &str) -> Vec<(&'t String, &'t Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

fn one_of_type<'t>(t: &'t Value, ty: &str) -> &'t Value {
    let all = resources_of_type(t, ty);
    assert_eq!(all.len(), 1, "expected one {ty}, found {}", all.len());
    all[0].1
}

#[test]
fn gateway_template_has_the_parameters_the_issue_lists() {
    let t = gateway_template();
    let params = t["Parameters"].as_object().unwrap();
    for name in [
        "VpcId",
        "CoreSubnetIds",
        "DmzSubnetIds",
        "ClientCidrs",
        "PrivateCidrs",
        "AdminCidr",
        "SsmParameterPath",
        "SsmKmsKeyArn",
        "DatabaseUrl",
        "Environment",
        "InstanceType",
        "ImageId",
        "DesiredCapacity",
        "SshPort",
        "WireGuardPort",
        "PackageBucket",
        "PackageKey",
        "PackageSha256",
    ] {
        assert!(params.contains_key(name), "parameter {name} missing");
    }
    // The client networks are required: no default at all, so never 0.0.0.0/0 by default.
    for name in ["ClientCidrs", "AdminCidr", "PrivateCidrs", "SsmKmsKeyArn"] {
        assert!(
            params[name].get("Default").is_none(),
            "{name} must have no default"
        );
    }
    assert_eq!(
        params["ImageId"]["Type"],
        "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    );
    assert!(params["ImageId"]["Default"]
        .as_str()
        .unwrap()
        .starts_with("/aws/service/"));
    assert_eq!(params["DatabaseUrl"]["Default"], "", "SQLite by default");
    // A stack rule refuses 0.0.0.0/0 unless the operator opts in.
    let rule = serde_json::to_string(&t["Rules"]["ClientCidrsNotOpen"]).unwrap();
    assert!(
        rule.contains("0.0.0.0/0") && rule.contains("AllowPublicClients"),
        "{rule}"
    );
}

#[test]
fn load_balancer_and_gateways_are_placed_as_the_issue_says() {
    let t = gateway_template();
    let nlb = &one_of_type(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"];
    assert_eq!(nlb["Type"], "network");
    assert_eq!(nlb["Subnets"], serde_json::json!({ "Ref": "DmzSubnetIds" }));
    let attrs = serde_json::to_string(&nlb["LoadBalancerAttributes"]).unwrap();
    assert!(
        attrs.contains("load_balancing.cross_zone.enabled"),
        "{attrs}"
    );

    let listeners: Vec<(String, String)> =
        resources_of_type(t, "AWS::ElasticLoadBalancingV2::Listener")
            .iter()
            .map(|(_, l)| {
                let p = &l["Properties"];
                (
                    p["Protocol"].as_str().unwrap().to_owned(),
                    p["Port"].to_string(),
                )
            })
            .collect();
    assert!(
        listeners.contains(&("TCP".into(), r#"{"Ref":"SshPort"}"#.into())),
        "{listeners:?}"
    );
    assert!(
        listeners.contains(&("UDP".into(), r#"{"Ref":"WireGuardPort"}"#.into())),
        "{listeners:?}"
    );
    // Client IP preserved on every TCP target group (UDP always preserves it).
    for (id, tg) in resources_of_type(t, "AWS::ElasticLoadBalancingV2::TargetGroup") {
        let p = &tg["Properties"];
        if p["Protocol"] == "TCP" {
            let attrs = serde_json::to_string(&p["TargetGroupAttributes"]).unwrap();
            assert!(
                attrs.contains(r#"{"Key":"preserve_client_ip.enabled","Value":"true"}"#),
                "{id}: {attrs}"
            );
        }
    }

    let asg = &one_of_type(t, "AWS::AutoScaling::AutoScalingGroup")["Properties"];
    assert_eq!(
        asg["VPCZoneIdentifier"],
        serde_json::json!({ "Ref": "CoreSubnetIds" })
    );
    assert_eq!(
        asg["DesiredCapacity"],
        serde_json::json!({ "Ref": "DesiredCapacity" })
    );
    let lt = &one_of_type(t, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"];
    assert_eq!(lt["ImageId"], serde_json::json!({ "Ref": "ImageId" }));
    let ebs = &lt["BlockDeviceMappings"][0]["Ebs"];
    assert_eq!(ebs["VolumeType"], "gp3");
    let user_data = serde_json::to_string(&lt["UserData"]).unwrap();
    for needle in [
        "sha256sum --check",
        "apt-get install",
        "check-config",
        "systemctl enable --now sallyportd.service",
        "database-password",
    ] {
        assert!(user_data.contains(needle), "user data lacks {needle:?}");
    }
}

#[test]
fn the_instance_role_is_least_privilege() {
    let t = gateway_template();
    let role = one_of_type(t, "AWS::IAM::Role");
    assert!(role["Properties"].get("ManagedPolicyArns").is_none());
    let statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let mut actions = BTreeSet::new();
    for st in statements {
        // A statement under a condition (`Fn::If [cond, statement, AWS::NoValue]`).
        let st = match st.get("Fn::If") {
            Some(args) => {
                assert_eq!(args[2], serde_json::json!({ "Ref": "AWS::NoValue" }));
                &args[1]
            }
            None => st,
        };
        assert_eq!(st["Effect"], "Allow");
        let list: Vec<String> = match &st["Action"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            other => panic!("Action {other}"),
        };
        // Every resource is a specific ARN built from the parameters, never "*".
        let resources = serde_json::to_string(&st["Resource"]).unwrap();
        assert!(!resources.contains("\"*\""), "{resources}");
        for a in &list {
            if a.starts_with("kms:") {
                assert_eq!(st["Resource"], serde_json::json!({ "Ref": "SsmKmsKeyArn" }));
                assert!(
                    st["Condition"]["StringEquals"]["kms:ViaService"]
                        .to_string()
                        .contains("ssm.${AWS::Region}.amazonaws.com"),
                    "{a} must be bound to SSM: {st}"
                );
            }
            if a.starts_with("ssm:") {
                assert!(
                    resources.contains("parameter${SsmParameterPath}"),
                    "{resources}"
                );
            }
            if a.starts_with("logs:") {
                assert!(
                    resources.contains("log-group:${AuditLogGroupName}"),
                    "{resources}"
                );
            }
        }
        actions.extend(list);
    }
    let expected: BTreeSet<String> = [
        "ssm:GetParametersByPath",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "kms:Decrypt",
        // Only with BootstrapAdmin, on the one bootstrap-admin-token parameter.
        "ssm:PutParameter",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "s3:GetObject",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(actions, expected);
}

#[test]
fn audit_log_group_key_and_alarms_are_wired() {
    let t = gateway_template();
    let group = one_of_type(t, "AWS::Logs::LogGroup");
    assert_eq!(group["Properties"]["RetentionInDays"], 2192);
    // The key policy lets the logs service use the key for this group only.
    let key = &t["Resources"]["AuditLogKey"];
    let policy = serde_json::to_string(&key["Properties"]["KeyPolicy"]).unwrap();
    assert!(
        policy.contains("logs.${AWS::Region}.amazonaws.com"),
        "{policy}"
    );
    assert!(
        policy.contains("kms:EncryptionContext:aws:logs:arn")
            && policy.contains("log-group:${AuditLogGroupName}"),
        "{policy}"
    );

    let patterns: Vec<String> = resources_of_type(t, "AWS::Logs::MetricFilter")
        .iter()
        .map(|(_, f)| {
            f["Properties"]["FilterPattern"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for event in [
        "ssh.auth.failure",
        "access.grant.revoke",
        "vpn.flow.denied",
        "audit.ship.rejected",
        "gateway.start",
    ] {
        assert!(
            patterns.iter().any(|p| p.contains(&format!("\"{event}\""))),
            "no metric filter for {event}: {patterns:?}"
        );
    }
    let alarms = resources_of_type(t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 6, "{} alarms", alarms.len());
    for (id, alarm) in alarms {
        for key in ["AlarmActions", "InsufficientDataActions", "OKActions"] {
            assert_eq!(
                alarm["Properties"][key],
                serde_json::json!([{ "Ref": "AlarmTopic" }]),
                "{id}.{key}"
            );
        }
    }
    let topic = &t["Resources"]["AlarmTopic"]["Properties"];
    assert_eq!(
        topic["KmsMasterKeyId"],
        serde_json::json!({ "Fn::GetAtt": ["AlarmTopicKey", "Arn"] })
    );
}

#[test]
fn outputs_name_the_load_balancer_and_the_gateway_group() {
    let t = gateway_template();
    let outputs = &t["Outputs"];
    assert_eq!(
        outputs["LoadBalancerDnsName"]["Value"],
        serde_json::json!({ "Fn::GetAtt": ["LoadBalancer", "DNSName"] })
    );
    assert_eq!(
        outputs["GatewaySecurityGroupId"]["Value"],
        serde_json::json!({ "Ref": "GatewaySecurityGroup" })
    );
}

/// The launch template's user data, with `${…}` replaced as CloudFormation would.
fn user_data(database_url: &str) -> String {
    let t = gateway_template();
    let sub = &t["Resources"]["GatewayLaunchTemplate"]["Properties"]["LaunchTemplateData"]
        ["UserData"]["Fn::Base64"]["Fn::Sub"];
    let mut text = sub[0].as_str().unwrap().to_owned();
    for (name, value) in [
        ("AWS::Region", "us-east-1"),
        ("AWS::StackName", "sallyport-prod"),
        ("SsmParameterPath", "/sallyport/prod"),
        ("PackageBucket", "bucket"),
        ("PackageKey", "sallyport/sallyport_0.1.0_amd64.deb"),
        ("PackageSha256", "00"),
        ("DatabaseUrl", database_url),
        ("AuditLogGroupName", "/sallyport/audit"),
        ("SshPort", "22"),
        ("WireGuardPort", "51820"),
        ("BootstrapAdmin", "alice"),
        (
            "SsmKmsKeyArn",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        (
            "LoadBalancerDns",
            "sallyport-nlb-123.elb.us-east-1.amazonaws.com",
        ),
    ] {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    assert!(
        !text.contains("${") || text.matches("${").count() == text.matches("${!").count(),
        "unreplaced ${{…}} in user data:\n{text}"
    );
    text
}

/// The user data is a shell script that parses (and passes shellcheck where installed), and
/// its embedded renderer writes a configuration that `sallyportd check-config` accepts, for
/// SQLite and for PostgreSQL with a password that needs escaping.
#[test]
fn user_data_renders_a_configuration_sallyportd_accepts() {
    let sallyportd = workspace_root().join("target/debug/sallyportd");
    assert!(
        sallyportd.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        sallyportd.display()
    );
    let pg = "postgres://sallyport@db.cluster-x.us-east-1.rds.amazonaws.com:5432/sallyport?sslmode=verify-full&sslrootcert=/etc/sallyport/rds-ca.pem";
    // SQLite with a generated API certificate; PostgreSQL with the operator's certificate.
    for (database_url, api_tls) in [("", ""), (pg, "yes")] {
        let dir = tempfile::tempdir().unwrap();
        let script = user_data(database_url);
        // EC2 takes at most 16 KiB of user data (before base64).
        assert!(
            script.len() < 16 * 1024,
            "user data is {} bytes",
            script.len()
        );
        let path = dir.path().join("user-data.sh");
        std::fs::write(&path, &script).unwrap();
        let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "user data does not parse");
        let shellcheck = Command::new("shellcheck").arg(&path).output();
        if let Ok(out) = shellcheck {
            assert!(
                out.status.success(),
                "shellcheck:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }

        let python = script
            .split_once("<<'PY'\n")
            .and_then(|(_, rest)| rest.split_once("\nPY\n"))
            .map(|(py, _)| py.to_owned())
            .expect("the renderer heredoc");
        let config = dir.path().join("sallyportd.toml");
        let python = python.replace(
            "/etc/sallyport/sallyportd.toml.new",
            config.to_str().unwrap(),
        );
        let password = dir.path().join("password.json");
        std::fs::write(
            &password,
            r#"{"Parameter": {"Name": "/sallyport/prod/database-password", "Value": "p@ss:w/rd\"x"}}"#,
        )
        .unwrap();
        let out = Command::new(pyenv_bin("python"))
            .arg("-c")
            .arg(&python)
            .env("INSTANCE", "i-0123456789abcdef0")
            .env("DATABASE_URL", database_url)
            .env("PASSWORD_JSON", &password)
            .env("API_TLS", api_tls)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "renderer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&config).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o007,
            0,
            "rendered config is world-readable: {mode:o}"
        );

        let out = Command::new(&sallyportd)
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "check-config refused:\n{text}\n{shown}"
        );
        assert!(shown.contains("i-0123456789abcdef0"), "{shown}");
        assert!(shown.contains("cloudwatch:/sallyport/audit"), "{shown}");
        assert!(shown.contains(" 0.0.0.0:22\n"), "SSH on SshPort: {shown}");
        assert_eq!(
            text.contains("tls_key_file = \"/etc/sallyport/api.key\""),
            !api_tls.is_empty(),
            "{text}"
        );
        if database_url.is_empty() {
            assert!(shown.contains("sqlite:///var/lib/sallyport/"), "{shown}");
            assert!(!text.contains("[store]"), "{text}");
        } else {
            // The password is percent-encoded into the URL, and check-config does not show it.
            assert!(
                text.contains("sallyport:p%40ss%3Aw%2Frd%22x@db.cluster-x"),
                "{text}"
            );
            assert!(
                !shown.contains("p%40ss"),
                "check-config shows the password: {shown}"
            );
        }
    }
}
