#!/usr/bin/env python3
"""template.yaml as CloudFormation would deploy it, for the local stack and the IAM check.

    render-template.py TEMPLATE [Name=Value ...]  ->  JSON on stdout

The SAM transform is AWS's own (samtranslator, the library behind `sam` and CloudFormation's
AWS::Serverless transform): Globals merged into each function, the roles SAM makes, policy
templates (AWSSecretsManagerGetSecretValuePolicy, ...) expanded. Then the intrinsic functions
are resolved for the given parameters (the template's defaults for the rest): Ref, Fn::GetAtt,
Fn::Sub, Fn::If with the template's Conditions, Fn::Join, Fn::Equals/And/Or/Not,
AWS::NoValue and the pseudo parameters. A value that cannot be resolved stops the script
(fail closed): the IAM check never judges a policy it had to guess.

The secrets' ARNs exist only once they are created (AWS adds a random suffix), so a Ref to
an AWS::SecretsManager::Secret renders as "{{LogicalId}}", which the caller replaces.

Output:
  functions: {LogicalId: {role_arn, timeout, memory, environment, statements: [...]}}
  resource_policies: {"{{SecretLogicalId}}": [statements]}
  tables: {LogicalId: name}, secrets: {LogicalId: {name, initial}} (initial: the value
  CloudFormation creates it with, GenerateSecretString made here)
Each statement carries "Source": "<function> policy <n> statement <m>".
"""

import json
import os
import secrets
import string
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "identity-local"


class Unresolved(Exception):
    pass


class NoValue:
    pass


def initial_value(props):
    """The first value of a secret, as CloudFormation creates it."""
    if "SecretString" in props:
        return props["SecretString"]
    g = props["GenerateSecretString"]
    alphabet = string.ascii_letters + string.digits
    if not g.get("ExcludePunctuation"):
        alphabet += string.punctuation
    value = "".join(secrets.choice(alphabet) for _ in range(int(g.get("PasswordLength", 32))))
    if "GenerateStringKey" not in g:
        return value
    doc = json.loads(g.get("SecretStringTemplate", "{}"))
    doc[g["GenerateStringKey"]] = value
    return json.dumps(doc)


def main() -> None:
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the transform's own pseudo parameters
    path, *pairs = sys.argv[1:]
    with open(path, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    params = {}
    for name, spec in sam.get("Parameters", {}).items():
        if "Default" in spec:
            params[name] = spec["Default"]
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in sam.get("Parameters", {}):
            sys.exit(f"render-template: no parameter {name} in {path}")
        params[name] = value

    class NoManagedPolicies:
        def load(self):
            return {}

    # As `sam package` leaves it: the code uploaded, each CodeUri an S3 location.
    for logical, r in sam["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = f"s3://local/{logical}.zip"
    cfn = transform(sam, dict(params), NoManagedPolicies())
    resources = cfn["Resources"]
    conditions = {}
    pseudo = {
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }

    def physical(logical):
        r = resources[logical]
        t, props = r["Type"], r.get("Properties", {})
        if t == "AWS::DynamoDB::Table":
            return resolve(props["TableName"])
        if t == "AWS::SecretsManager::Secret":
            return "{{" + logical + "}}"
        if t == "AWS::IAM::Role":
            return f"{STACK}-{logical}"
        if t == "AWS::Lambda::Function":
            return f"{STACK}-{logical}"
        if t == "AWS::Logs::LogGroup":
            return f"/aws/lambda/{STACK}-{logical}"
        if t == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{STACK}-{logical}"
        return f"{STACK}-{logical}"

    def ref(name):
        if name in params:
            return params[name]
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NoValue
        if name in resources:
            return physical(name)
        raise Unresolved(f"Ref {name}")

    def get_att(logical, attr):
        if logical not in resources:
            raise Unresolved(f"GetAtt {logical}.{attr}")
        t = resources[logical]["Type"]
        name = physical(logical)
        if attr == "Arn":
            if t == "AWS::DynamoDB::Table":
                return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            if t == "AWS::IAM::Role":
                return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
            if t == "AWS::Lambda::Function":
                return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
            if t == "AWS::Logs::LogGroup":
                return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        if t == "AWS::DynamoDB::Table" and attr == "StreamArn":
            raise Unresolved(f"GetAtt {logical}.{attr}")
        raise Unresolved(f"GetAtt {logical}.{attr}")

    def sub(template, extra):
        out, i = "", 0
        while i < len(template):
            if template.startswith("${!", i):
                out += "${"
                i += 3
                continue
            if template.startswith("${", i):
                end = template.index("}", i)
                name = template[i + 2 : end]
                if name in extra:
                    value = resolve(extra[name])
                elif "." in name and name.split(".")[0] in resources:
                    value = get_att(*name.split(".", 1))
                else:
                    value = ref(name)
                out += str(value)
                i = end + 1
                continue
            out += template[i]
            i += 1
        return out

    def condition(name):
        if name not in conditions:
            conditions[name] = None  # a cycle resolves to an error below
            conditions[name] = truth(cfn["Conditions"][name])
        if conditions[name] is None:
            raise Unresolved(f"Condition {name} (cycle)")
        return conditions[name]

    def truth(node):
        if isinstance(node, dict) and len(node) == 1:
            (k, v), = node.items()
            if k == "Fn::Equals":
                a, b = (resolve(x) for x in v)
                return str(a) == str(b)
            if k == "Fn::Not":
                return not truth(v[0])
            if k == "Fn::And":
                return all(truth(x) for x in v)
            if k == "Fn::Or":
                return any(truth(x) for x in v)
            if k == "Condition":
                return condition(v)
        raise Unresolved(f"condition {node!r}")

    def resolve(node):
        if isinstance(node, list):
            items = [resolve(x) for x in node]
            return [x for x in items if x is not NoValue]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return ref(v)
            if k == "Fn::GetAtt":
                logical, attr = v if isinstance(v, list) else v.split(".", 1)
                return get_att(logical, attr)
            if k == "Fn::Sub":
                if isinstance(v, list):
                    return sub(v[0], v[1])
                return sub(v, {})
            if k == "Fn::If":
                name, yes, no = v
                return resolve(yes if condition(name) else no)
            if k == "Fn::Join":
                sep, items = v
                return sep.join(str(x) for x in resolve(items))
            if k.startswith("Fn::"):
                raise Unresolved(k)
        out = {}
        for k, v in node.items():
            r = resolve(v)
            if r is not NoValue:
                out[k] = r
        return out

    functions, resource_policies, tables, secret_specs = {}, {}, {}, {}
    for logical, r in resources.items():
        t = r["Type"]
        if t == "AWS::DynamoDB::Table":
            tables[logical] = physical(logical)
        elif t == "AWS::SecretsManager::Secret":
            props = r["Properties"]
            secret_specs[logical] = {"name": resolve(props["Name"]), "initial": initial_value(props)}
        elif t == "AWS::SecretsManager::ResourcePolicy":
            props = resolve(r["Properties"])
            statements = props["ResourcePolicy"]["Statement"]
            for n, s in enumerate(statements):
                s["Source"] = f"{logical} statement {n}"
            resource_policies.setdefault(props["SecretId"], []).extend(statements)
    for logical, r in resources.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        props = r["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        role_props = resolve(resources[role]["Properties"])
        statements = []
        for n, policy in enumerate(role_props.get("Policies", [])):
            doc = policy["PolicyDocument"]["Statement"]
            for m, s in enumerate(doc if isinstance(doc, list) else [doc]):
                s["Source"] = f"{logical} policy {n} ({policy['PolicyName']}) statement {m}"
                statements.append(s)
        managed = role_props.get("ManagedPolicyArns", [])
        env = resolve(props.get("Environment", {})).get("Variables", {})
        functions[logical] = {
            "role_arn": get_att(role, "Arn"),
            "timeout": int(resolve(props.get("Timeout", 3))),
            "memory": int(resolve(props.get("MemorySize", 128))),
            "environment": {k: str(v) for k, v in env.items()},
            "managed_policies": managed,
            "statements": statements,
        }
    json.dump(
        {
            "partition": PARTITION,
            "region": REGION,
            "account": ACCOUNT,
            "functions": functions,
            "resource_policies": resource_policies,
            "tables": tables,
            "secrets": secret_specs,
        },
        sys.stdout,
        indent=1,
        sort_keys=True,
    )


if __name__ == "__main__":
    try:
        main()
    except Unresolved as e:
        sys.exit(f"render-template: cannot resolve {e}")
