//! What an operator of a security service expects of template.yaml, read as YAML (with
//! CloudFormation's short-form tags) rather than as lines: limits at the edge, data that
//! survives mistakes, access logs and function logs as JSON, alarms, and the SDK's budget.

use identity_shared::store::Table;
use yaml_serde::Value;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    yaml_serde::from_str(&text).expect("template.yaml is YAML")
}

fn resources(t: &Value) -> &yaml_serde::Mapping {
    t["Resources"].as_mapping().expect("Resources")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["Resources"]
        .get(id)
        .unwrap_or_else(|| panic!("{id} missing from template.yaml"))
}

/// `!Tag value` → (tag, value); anything else → ("", itself).
fn tagged(v: &Value) -> (String, &Value) {
    match v {
        Value::Tagged(t) => (t.tag.to_string(), &t.value),
        other => (String::new(), other),
    }
}

fn is_ref(v: &Value, name: &str) -> bool {
    let (tag, inner) = tagged(v);
    tag == "!Ref" && inner.as_str() == Some(name)
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

#[test]
fn the_api_is_throttled_everywhere_and_tighter_on_the_guessable_routes() {
    let t = template();
    let api = &resource(&t, "HttpApi")["Properties"];
    let default = &api["DefaultRouteSettings"];
    assert!(is_ref(&default["ThrottlingRateLimit"], "ThrottleRateLimit"));
    assert!(is_ref(
        &default["ThrottlingBurstLimit"],
        "ThrottleBurstLimit"
    ));
    let routes = api["RouteSettings"].as_mapping().expect("RouteSettings");
    for key in [
        "POST /login",
        "POST /oauth/token",
        "POST /oauth/jwt/token",
        "POST /account/password/reset",
        "POST /sso/acs",
        // Single Logout reads SAML too (either binding): as costly to a flood as the ACS.
        "GET /sso/slo",
        "POST /sso/slo",
        "POST /device",
        "POST /oauth/device/authorize",
    ] {
        let r = routes
            .get(key)
            .unwrap_or_else(|| panic!("no throttling for {key}"));
        assert!(
            is_ref(&r["ThrottlingRateLimit"], "SensitiveRouteRateLimit"),
            "{key}"
        );
        assert!(
            is_ref(&r["ThrottlingBurstLimit"], "SensitiveRouteBurstLimit"),
            "{key}"
        );
        // Every throttled route exists (a typo would throttle nothing).
        let (method, path) = key.split_once(' ').unwrap();
        assert!(
            functions(&t).iter().any(|(_, f)| {
                f["Properties"]["Events"]
                    .as_mapping()
                    .is_some_and(|events| {
                        events.values().any(|e| {
                            e["Properties"]["Method"].as_str() == Some(method)
                                && e["Properties"]["Path"].as_str() == Some(path)
                        })
                    })
            }),
            "{key} is not a route of template.yaml"
        );
    }
    // The tighter limits are tighter by default.
    let params = &t["Parameters"];
    let n = |p: &str| params[p]["Default"].as_i64().unwrap();
    assert!(n("SensitiveRouteRateLimit") < n("ThrottleRateLimit"));
    assert!(n("SensitiveRouteBurstLimit") < n("ThrottleBurstLimit"));
}

#[test]
fn every_function_has_reserved_concurrency_wired_to_its_parameter() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    let (tag, args) = tagged(&globals["ReservedConcurrentExecutions"]);
    assert_eq!(tag, "!If");
    let args = args.as_sequence().unwrap();
    assert_eq!(args[0].as_str(), Some("HasReservedConcurrency"));
    assert!(is_ref(&args[1], "ReservedConcurrency"));
    assert!(is_ref(&args[2], "AWS::NoValue"));
    for (id, f) in functions(&t) {
        let own = f["Properties"].get("ReservedConcurrentExecutions");
        if id == "KeyRotationFunction" {
            // Not an endpoint: nothing reserved for it.
            assert!(own.is_some_and(|v| is_ref(v, "AWS::NoValue")), "{id}");
        } else {
            assert!(own.is_none(), "{id} overrides the reserved concurrency");
        }
    }
}

#[test]
fn what_people_care_about_survives_a_delete_a_replacement_and_a_mistake() {
    let t = template();
    for table in Table::ALL {
        let r = resource(&t, table.logical_id());
        let kept = !matches!(table, Table::Sessions | Table::Once);
        let policy = if kept { "Retain" } else { "Delete" };
        assert_eq!(r["DeletionPolicy"].as_str(), Some(policy), "{table:?}");
        assert_eq!(r["UpdateReplacePolicy"].as_str(), Some(policy), "{table:?}");
        let p = &r["Properties"];
        if kept {
            assert_eq!(
                p["DeletionProtectionEnabled"].as_bool(),
                Some(true),
                "{table:?}"
            );
            assert_eq!(
                p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
                Some(true),
                "{table:?}"
            );
        }
    }
    let secrets = of_type(&t, "AWS::SecretsManager::Secret");
    assert_eq!(secrets.len(), 3, "the cookie, signing and SAML SP secrets");
    for (id, s) in secrets {
        assert_eq!(s["DeletionPolicy"].as_str(), Some("Retain"), "{id}");
        assert_eq!(s["UpdateReplacePolicy"].as_str(), Some("Retain"), "{id}");
    }
}

#[test]
fn the_api_writes_json_access_logs_and_the_functions_json_logs() {
    let t = template();
    let api = &resource(&t, "HttpApi")["Properties"];
    let settings = &api["AccessLogSettings"];
    let (tag, arn) = tagged(&settings["DestinationArn"]);
    assert_eq!(tag, "!GetAtt");
    assert_eq!(arn.as_str(), Some("ApiAccessLogs.Arn"));
    let format: serde_json::Value =
        serde_json::from_str(settings["Format"].as_str().unwrap()).expect("a JSON format");
    for (field, variable) in [
        ("ip", "$context.identity.sourceIp"),
        ("routeKey", "$context.routeKey"),
        ("status", "$context.status"),
        ("responseLatency", "$context.responseLatency"),
        ("requestId", "$context.requestId"),
    ] {
        assert_eq!(format[field].as_str(), Some(variable), "{field}");
    }
    let logs = &resource(&t, "ApiAccessLogs")["Properties"];
    assert!(is_ref(&logs["RetentionInDays"], "LogRetentionDays"));
    let functions = functions(&t);
    assert_eq!(
        functions.len(),
        6,
        "five HTTP functions and the key rotation"
    );
    for (id, f) in functions {
        let config = &f["Properties"]["LoggingConfig"];
        assert_eq!(config["LogFormat"].as_str(), Some("JSON"), "{id}");
        let (_, group) = tagged(&config["LogGroup"]);
        let group = group.as_str().unwrap();
        assert!(
            is_ref(
                &resource(&t, group)["Properties"]["RetentionInDays"],
                "LogRetentionDays"
            ),
            "{id}: its log group has the retention parameter"
        );
    }
}

/// The metric names an alarm watches (its own, or those of its metric-math terms), with
/// the dimension values (`!Ref` targets) they name.
fn watched(alarm: &Value) -> Vec<(String, Vec<String>)> {
    let p = &alarm["Properties"];
    let dims = |d: &Value| -> Vec<String> {
        d.as_sequence()
            .map(|s| {
                s.iter()
                    .map(|x| {
                        let (_, v) = tagged(&x["Value"]);
                        v.as_str().unwrap_or_default().to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(name) = p["MetricName"].as_str() {
        return vec![(name.to_string(), dims(&p["Dimensions"]))];
    }
    p["Metrics"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let metric = &m["MetricStat"]["Metric"];
            metric["MetricName"]
                .as_str()
                .map(|n| (n.to_string(), dims(&metric["Dimensions"])))
        })
        .collect()
}

#[test]
fn alarms_watch_errors_throttles_and_key_refreshes_and_notify_the_topic() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let functions: Vec<String> = functions(&t).into_iter().map(|(id, _)| id).collect();
    let find = |metric: &str| -> Vec<Vec<String>> {
        alarms
            .iter()
            .flat_map(|(_, a)| watched(a))
            .filter(|(m, _)| m == metric)
            .map(|(_, d)| d)
            .collect()
    };
    // The API's 5xx rate.
    assert!(
        find("5xx")
            .iter()
            .any(|d| d.contains(&"HttpApi".to_string())),
        "an alarm on the API's 5xx"
    );
    // Errors and throttles of every function.
    for metric in ["Errors", "Throttles"] {
        let dims = find(metric).concat();
        for f in &functions {
            assert!(dims.contains(f), "{metric} of {f} is watched");
        }
    }
    // DynamoDB throttling on every table.
    for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
        let dims = find(metric).concat();
        for table in Table::ALL {
            assert!(
                dims.contains(&table.logical_id().to_string()),
                "{metric} of {table:?}"
            );
        }
    }
    // Key refresh failures: a metric filter on every function's log group, on the line the
    // service writes, and an alarm on its metric.
    let filters = of_type(&t, "AWS::Logs::MetricFilter");
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/src/secrets/mod.rs"
    ))
    .unwrap();
    for (id, f) in functions_with_groups(&t) {
        if id == "KeyRotationFunction" {
            continue; // it fetches no keys to serve with; its failures are Errors (above)
        }
        let filter = filters
            .iter()
            .find(|(_, m)| is_ref(&m["Properties"]["LogGroupName"], &f))
            .unwrap_or_else(|| panic!("no metric filter on {id}'s logs"));
        let pattern = filter.1["Properties"]["FilterPattern"].as_str().unwrap();
        let phrase = pattern.trim_matches('"');
        assert!(
            source.contains(phrase),
            "the filter {pattern:?} matches a line the service writes"
        );
        assert_eq!(
            filter.1["Properties"]["MetricTransformations"][0]["MetricName"].as_str(),
            Some("SecretRefreshFailures")
        );
    }
    assert!(
        !find("SecretRefreshFailures").is_empty(),
        "an alarm on key refresh failures"
    );
    // Every alarm notifies the topic when one is given.
    for (id, a) in &alarms {
        let (tag, args) = tagged(&a["Properties"]["AlarmActions"]);
        assert_eq!(tag, "!If", "{id}");
        assert_eq!(args[0].as_str(), Some("HasAlarmTopic"), "{id}");
        assert_eq!(
            a["Properties"]["TreatMissingData"].as_str(),
            Some("notBreaching"),
            "{id}"
        );
    }
}

fn functions_with_groups(t: &Value) -> Vec<(String, String)> {
    functions(t)
        .into_iter()
        .map(|(id, f)| {
            let (_, group) = tagged(&f["Properties"]["LoggingConfig"]["LogGroup"]);
            (id, group.as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn with_a_custom_domain_the_execute_api_endpoint_is_off() {
    let t = template();
    let (tag, args) = tagged(&resource(&t, "HttpApi")["Properties"]["DisableExecuteApiEndpoint"]);
    assert_eq!(tag, "!If");
    assert_eq!(args[0].as_str(), Some("HasCustomDomain"));
    assert_eq!(args[1].as_bool(), Some(true));
    assert_eq!(args[2].as_bool(), Some(false));
}

#[test]
fn each_secret_rotates_on_a_schedule_through_the_rotation_function() {
    let t = template();
    let schedules = of_type(&t, "AWS::SecretsManager::RotationSchedule");
    for secret in ["CookieSecret", "SigningSecret", "SamlSpSecret"] {
        let (_, s) = schedules
            .iter()
            .find(|(_, s)| is_ref(&s["Properties"]["SecretId"], secret))
            .unwrap_or_else(|| panic!("no rotation schedule for {secret}"));
        let p = &s["Properties"];
        let (tag, arn) = tagged(&p["RotationLambdaARN"]);
        assert_eq!(
            (tag.as_str(), arn.as_str()),
            ("!GetAtt", Some("KeyRotationFunction.Arn"))
        );
        let (tag, rate) = tagged(&p["RotationRules"]["ScheduleExpression"]);
        assert_eq!(
            (tag.as_str(), rate.as_str()),
            ("!Sub", Some("rate(${RotationDays} days)"))
        );
    }
    assert_eq!(
        t["Parameters"]["RotationDays"]["Default"].as_i64(),
        Some(90)
    );
    // Scheduled rotations never come faster than the cookie key is held (an outbox
    // message's life): each one would be refused.
    let min_days = t["Parameters"]["RotationDays"]["MinValue"]
        .as_i64()
        .unwrap();
    assert!(
        min_days * 24 * 3600
            >= identity_shared::secrets::rotation::hold(
                identity_shared::secrets::SecretKind::Cookie,
                std::time::Duration::ZERO
            )
            .as_secs() as i64,
        "RotationDays MinValue {min_days}"
    );
    let permission = &resource(&t, "KeyRotationPermission")["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("secretsmanager.amazonaws.com")
    );
    assert!(is_ref(&permission["SourceAccount"], "AWS::AccountId"));
    // The rotation function may touch the three secrets and nothing else.
    let f = &resource(&t, "KeyRotationFunction")["Properties"];
    assert_eq!(f["CodeUri"].as_str(), Some("functions/key-rotation"));
    let statements = f["Policies"][0]["Statement"].as_sequence().unwrap();
    assert_eq!(statements.len(), 1);
    for action in statements[0]["Action"].as_sequence().unwrap() {
        assert!(action.as_str().unwrap().starts_with("secretsmanager:"));
    }
    let resources: Vec<bool> = statements[0]["Resource"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            ["CookieSecret", "SigningSecret", "SamlSpSecret"]
                .iter()
                .any(|s| is_ref(r, s))
        })
        .collect();
    assert_eq!(resources, vec![true, true, true]);
}

#[test]
fn only_the_functions_that_use_a_secret_may_read_it() {
    let t = template();
    let policies = of_type(&t, "AWS::SecretsManager::ResourcePolicy");
    for (secret, readers) in [
        (
            "CookieSecret",
            &[
                "SsoAcsFunction",
                "OAuthAuthorizeFunction",
                "AddonSsoFunction",
            ][..],
        ),
        (
            "SigningSecret",
            &["OAuthTokenFunction", "JwtGrantFunction"][..],
        ),
        ("SamlSpSecret", &["SsoAcsFunction"][..]),
    ] {
        let (_, policy) = policies
            .iter()
            .find(|(_, p)| is_ref(&p["Properties"]["SecretId"], secret))
            .unwrap_or_else(|| panic!("no resource policy on {secret}"));
        let p = &policy["Properties"];
        assert_eq!(p["BlockPublicPolicy"].as_bool(), Some(true));
        let statement = &p["ResourcePolicy"]["Statement"][0];
        assert_eq!(statement["Effect"].as_str(), Some("Deny"));
        assert_eq!(statement["Principal"].as_str(), Some("*"));
        assert_eq!(
            statement["Action"].as_str(),
            Some("secretsmanager:GetSecretValue")
        );
        let (tag, choice) = tagged(&statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]);
        assert_eq!(tag, "!If");
        assert_eq!(choice[0].as_str(), Some("HasOperator"));
        let roles = |list: &Value| -> Vec<String> {
            list.as_sequence()
                .unwrap()
                .iter()
                .filter_map(|v| {
                    let (tag, inner) = tagged(v);
                    (tag == "!GetAtt").then(|| inner.as_str().unwrap().to_string())
                })
                .collect()
        };
        let mut want: Vec<String> = readers
            .iter()
            .chain(&["KeyRotationFunction"])
            .map(|f| format!("{f}Role.Arn"))
            .collect();
        want.sort();
        for list in [&choice[1], &choice[2]] {
            let mut have = roles(list);
            have.sort();
            assert_eq!(have, want, "{secret}");
        }
        assert!(
            choice[1]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|v| is_ref(v, "OperatorPrincipalArn")),
            "{secret}: the operator, when named"
        );
    }
}

#[test]
fn only_sso_acs_may_send_mail_and_only_from_the_configured_sender() {
    let t = template();
    for (id, f) in functions(&t) {
        let policies = serde_json::to_string(&f["Properties"]["Policies"]).unwrap();
        if id != "SsoAcsFunction" {
            assert!(!policies.contains("ses:"), "{id} may not send mail");
            continue;
        }
        let mail = f["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .find_map(|p| {
                let (tag, args) = tagged(p);
                (tag == "!If" && args[0].as_str() == Some("HasMail")).then_some(args)
            })
            .expect("a mail statement, present only with MailFrom");
        assert!(is_ref(&mail[2], "AWS::NoValue"));
        let statement = &mail[1]["Statement"][0];
        assert_eq!(statement["Action"][0].as_str(), Some("ses:SendEmail"));
        assert_eq!(statement["Action"].as_sequence().unwrap().len(), 1);
        assert!(is_ref(
            &statement["Condition"]["StringEquals"]["ses:FromAddress"],
            "MailFrom"
        ));
        let env = &f["Properties"]["Environment"]["Variables"];
        assert!(is_ref(&env["IDENTITY_MAIL_FROM"], "MailFrom"));
        assert!(is_ref(
            &env["IDENTITY_SES_CONFIGURATION_SET"],
            "SesConfigurationSet"
        ));
    }
    assert_eq!(t["Parameters"]["MailFrom"]["Default"].as_str(), Some(""));
}
