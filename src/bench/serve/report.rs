//! The serving benchmark's report as a Markdown table or one CSV table.

use std::fmt::Write as _;

use super::ServeReport;

/// `-` for a missing number, else `digits` decimals.
fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| num(v, digits))
}

pub fn markdown(r: &ServeReport) -> String {
    let mut out = String::new();
    let slots = r
        .server_n_parallel
        .map_or_else(String::new, |n| format!(", {n} slots"));
    let _ = writeln!(
        out,
        "Serving benchmark: `{}` at {}{slots}; prompts ~{} tokens, {} generated (ignore_eos), \
         {} round(s)\n",
        r.model, r.url, r.prompt_tokens, r.max_tokens, r.rounds
    );
    if !r.concurrency.is_empty() {
        out.push_str(
            "| clients | requests | errors | prompt tok | TTFT ms mean | p50 | p95 \
             | ITL ms mean | p50 | p95 | stream t/s | aggregate t/s |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &r.concurrency {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.clients,
                row.requests,
                row.errors,
                num(row.prompt_tokens, 0),
                num(row.ttft_ms.mean, 1),
                num(row.ttft_ms.p50, 1),
                num(row.ttft_ms.p95, 1),
                num(row.itl_ms.mean, 2),
                num(row.itl_ms.p50, 2),
                num(row.itl_ms.p95, 2),
                num(row.stream_tps, 1),
                num(row.aggregate_tps, 1),
            );
        }
    }
    if !r.agent.is_empty() {
        let _ = writeln!(
            out,
            "\nAgent loop: each turn resends the conversation plus a ~{}-token tool result \
             ({} reply tokens); cold = the same length behind another nonce\n",
            r.agent_turn_tokens, r.agent_reply_tokens
        );
        out.push_str(
            "| turn | prompt tok | cached tok | TTFT warm ms | cold prompt tok | TTFT cold ms \
             | warm/cold |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for t in &r.agent {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                t.turn,
                num(t.prompt_tokens, 0),
                opt(t.cached_tokens, 0),
                num(t.ttft_warm_ms, 1),
                num(t.cold_prompt_tokens, 0),
                num(t.ttft_cold_ms, 1),
                num(t.warm_over_cold, 3),
            );
        }
    }
    if !r.notes.is_empty() {
        out.push('\n');
        for note in &r.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

/// One long table: sweep rows (`scenario` = `concurrency`) then agent turns (`agent`), blank
/// cells where a column does not apply.
pub fn csv(r: &ServeReport) -> String {
    let mut out = String::from(
        "scenario,clients,turn,requests,errors,prompt_tokens,cached_tokens,\
         ttft_ms_mean,ttft_ms_p50,ttft_ms_p95,itl_ms_mean,itl_ms_p50,itl_ms_p95,\
         stream_tps,aggregate_tps,cold_prompt_tokens,ttft_cold_ms,warm_over_cold\n",
    );
    let n = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            String::new()
        }
    };
    for row in &r.concurrency {
        let _ = writeln!(
            out,
            "concurrency,{},,{},{},{},,{},{},{},{},{},{},{},{},,,",
            row.clients,
            row.requests,
            row.errors,
            n(row.prompt_tokens),
            n(row.ttft_ms.mean),
            n(row.ttft_ms.p50),
            n(row.ttft_ms.p95),
            n(row.itl_ms.mean),
            n(row.itl_ms.p50),
            n(row.itl_ms.p95),
            n(row.stream_tps),
            n(row.aggregate_tps),
        );
    }
    for t in &r.agent {
        let _ = writeln!(
            out,
            "agent,1,{},{},0,{},{},{},,,,,,,,{},{},{}",
            t.turn,
            r.rounds,
            n(t.prompt_tokens),
            t.cached_tokens.map_or_else(String::new, n),
            n(t.ttft_warm_ms),
            n(t.cold_prompt_tokens),
            n(t.ttft_cold_ms),
            n(t.warm_over_cold),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{row, AgentTurn, ServeReport};
    use super::*;

    #[test]
    fn markdown_and_csv_show_missing_numbers_as_blanks() {
        let row = row(1, vec![vec![]]);
        let report = ServeReport {
            url: "http://x".into(),
            model: "m".into(),
            server_n_ctx: None,
            server_n_parallel: Some(2),
            max_tokens: 8,
            prompt_tokens: 64,
            rounds: 1,
            agent_turn_tokens: 32,
            agent_reply_tokens: 8,
            concurrency: vec![row],
            agent: vec![AgentTurn {
                turn: 1,
                prompt_tokens: 70.0,
                cached_tokens: None,
                ttft_warm_ms: 5.0,
                cold_prompt_tokens: 71.0,
                cold_cached_tokens: None,
                ttft_cold_ms: 10.0,
                warm_over_cold: 0.5,
            }],
            cached_tokens_reported: true,
            notes: vec!["n".into()],
        };
        let md = markdown(&report);
        assert!(md.contains("| 1 | 0 | 0 | - |"), "{md}");
        assert!(md.contains("- n"));
        let csv = csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let columns = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == columns),
            "{csv}"
        );
        assert!(
            lines[2].starts_with("agent,1,1,1,0,70.0000,,5.0000,"),
            "{csv}"
        );
    }
}
