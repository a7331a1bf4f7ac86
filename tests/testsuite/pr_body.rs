//! Snapshots of the pull request body a reviewer approves from: what each
//! kind of change to a policy says about admission, blocking changes first,
//! escaping, the consumer named, and the size limit.

use insights_policy_render::pipeline::render_response;
use insights_policy_render::plan::{plan, ChangeKind, Existing, Plan};
use insights_policy_render::report::message::{
    commit_message, pr_body, pr_body_within, Appliers, Changes, ClusterChanges, BODY_LIMIT,
};

fn plan_of(before: &str, after: &str) -> Plan {
    let (old, _) = render_response(before.as_bytes()).unwrap();
    let (new, _) = render_response(after.as_bytes()).unwrap();
    let existing = old
        .files
        .into_iter()
        .map(|(p, f)| (p, Existing::File(f.bytes)))
        .collect();
    plan(new, existing).unwrap()
}

fn changes<'a>(plans: &'a [(&'a str, Plan)], appliers: Appliers) -> Changes<'a> {
    Changes {
        clusters: plans
            .iter()
            .map(|(cluster, plan)| ClusterChanges {
                cluster: Some(cluster),
                path: "kyverno-policies/prod",
                plan,
            })
            .collect(),
        manifests: Vec::new(),
        appliers,
    }
}

const FLUX: Appliers = Appliers {
    flux: true,
    argo: false,
};

fn snapshot(name: &str, body: &str) {
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, body);
    });
}

fn cluster_policy(name: &str, spec: &str) -> String {
    format!("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: {name}\n  annotations:\n    policies.kyverno.io/title: Title of {name}\n    policies.kyverno.io/severity: medium\nspec:\n{spec}")
}

const RULE: &str = "    - name: check-labels\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate:\n        message: labels are required\n        pattern: {metadata: {labels: {app: \"?*\"}}}\n";

#[test]
fn added_policies_in_enforce_are_listed_first() {
    let enforce = cluster_policy(
        "require-labels",
        &format!("  validationFailureAction: Enforce\n  rules:\n{RULE}"),
    );
    let audit = cluster_policy("audit-only", &format!("  rules:\n{RULE}"));
    let vp = "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: cel-deny\nspec:\n  matchConstraints: {resourceRules: [{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}]}\n  validations:\n    - expression: \"true\"\n";
    let p = plan_of("", &format!("{audit}---\n{enforce}---\n{vp}"));
    let plans = [("prod", p)];
    let body = pr_body(&changes(&plans, FLUX), "file response.yaml");
    let blocking = body.find("Starts blocking").unwrap();
    assert!(blocking < body.find("### prod").unwrap(), "{body}");
    snapshot("pr_body_added_enforcing", &body);
}

#[test]
fn audit_to_enforce_and_rule_changes() {
    let before = cluster_policy(
        "require-labels",
        &format!("  validationFailureAction: Audit\n  background: true\n  rules:\n{RULE}    - name: old-rule\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate: {{message: m, pattern: {{}}}}\n    - name: scoped\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      mutate: {{patchStrategicMerge: {{}}}}\n"),
    );
    let after = cluster_policy(
        "require-labels",
        &format!("  validationFailureAction: Enforce\n  background: false\n  rules:\n{}    - name: new-rule\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n      validate: {{failureAction: Audit, message: m, pattern: {{}}}}\n    - name: scoped\n      match: {{any: [{{resources: {{kinds: [Pod, Deployment]}}}}]}}\n      exclude: {{any: [{{resources: {{namespaces: [kube-system]}}}}]}}\n      mutate: {{patchStrategicMerge: {{}}}}\n", RULE.replace("labels are required", "the app label is required")),
    )
    .replace("severity: medium", "severity: high");
    let p = plan_of(&before, &after);
    let plans = [("prod", p)];
    snapshot(
        "pr_body_audit_to_enforce",
        &pr_body(&changes(&plans, FLUX), "x"),
    );
}

#[test]
fn ignore_to_fail_and_rule_failure_action() {
    let before = cluster_policy(
        "images",
        "  validationFailureAction: Enforce\n  webhookConfiguration: {failurePolicy: Ignore}\n  rules:\n    - name: no-latest\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {failureAction: Audit, message: m, pattern: {}}\n",
    );
    let after = cluster_policy(
        "images",
        "  validationFailureAction: Enforce\n  webhookConfiguration: {failurePolicy: Fail}\n  rules:\n    - name: no-latest\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {message: m, pattern: {}}\n",
    );
    // And one that stops blocking: Fail → Ignore, Enforce → Audit.
    let relaxed_before = cluster_policy(
        "relaxed",
        &format!("  validationFailureAction: Enforce\n  failurePolicy: Fail\n  rules:\n{RULE}"),
    );
    let relaxed_after = cluster_policy(
        "relaxed",
        &format!("  validationFailureAction: Audit\n  failurePolicy: Ignore\n  rules:\n{RULE}"),
    );
    let p = plan_of(
        &format!("{before}---\n{relaxed_before}"),
        &format!("{after}---\n{relaxed_after}"),
    );
    let plans = [("prod", p)];
    snapshot(
        "pr_body_ignore_to_fail",
        &pr_body(&changes(&plans, FLUX), "x"),
    );
}

#[test]
fn validation_actions_of_cel_policies_and_bindings() {
    let vp = |actions: &str, kinds: &str| {
        format!("apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: cel\nspec:\n  validationActions: [{actions}]\n  matchConstraints: {{resourceRules: [{{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [{kinds}]}}]}}\n  validations:\n    - expression: \"true\"\n")
    };
    let binding = |actions: &str| {
        format!("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: vap-binding\nspec:\n  policyName: vap\n  validationActions: [{actions}]\n")
    };
    let vap = |conditions: &str| {
        format!("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: vap\nspec:\n  failurePolicy: Fail\n  matchConditions:\n    - name: not-system\n      expression: \"{conditions}\"\n  validations:\n    - expression: \"true\"\n    - expression: \"false\"\n")
    };
    let before = format!(
        "{}---\n{}---\n{}",
        vp("Audit, Warn", "pods"),
        binding("Warn"),
        vap("true")
    );
    let after = format!(
        "{}---\n{}---\n{}",
        vp("Deny", "pods, services"),
        binding("Deny"),
        vap("false").replace("    - expression: \"false\"\n", "")
    );
    let p = plan_of(&before, &after);
    let plans = [("prod", p)];
    snapshot(
        "pr_body_validation_actions",
        &pr_body(&changes(&plans, FLUX), "x"),
    );
}

#[test]
fn titles_and_messages_cannot_mention_inject_html_or_break_tables() {
    let evil = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: evil\n  annotations:\n    policies.kyverno.io/title: \"Ping @octocat <img src=x onerror=alert(1)> | [link](http://x) *bold*\"\n    policies.kyverno.io/category: \"@acme/security-team\"\n    policies.kyverno.io/severity: \"<b>high</b>\"\nspec:\n  rules:\n    - name: \"rule `with` | pipe @user\"\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {message: m, pattern: {}}\n";
    let changed = evil.replace("validate: {", "validate: {failureAction: Enforce, ");
    let p = plan_of(evil, &changed);
    let plans = [("prod", p)];
    let body = pr_body(
        &changes(&plans, FLUX),
        "https://insights.example, organization @acme",
    );
    for line in body.lines() {
        // A code span is literal on both forges: no mention, no HTML.
        let line: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect();
        assert!(
            !line.contains("@octocat") && !line.contains("@acme") && !line.contains("@user"),
            "{line}"
        );
        assert!(!line.contains("<img") && !line.contains("<b>"), "{line}");
    }
    snapshot("pr_body_escaping", &body);
}

#[test]
fn the_consumer_named_is_the_one_written() {
    let one = cluster_policy("one", &format!("  rules:\n{RULE}"));
    let p = plan_of(&one, "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: two\nspec:\n  rules: []\n");
    let plans = [("prod", p)];
    let mut out = String::new();
    for (name, appliers) in [
        ("flux", FLUX),
        (
            "argo",
            Appliers {
                flux: false,
                argo: true,
            },
        ),
        ("neither", Appliers::default()),
    ] {
        let mut c = changes(&plans, appliers);
        let body = pr_body(&c, "x");
        let last = body.lines().last().unwrap();
        out.push_str(&format!("{name}: {last}\n"));
        c.clusters.clear();
        c.manifests = vec![(
            "clusters/prod/kyverno-policies.yaml".into(),
            ChangeKind::Add,
        )];
        let subject = commit_message(&c, "x");
        out.push_str(&format!("{name}: {}\n", subject.lines().next().unwrap()));
        let heading = pr_body(&c, "x");
        let heading = heading.lines().find(|l| l.contains("manifests")).unwrap();
        out.push_str(&format!("{name}: {heading}\n"));
        if name != "neither" && !(appliers.flux && appliers.argo) {
            assert!(!body.contains("Flux and Argo CD") && !subject.contains("Flux and Argo CD"));
        }
        if name == "neither" {
            assert!(!body.contains("Flux") && !body.contains("Argo"), "{body}");
        }
    }
    snapshot("pr_body_consumers", &out);
}

fn many(n: usize) -> String {
    (0..n)
        .map(|i| {
            cluster_policy(
                &format!("policy-{i:05}"),
                &format!("  validationFailureAction: Enforce\n  rules:\n{RULE}"),
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn a_body_over_the_limit_is_summarised_and_says_so() {
    let p = plan_of("", &many(12));
    let plans = [("prod", p)];
    let body = pr_body_within(&changes(&plans, FLUX), "x", 2_500);
    assert!(body.len() <= 2_500, "{}", body.len());
    snapshot("pr_body_summarised", &body);

    // The forges' own limit, with thousands of policies.
    let p = plan_of("", &many(2_000));
    let plans = [("prod", p)];
    let body = pr_body(&changes(&plans, FLUX), "x");
    assert!(body.len() <= BODY_LIMIT, "{}", body.len());
    assert!(body.contains("This description is summarised"));
    assert!(body.contains("2000 added, 0 updated, 0 removed"));
    assert!(body.trim_end().ends_with("once this merges."));
}
