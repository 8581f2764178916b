use super::*;

fn names(only: &[&str]) -> (Vec<String>, Vec<String>) {
    let only: Vec<String> = only.iter().map(|o| o.to_string()).collect();
    let (scenarios, solos) = plan(false, &only);
    (
        scenarios.into_iter().map(|s| s.name).collect(),
        solos.into_iter().map(|s| s.name).collect(),
    )
}

#[test]
fn only_selects_by_substring() {
    let (all_scenarios, all_solos) = names(&[]);
    assert_eq!((all_scenarios.len(), all_solos.len()), (15, 11));
    assert_eq!(
        names(&["noise-10000", "solo-push-all"]),
        (
            vec!["noise-10000-alerts".to_string()],
            vec!["solo-push-all".to_string()]
        )
    );
    assert_eq!(names(&["nothing"]), (vec![], vec![]));
    let (quick, solos) = plan(true, &["noise".to_string()]);
    assert_eq!(
        (quick.len(), quick[0].name.as_str(), solos.len()),
        (2, "quick", 0)
    );
}

#[test]
fn every_full_run_point_has_twenty_transitions() {
    let (scenarios, _) = plan(false, &[]);
    for s in &scenarios {
        assert!(s.changes * 2 >= 20, "{}: {} changes", s.name, s.changes);
    }
    let total: Duration = scenarios.iter().map(Scenario::estimate).sum();
    println!("full run estimate: {:.0} min", total.as_secs_f64() / 60.0);
}

#[test]
fn every_pull_design_names_its_alert_source() {
    let (scenarios, _) = plan(false, &[]);
    for d in scenarios.iter().flat_map(|s| &s.designs) {
        let sources: Vec<&str> = d
            .tuning
            .iter()
            .filter(|(k, _)| *k == "alertSource")
            .map(|(_, v)| v.as_str())
            .collect();
        if d.label == "shipped" {
            // Whatever deploy/ names, but named.
            assert_eq!(sources.len(), 1, "shipped names its source");
            continue;
        }
        let expected: &[&str] = match (d.design, d.label.ends_with("-query")) {
            (Design::Pull, true) => &["query"],
            (Design::Pull, false) => &["alerts"],
            _ => &[],
        };
        assert_eq!(sources, expected, "{}", d.label);
    }
}

#[test]
fn every_pull_design_names_its_schedule() {
    let (scenarios, _) = plan(false, &[]);
    let pulls = scenarios
        .iter()
        .flat_map(|s| &s.designs)
        .filter(|d| d.design == Design::Pull && d.label != "shipped");
    for d in pulls {
        let named = |key: &str| -> Vec<&str> {
            d.tuning
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let locked = if d.label.starts_with("pull-locked-") {
            "true"
        } else {
            "false"
        };
        assert_eq!(named("phaseLock"), [locked], "{}", d.label);
        for key in ["minInterval", "maxInterval", "backoffFactor"] {
            assert_eq!(named(key).len(), 1, "{}: {key}", d.label);
        }
    }
}

#[test]
fn timing_follows_the_slowest_design() {
    let s = &plan(true, &[]).0[0];
    // pull-adaptive's 5s maxInterval, one evaluation, 2s.
    assert_eq!(s.settle(), Duration::from_secs(8));
    // Window 3s: 12s + 4s + 10s.
    assert_eq!(s.limit(), Duration::from_secs(26));
    let push_only = Scenario {
        designs: vec![push("push-all", Design::PushAll)],
        ..s.clone()
    };
    assert_eq!(push_only.settle(), Duration::from_secs(3));
}

#[test]
fn lanes_count_once_in_the_estimate() {
    let manager = plan(false, &["manager-settings-prometheus3".to_string()]).0[0].clone();
    let one = Scenario {
        lanes: 1,
        changes: 10,
        ..manager
    };
    let fixed = Scenario {
        changes: 0,
        ..one.clone()
    }
    .estimate();
    let change = (one.estimate() - fixed) / 10;
    let three = Scenario {
        lanes: 3,
        ..one.clone()
    };
    // Ten changes in three lanes of 4, 3 and 3, each lane starting a
    // third of a window and hold (5m + 1m) after the one before.
    let lane = |k: u32, changes: u32| Duration::from_secs(120) * k + change * changes;
    let longest = lane(0, 4).max(lane(2, 3));
    assert_eq!(three.estimate(), fixed + longest);
    assert!(three.estimate() < one.estimate() / 2);
}
