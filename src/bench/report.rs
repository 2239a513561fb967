//! A run as text: a markdown table in llama-bench's layout with the derived figures under it,
//! and CSV with one row per test.

use super::Run;

pub fn markdown(run: &Run) -> String {
    let m = &run.model;
    let s = &run.settings;
    let mut out = format!(
        "{} · {} · {:.2} GB · {} threads · fa {} · KV {}/{} · {} · {}\n\n",
        m.file,
        m.quant,
        m.size_bytes as f64 / 1e9,
        s.n_threads,
        s.flash_attn,
        s.type_k,
        s.type_v,
        run.machine.cpu,
        run.started_at
    );
    out.push_str("| test | t/s | ms |\n|---|---:|---:|\n");
    for r in &run.results {
        out.push_str(&format!(
            "| {} | {:.2} ± {:.2} | {:.1} |\n",
            r.test,
            r.avg_ts,
            r.stddev_ts,
            r.avg_ns as f64 / 1e6
        ));
    }
    let d = &run.derived;
    if let Some(r) = &d.retention {
        out.push_str(&format!(
            "\ncontext-scaling retention ({} ÷ {}): {:.0} %\n",
            r.to,
            r.from,
            100.0 * r.ratio
        ));
    }
    if let (Some(ceiling), Some(pct)) = (d.tg_ceiling_ts, d.tg_ceiling_pct) {
        out.push_str(&format!(
            "tg ceiling (bandwidth ÷ active bytes): {ceiling:.1} t/s, reached {pct:.0} %\n"
        ));
    }
    for line in run.notes.iter().chain(&run.warnings) {
        out.push_str(&format!("- {line}\n"));
    }
    out
}

/// One row per test; fields that could hold commas are quoted.
pub fn csv(runs: &[Run]) -> String {
    let mut out = String::from(
        "run_id,started_at,model,quant,n_threads,flash_attn,type_k,type_v,test,n_prompt,n_gen,n_depth,avg_ts,stddev_ts,avg_ns\n",
    );
    for run in runs {
        for r in &run.results {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{:.4},{:.4},{}\n",
                run.id,
                run.started_at,
                quote(&run.model.file),
                run.model.quant,
                run.settings.n_threads,
                run.settings.flash_attn,
                run.settings.type_k,
                run.settings.type_v,
                quote(&r.test),
                r.n_prompt,
                r.n_gen,
                r.n_depth,
                r.avg_ts,
                r.stddev_ts,
                r.avg_ns
            ));
        }
    }
    out
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample_run;
    use super::*;

    #[test]
    fn markdown_has_a_row_per_test_and_the_derived_figures() {
        let text = markdown(&sample_run("x"));
        assert!(
            text.contains("| pp512 | 200.00 ± 1.50 | 1000.0 |"),
            "{text}"
        );
        assert!(text.contains("| tg128 | 90.00 ± 1.50 |"), "{text}");
        assert!(text.contains("retention (pp4096 ÷ pp512): 75 %"), "{text}");
        assert!(text.contains("180.0 t/s, reached 50 %"), "{text}");
    }

    #[test]
    fn csv_rows_parse_back_to_the_numbers() {
        let mut run = sample_run("x");
        run.model.file = "a,b.gguf".into();
        let text = csv(&[run]);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("x,2026-11-26T06:30:00Z,\"a,b.gguf\",Q4_1,2,"));
        assert!(lines[3].contains(",tg128,0,128,0,90.0000,1.5000,"));
    }
}
