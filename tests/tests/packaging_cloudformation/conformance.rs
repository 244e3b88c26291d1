//! The conformance-pack rules cfn-lint does not check, over a CloudFormation template decoded
//! to JSON (short-form tags already turned into `{"Ref": …}` / `{"Fn::…": …}` maps).
//!
//! The rules follow the AWS Config rules of the HIPAA reference infrastructure's conformance
//! pack that a template can break: `restricted-ssh` and `vpc-sg-open-only-to-authorized-ports`
//! (no ingress from anywhere), `ec2-instance-no-public-ip`, `ec2-imdsv2-check`,
//! `encrypted-volumes`, `cloudwatch-log-group-encrypted` (plus the 2192-day retention and
//! retention on deletion the issue asks for), `cloudwatch-alarm-action-check`,
//! `sns-encrypted-kms`, `cmk-backing-key-rotation-enabled`, and
//! `iam-policy-no-statements-with-admin-access` / `…-full-access`.
//!
//! Values are checked where the template fixes them: literals, and parameter defaults reached
//! through `Ref`, `Fn::Select` and either branch of `Fn::If`. What an operator passes at
//! deploy time is the stack's Rules' business.

use std::fmt;

use serde_json::{Map, Value};

/// One rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Security-group ingress (or a prefix list used for it) open to 0.0.0.0/0 or ::/0.
    OpenIngress,
    /// An instance or launch template that gets (or may get) a public IP.
    PublicIp,
    /// Instance metadata without IMDSv2 required and a hop limit of 1.
    Imdsv2,
    /// An EBS volume that is not encrypted, or a launch template that leaves it to the AMI.
    UnencryptedEbs,
    /// A log group without a KMS key (or with a key that does not rotate or is not kept).
    LogGroupEncryption,
    /// A log group kept fewer than 2192 days (or forever by omission).
    LogGroupRetention,
    /// A log group deleted or replaced with the stack (DeletionPolicy/UpdateReplacePolicy).
    LogGroupRetain,
    /// An alarm without alarm actions or without insufficient-data actions.
    AlarmActions,
    /// An SNS topic without a KMS key.
    SnsEncryption,
    /// A customer-managed KMS key without rotation.
    KmsRotation,
    /// A policy statement allowing `*` or `service:*` on `*`, or `NotAction`, or an admin
    /// managed policy.
    WildcardIam,
}

impl Rule {
    /// Every rule, for the fixtures' coverage check.
    pub const ALL: [Rule; 11] = [
        Rule::OpenIngress,
        Rule::PublicIp,
        Rule::Imdsv2,
        Rule::UnencryptedEbs,
        Rule::LogGroupEncryption,
        Rule::LogGroupRetention,
        Rule::LogGroupRetain,
        Rule::AlarmActions,
        Rule::SnsEncryption,
        Rule::KmsRotation,
        Rule::WildcardIam,
    ];

    /// The name used in messages and fixture file names.
    pub fn name(self) -> &'static str {
        match self {
            Rule::OpenIngress => "open-ingress",
            Rule::PublicIp => "public-ip",
            Rule::Imdsv2 => "imdsv2",
            Rule::UnencryptedEbs => "unencrypted-ebs",
            Rule::LogGroupEncryption => "log-group-encryption",
            Rule::LogGroupRetention => "log-group-retention",
            Rule::LogGroupRetain => "log-group-retain",
            Rule::AlarmActions => "alarm-actions",
            Rule::SnsEncryption => "sns-encryption",
            Rule::KmsRotation => "kms-rotation",
            Rule::WildcardIam => "wildcard-iam",
        }
    }
}

/// The shortest retention the audit log group may have (6 years).
pub const MIN_RETENTION_DAYS: u64 = 2192;

/// One broken rule, naming the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The logical id of the resource.
    pub resource: String,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.rule.name(),
            self.resource,
            self.detail
        )
    }
}

/// Checks a decoded template; an empty list means it passes.
pub fn check(template: &Value) -> Vec<Finding> {
    let empty = Map::new();
    let resources = template
        .get("Resources")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut c = Checker {
        params: template
            .get("Parameters")
            .and_then(Value::as_object)
            .unwrap_or(&empty),
        resources,
        findings: Vec::new(),
    };
    for (id, res) in resources {
        let ty = res.get("Type").and_then(Value::as_str).unwrap_or_default();
        let props = res.get("Properties").unwrap_or(&Value::Null);
        match ty {
            "AWS::EC2::SecurityGroup" => {
                for rule in items(props.get("SecurityGroupIngress")) {
                    c.ingress(id, rule);
                }
            }
            "AWS::EC2::SecurityGroupIngress" => c.ingress(id, props),
            "AWS::EC2::Instance" => c.instance(id, props),
            "AWS::EC2::LaunchTemplate" => {
                c.launch_data(id, props.get("LaunchTemplateData").unwrap_or(&Value::Null))
            }
            "AWS::AutoScaling::LaunchConfiguration" => c.launch_configuration(id, props),
            "AWS::EC2::Volume" if !is_true(props.get("Encrypted")) => {
                c.find(Rule::UnencryptedEbs, id, "Encrypted is not true");
            }
            "AWS::Logs::LogGroup" => c.log_group(id, res, props),
            "AWS::CloudWatch::Alarm" => c.alarm(id, props),
            "AWS::SNS::Topic" if props.get("KmsMasterKeyId").is_none() => {
                c.find(Rule::SnsEncryption, id, "no KmsMasterKeyId");
            }
            "AWS::KMS::Key" => {
                let symmetric = props
                    .get("KeySpec")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s == "SYMMETRIC_DEFAULT");
                if symmetric && !is_true(props.get("EnableKeyRotation")) {
                    c.find(Rule::KmsRotation, id, "EnableKeyRotation is not true");
                }
                c.policy(id, props.get("KeyPolicy"));
            }
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
                for p in items(props.get("Policies")) {
                    c.policy(id, p.get("PolicyDocument"));
                }
                c.managed_arns(id, props.get("ManagedPolicyArns"));
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                c.policy(id, props.get("PolicyDocument"));
            }
            "AWS::SNS::TopicPolicy"
            | "AWS::S3::BucketPolicy"
            | "AWS::SQS::QueuePolicy"
            | "AWS::Logs::ResourcePolicy" => c.policy(id, props.get("PolicyDocument")),
            _ => {}
        }
    }
    c.findings
        .sort_by(|a, b| (a.rule, &a.resource).cmp(&(b.rule, &b.resource)));
    c.findings
}

struct Checker<'t> {
    params: &'t Map<String, Value>,
    resources: &'t Map<String, Value>,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn find(&mut self, rule: Rule, resource: &str, detail: impl Into<String>) {
        self.findings.push(Finding {
            rule,
            resource: resource.to_owned(),
            detail: detail.into(),
        });
    }

    /// The strings a value can take in this template: a literal, a parameter's default (each
    /// item of a list default), either branch of `Fn::If`.
    fn strings(&self, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Number(n) => vec![n.to_string()],
            Value::Object(m) if m.len() == 1 => {
                if let Some(Value::String(name)) = m.get("Ref") {
                    return self.param_default(name);
                }
                if let Some(Value::Array(args)) = m.get("Fn::Select") {
                    return args.get(1).map(|l| self.strings(l)).unwrap_or_default();
                }
                if let Some(Value::Array(args)) = m.get("Fn::If") {
                    return args.iter().skip(1).flat_map(|b| self.strings(b)).collect();
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn param_default(&self, name: &str) -> Vec<String> {
        let Some(p) = self.params.get(name) else {
            return Vec::new();
        };
        let list = p
            .get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains("List"));
        match p.get("Default") {
            Some(Value::String(s)) if list => s.split(',').map(|x| x.trim().to_owned()).collect(),
            Some(Value::Array(a)) => a.iter().flat_map(|x| self.strings(x)).collect(),
            Some(d) => self.strings(d),
            None => Vec::new(),
        }
    }

    fn ingress(&mut self, id: &str, rule: &Value) {
        for key in ["CidrIp", "CidrIpv6"] {
            if let Some(v) = rule.get(key) {
                for s in self.strings(v) {
                    if is_anywhere(&s) {
                        self.find(Rule::OpenIngress, id, format!("{key} {s}"));
                    }
                }
            }
        }
        if let Some(pl) = rule.get("SourcePrefixListId") {
            if let Some(list) = self.local_ref(pl) {
                let entries = self
                    .resources
                    .get(&list)
                    .and_then(|r| r.get("Properties"))
                    .and_then(|p| p.get("Entries"));
                let mut open = Vec::new();
                for e in items(entries) {
                    for s in e.get("Cidr").map(|c| self.strings(c)).unwrap_or_default() {
                        if is_anywhere(&s) {
                            open.push(s);
                        }
                    }
                }
                for s in open {
                    self.find(
                        Rule::OpenIngress,
                        id,
                        format!("prefix list {list} holds {s}"),
                    );
                }
            }
        }
    }

    /// The logical id a `Ref`/`Fn::GetAtt` names, if it is a resource of this template.
    fn local_ref(&self, v: &Value) -> Option<String> {
        let name = match v {
            Value::Object(m) => match (m.get("Ref"), m.get("Fn::GetAtt")) {
                (Some(Value::String(r)), _) => r.clone(),
                (_, Some(Value::Array(a))) => a.first()?.as_str()?.to_owned(),
                (_, Some(Value::String(s))) => s.split('.').next()?.to_owned(),
                _ => return None,
            },
            _ => return None,
        };
        self.resources.contains_key(&name).then_some(name)
    }

    fn instance(&mut self, id: &str, props: &Value) {
        if props.get("LaunchTemplate").is_none() {
            self.find(
                Rule::Imdsv2,
                id,
                "an instance without a launch template cannot require IMDSv2",
            );
        }
        self.network_interfaces(
            id,
            props.get("NetworkInterfaces"),
            props.get("LaunchTemplate"),
        );
        self.block_devices(id, props.get("BlockDeviceMappings"), false);
    }

    fn launch_data(&mut self, id: &str, data: &Value) {
        let md = data.get("MetadataOptions");
        let tokens = md.and_then(|m| m.get("HttpTokens")).and_then(Value::as_str);
        if tokens != Some("required") {
            self.find(
                Rule::Imdsv2,
                id,
                "MetadataOptions.HttpTokens is not required",
            );
        }
        let hops = md
            .and_then(|m| m.get("HttpPutResponseHopLimit"))
            .map(|v| self.strings(v));
        if hops.as_deref() != Some(&["1".to_owned()]) {
            self.find(
                Rule::Imdsv2,
                id,
                "MetadataOptions.HttpPutResponseHopLimit is not 1",
            );
        }
        self.network_interfaces(id, data.get("NetworkInterfaces"), None);
        self.block_devices(id, data.get("BlockDeviceMappings"), true);
    }

    fn launch_configuration(&mut self, id: &str, props: &Value) {
        if !is_false(props.get("AssociatePublicIpAddress")) {
            self.find(Rule::PublicIp, id, "AssociatePublicIpAddress is not false");
        }
        let tokens = props
            .get("MetadataOptions")
            .and_then(|m| m.get("HttpTokens"))
            .and_then(Value::as_str);
        if tokens != Some("required") {
            self.find(
                Rule::Imdsv2,
                id,
                "MetadataOptions.HttpTokens is not required",
            );
        }
        self.block_devices(id, props.get("BlockDeviceMappings"), true);
    }

    /// A public IP must be refused explicitly: the DMZ subnets map one on launch.
    fn network_interfaces(&mut self, id: &str, nics: Option<&Value>, template: Option<&Value>) {
        let nics = items(nics);
        if nics.is_empty() {
            if template.is_none() {
                self.find(
                    Rule::PublicIp,
                    id,
                    "no network interface with AssociatePublicIpAddress: false",
                );
            }
            return;
        }
        for nic in nics {
            if !is_false(nic.get("AssociatePublicIpAddress")) {
                self.find(
                    Rule::PublicIp,
                    id,
                    "a network interface without AssociatePublicIpAddress: false",
                );
            }
        }
    }

    fn block_devices(&mut self, id: &str, mappings: Option<&Value>, required: bool) {
        let mappings = items(mappings);
        if mappings.is_empty() && required {
            self.find(
                Rule::UnencryptedEbs,
                id,
                "no BlockDeviceMappings: the root volume's encryption is left to the AMI",
            );
        }
        for m in mappings {
            if let Some(ebs) = m.get("Ebs") {
                if !is_true(ebs.get("Encrypted")) {
                    let dev = m
                        .get("DeviceName")
                        .and_then(Value::as_str)
                        .unwrap_or("a volume");
                    self.find(
                        Rule::UnencryptedEbs,
                        id,
                        format!("{dev}: Encrypted is not true"),
                    );
                }
            }
        }
    }

    fn log_group(&mut self, id: &str, res: &Value, props: &Value) {
        match props.get("KmsKeyId") {
            None => self.find(Rule::LogGroupEncryption, id, "no KmsKeyId"),
            Some(k) => {
                if let Some(key) = self.local_ref(k) {
                    let key_res = self.resources.get(&key).unwrap_or(&Value::Null);
                    if !retained(key_res) {
                        self.find(
                            Rule::LogGroupEncryption,
                            id,
                            format!("its key {key} is not retained: the kept records would be unreadable"),
                        );
                    }
                }
            }
        }
        let days: Vec<u64> = props
            .get("RetentionInDays")
            .map(|v| self.strings(v))
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        if days.is_empty() {
            self.find(
                Rule::LogGroupRetention,
                id,
                format!("no RetentionInDays (>= {MIN_RETENTION_DAYS} expected)"),
            );
        }
        for d in days {
            if d < MIN_RETENTION_DAYS {
                self.find(
                    Rule::LogGroupRetention,
                    id,
                    format!("RetentionInDays {d} < {MIN_RETENTION_DAYS}"),
                );
            }
        }
        if !retained(res) {
            self.find(
                Rule::LogGroupRetain,
                id,
                "DeletionPolicy and UpdateReplacePolicy must both be Retain",
            );
        }
    }

    fn alarm(&mut self, id: &str, props: &Value) {
        for key in ["AlarmActions", "InsufficientDataActions"] {
            if items(props.get(key)).is_empty() {
                self.find(Rule::AlarmActions, id, format!("no {key}"));
            }
        }
    }

    fn managed_arns(&mut self, id: &str, arns: Option<&Value>) {
        for a in items(arns) {
            for s in self.strings(a) {
                let name = s.rsplit('/').next().unwrap_or_default();
                if matches!(
                    name,
                    "AdministratorAccess" | "PowerUserAccess" | "IAMFullAccess"
                ) {
                    self.find(Rule::WildcardIam, id, format!("managed policy {s}"));
                }
            }
        }
    }

    fn policy(&mut self, id: &str, doc: Option<&Value>) {
        let Some(doc) = doc else { return };
        for st in items(doc.get("Statement")) {
            if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            if st.get("NotAction").is_some() {
                self.find(Rule::WildcardIam, id, "an Allow statement with NotAction");
                continue;
            }
            let actions: Vec<String> = items(st.get("Action"))
                .iter()
                .flat_map(|a| self.strings(a))
                .collect();
            let resources: Vec<String> = items(st.get("Resource"))
                .iter()
                .flat_map(|r| self.strings(r))
                .collect();
            let on_everything =
                resources.iter().any(|r| r == "*") || st.get("NotResource").is_some();
            let broad: Vec<&String> = actions
                .iter()
                .filter(|a| *a == "*" || a.ends_with(":*"))
                .collect();
            if on_everything && !broad.is_empty() {
                let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("(no Sid)");
                self.find(
                    Rule::WildcardIam,
                    id,
                    format!("statement {sid} allows {broad:?} on *"),
                );
            }
        }
    }
}

/// A property that is a single item or a list, as a list (absent: empty). An item that is
/// `Fn::If [cond, a, b]` stands for each of `a` and `b` that is not `AWS::NoValue`, so a
/// conditional statement or rule is checked in both branches.
fn items(v: Option<&Value>) -> Vec<&Value> {
    let listed: Vec<&Value> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    };
    let mut out = Vec::new();
    for item in listed {
        match item.get("Fn::If").and_then(Value::as_array) {
            Some(args) => out.extend(args.iter().skip(1).filter(|b| !is_no_value(b))),
            None => out.push(item),
        }
    }
    out
}

fn is_no_value(v: &Value) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

fn is_false(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(false))) || matches!(v, Some(Value::String(s)) if s == "false")
}

fn is_anywhere(cidr: &str) -> bool {
    let (addr, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    len == "0"
        && (addr
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_unspecified()))
}

fn retained(res: &Value) -> bool {
    ["DeletionPolicy", "UpdateReplacePolicy"]
        .iter()
        .all(|k| res.get(*k).and_then(Value::as_str) == Some("Retain"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn anywhere_is_every_zero_length_prefix() {
        assert!(is_anywhere("0.0.0.0/0"));
        assert!(is_anywhere("::/0"));
        assert!(!is_anywhere("10.0.0.0/8"));
        assert!(!is_anywhere("0.0.0.0/1"));
    }
}
