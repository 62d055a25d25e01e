//! The decision framework against hand-computed scenarios, and golden output.

use super::*;

fn support() -> Workload {
    // 100M tokens/month of customer support, 3:1 input:output, 85 % routine.
    Workload {
        monthly_tokens: 100e6,
        input_share: 0.75,
        routine_share: 0.85,
        domain: Domain::General,
        latency_target_ms: Some(2000.0),
        privacy: Privacy::Internal,
    }
}

fn reasoning() -> Workload {
    // 5M tokens/month of complex reasoning, 1:1, 20 % routine.
    Workload {
        monthly_tokens: 5e6,
        input_share: 0.5,
        routine_share: 0.2,
        domain: Domain::General,
        latency_target_ms: None,
        privacy: Privacy::Public,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn golden(name: &str, got: &str) {
    crate::golden::check("src/advisor/testdata", name, got);
}

#[test]
fn support_at_100m_tokens_is_hybrid_and_saves_most_of_the_bill() {
    let a = Assumptions::default();
    let r = recommend(&support(), &a);
    let c = &r.costs;
    // Blended LLM price: 0.75 × 2.5 + 0.25 × 10 = 4.375 $/Mtok → 100 × 4.375 = $437.50.
    assert!(close(c.llm_blended_per_mtok, 4.375));
    assert!(close(c.llm_only, 437.5));
    // Escalated: 0.15 + 0.85 × 0.10 = 0.235. Machine: 1 / (0.75/290 + 0.25/190) = 256.28 tok/s;
    // average load 100M / (730 × 3600) = 38.05 tok/s, × 3 peak = 114 → 1 machine, 0.10 × 730 = $73.
    assert!(close(c.escalated_share, 0.235));
    assert!((c.node_tps - 256.28).abs() < 0.01, "{}", c.node_tps);
    assert_eq!((c.hybrid_nodes, c.slm_nodes), (1, 1));
    // Hybrid: 73 + 0.235 × 437.5 = 73 + 102.8125 = $175.8125.
    assert!(close(c.hybrid, 175.8125));
    assert!(close(c.slm_only, 73.0));
    // Break-even: 73 / (4.375e-6 × 0.765) = 21.81M tokens/month.
    assert!((c.break_even_tokens.unwrap() / 1e6 - 21.811).abs() < 0.001);
    assert_eq!(r.pattern, Pattern::HybridEscalation);
    assert_eq!(r.rule, "R6 routine-majority");
    golden("support.txt", &render(&support(), &a, &r, false));
}

#[test]
fn complex_reasoning_at_5m_tokens_stays_on_the_cloud_llm() {
    let a = Assumptions::default();
    let r = recommend(&reasoning(), &a);
    let c = &r.costs;
    // LLM-only: 5 × (0.5 × 2.5 + 0.5 × 10) = 5 × 6.25 = $31.25.
    assert!(close(c.llm_only, 31.25));
    // Hybrid: 73 + (0.8 + 0.2 × 0.1) × 31.25 = 73 + 25.625 = $98.625 ≥ $31.25.
    assert!(close(c.hybrid, 98.625));
    assert_eq!(r.pattern, Pattern::CloudLlmOnly);
    assert_eq!(r.rule, "R4 hybrid-does-not-pay");
    golden("reasoning.txt", &render(&reasoning(), &a, &r, false));
}

#[test]
fn restricted_data_never_goes_to_the_cloud() {
    let a = Assumptions::default();
    for (domain, want) in [
        (Domain::General, Pattern::SlmOnly),
        (Domain::Documents, Pattern::RagSlm),
        (Domain::Specialised, Pattern::DomainStack),
    ] {
        let w = Workload {
            privacy: Privacy::Restricted,
            domain,
            ..reasoning()
        };
        let r = recommend(&w, &a);
        assert_eq!((r.pattern, r.rule), (want, "R1 restricted-data"));
    }
}

#[test]
fn a_latency_target_below_the_llm_keeps_answers_local() {
    let w = Workload {
        latency_target_ms: Some(300.0),
        ..support()
    };
    let r = recommend(&w, &Assumptions::default());
    assert_eq!((r.pattern, r.rule), (Pattern::SlmOnly, "R2 latency"));
}

#[test]
fn busier_workloads_need_more_machines() {
    // 10B tokens/month: 3805 tok/s average × 3 / 256.28 = 44.5 → 45 machines for SLM-only.
    let w = Workload {
        monthly_tokens: 10e9,
        ..support()
    };
    let c = monthly_costs(&w, &Assumptions::default());
    assert_eq!(c.slm_nodes, 45);
    assert!(close(c.slm_only, 45.0 * 73.0));
}

#[test]
fn documents_and_specialised_domains() {
    let a = Assumptions::default();
    let docs = Workload {
        domain: Domain::Documents,
        ..support()
    };
    assert_eq!(recommend(&docs, &a).pattern, Pattern::RagSlm);
    let spec = Workload {
        domain: Domain::Specialised,
        ..support()
    };
    assert_eq!(recommend(&spec, &a).pattern, Pattern::DomainStack);
    // A specialised domain whose hybrid does not pay still goes to the LLM.
    let small = Workload {
        domain: Domain::Specialised,
        ..reasoning()
    };
    assert_eq!(recommend(&small, &a).pattern, Pattern::CloudLlmOnly);
}

#[test]
fn parses_workload_flags() {
    assert_eq!(parse_tokens("100M"), Ok(100e6));
    assert_eq!(parse_tokens("2.5b"), Ok(2.5e9));
    assert_eq!(parse_tokens("750k"), Ok(750e3));
    assert!(parse_tokens("lots").is_err());
    assert_eq!(parse_ratio("3:1"), Ok(0.75));
    assert!(parse_ratio("3").is_err());
    assert!("medical".parse::<Domain>().is_err());
}
