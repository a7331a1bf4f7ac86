//! Snapshots of rendered trees, straight from the pure core (no I/O): what
//! a reviewer would see in a pull request, byte for byte.

use insights_policy_render::pipeline::render::RenderedTree;
use insights_policy_render::pipeline::render_response;

fn show(tree: &RenderedTree) -> String {
    let mut out = String::new();
    for (path, file) in &tree.files {
        out.push_str(&format!("==> {path} <==\n"));
        out.push_str(std::str::from_utf8(&file.bytes).unwrap());
    }
    out
}

fn snapshot(name: &str, input: &str) {
    let (tree, _) = render_response(input.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    // The same input gives the same bytes.
    assert_eq!(tree, render_response(input.as_bytes()).unwrap().0);
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, show(&tree));
    });
}

#[test]
fn bundled_example() {
    snapshot(
        "bundled_example",
        include_str!("../../examples/insights/response.yaml"),
    );
}

#[test]
fn namespaced_kinds_and_shared_kind_names() {
    snapshot(
        "namespaced_kinds",
        "apiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {name: allow, namespace: team-a}\nspec: {exceptions: []}\n\
---\napiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: allow, namespace: team-a}\nspec: {policyRefs: []}\n\
---\napiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: labels, namespace: team-b}\nspec: {rules: []}\n\
---\napiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: labels, namespace: team-a}\nspec: {rules: []}\n",
    );
}

#[test]
fn exported_fields_are_stripped_and_unknown_fields_kept_in_order() {
    snapshot(
        "stripped_fields",
        "kind: ClusterPolicy\napiVersion: kyverno.io/v1\nmetadata:\n  name: exported\n  uid: 0b6f7c1e-7d1f-4c1e-9f3b-000000000000\n  resourceVersion: \"123\"\n  generation: 4\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  managedFields:\n    - manager: kubectl\n  selfLink: /apis/kyverno.io/v1/clusterpolicies/exported\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"apiVersion\":\"kyverno.io/v1\"}\n    zz-keep: \"1\"\nspec:\n  zUnknownField: {nested: [1, 2.5, true, null]}\n  background: true\n  rules: []\nstatus:\n  ready: true\n",
    );
}

#[test]
fn ambiguous_scalars_are_quoted_and_types_kept() {
    snapshot(
        "ambiguous_scalars",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: scalars}\nspec:\n  strings: ['on', 'off', 'yes', 'no', 'y', 'N', '~', 'null', '1_000', '0x1F', '0o17', '12:30', '.inf', '1e3', '2024-01-01', 'true', '', ' padded ', 'a: b', 'a #b', '*', '- x']\n  plain: [on, yes, 1Gi, 100m, kyverno.io/v1, 'Deployment/*']\n  numbers: [1, -2, 0o17, 0x1F, 1e3, 2.5]\n  booleans: [true, false]\n  nulls: [null, ~]\n  cel: \"object.spec.containers.all(c,\\n  has(c.image))\"\n  trailing: \"line\\n\"\n  keep: \"a\\n\\n\"\n",
    );
}
