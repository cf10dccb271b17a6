# GRN pipeline: prepare -> fit (DASH or a baseline; fan-out over methods x priors) -> evaluate
# -> report, plus one summary table over every fit.


rule run_config:
    output:
        "results/config.yaml",
    localrule: True
    params:
        text=yaml.safe_dump(config, sort_keys=False),
    log:
        "logs/run_config.log",
    conda:
        ENV
    run:
        write_text_atomic(output[0], params.text)


rule grn_prepare:
    output:
        "results/grn/{dataset}/prepared.h5ad",
    params:
        args=grn_prepare_args,
    log:
        "logs/grn/{dataset}/prepare.log",
    benchmark:
        "benchmarks/grn/{dataset}/prepare.tsv"
    conda:
        ENV
    shell:
        "biostruct grn prepare {params.args:q} --out {output:q} > {log:q} 2>&1"


rule grn_fit:
    input:
        "results/grn/{dataset}/prepared.h5ad",
    output:
        h5ad="results/grn/{dataset}/{method}/{prior}/fitted.h5ad",
        model=directory("results/grn/{dataset}/{method}/{prior}/model"),
    params:
        args=grn_fit_args,
    log:
        "logs/grn/{dataset}/{method}/{prior}/fit.log",
    benchmark:
        "benchmarks/grn/{dataset}/{method}/{prior}/fit.tsv"
    threads: 1
    resources:
        **train_resources(),
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} biostruct grn fit {input:q} {params.args:q}"
        " --model-dir {output.model:q} --out {output.h5ad:q} > {log:q} 2>&1"


rule grn_evaluate:
    input:
        "results/grn/{dataset}/{method}/{prior}/fitted.h5ad",
    output:
        h5ad="results/grn/{dataset}/{method}/{prior}/result.h5ad",
        edges="results/grn/{dataset}/{method}/{prior}/edges.csv",
        metrics="results/grn/{dataset}/{method}/{prior}/metrics.json",
    params:
        args=grn_evaluate_args,
    log:
        "logs/grn/{dataset}/{method}/{prior}/evaluate.log",
    benchmark:
        "benchmarks/grn/{dataset}/{method}/{prior}/evaluate.tsv"
    conda:
        ENV
    shell:
        "biostruct grn evaluate {input:q} {params.args:q} --edges {output.edges:q}"
        " --metrics {output.metrics:q} --out {output.h5ad:q} > {log:q} 2>&1"


rule grn_report:
    input:
        h5ad="results/grn/{dataset}/{method}/{prior}/result.h5ad",
        config="results/config.yaml",
    output:
        report(
            "results/grn/{dataset}/{method}/{prior}/report.html",
            caption="../report/grn_report.rst",
            category="GRN",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "method": "{method}", "prior": "{prior}"},
        ),
    params:
        args=grn_report_args,
    log:
        "logs/grn/{dataset}/{method}/{prior}/report.log",
    benchmark:
        "benchmarks/grn/{dataset}/{method}/{prior}/report.tsv"
    conda:
        ENV
    shell:
        "biostruct report grn {input.h5ad:q} {params.args:q} --config {input.config:q}"
        " --out {output:q} > {log:q} 2>&1"


rule grn_summary:
    input:
        [f"results/grn/{d}/{m}/{p}/metrics.json" for d, m, p in grn_runs()],
    output:
        report(
            "results/grn/summary.csv",
            caption="../report/grn_summary.rst",
            category="GRN",
            labels={"table": "metrics of every fit"},
        ),
    log:
        "logs/grn/summary.log",
    conda:
        ENV
    shell:
        "biostruct grn summarise {input:q} --out {output:q} > {log:q} 2>&1"
