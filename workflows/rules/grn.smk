# GRN pipeline: prepare -> fit (DASH or a baseline; fan-out over methods x priors) -> evaluate
# -> report, plus one summary table over every fit.


rule run_config:
    output:
        "results/config.yaml",
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
        "biostruct grn prepare {params.args} --out {output} > {log} 2>&1"


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
        gpu=gpu_count(),
        gpu_manufacturer="nvidia",
        runtime=config["runtime_min"],
        mem_mb=config["mem_mb"],
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} biostruct grn fit {input} {params.args}"
        " --model-dir {output.model} --out {output.h5ad} > {log} 2>&1"


rule grn_evaluate:
    input:
        "results/grn/{dataset}/{method}/{prior}/fitted.h5ad",
    output:
        h5ad="results/grn/{dataset}/{method}/{prior}/result.h5ad",
        edges="results/grn/{dataset}/{method}/{prior}/edges.csv",
        metrics="results/grn/{dataset}/{method}/{prior}/metrics.json",
    params:
        truth=lambda wc: grn_dataset(wc).get("truth", "none"),
        top=config["grn"]["evaluate"]["top_edges"],
        label="{dataset}/{method}/{prior}",
    log:
        "logs/grn/{dataset}/{method}/{prior}/evaluate.log",
    benchmark:
        "benchmarks/grn/{dataset}/{method}/{prior}/evaluate.tsv"
    conda:
        ENV
    shell:
        "biostruct grn evaluate {input} --truth {params.truth} --top {params.top}"
        " --label {params.label} --edges {output.edges} --metrics {output.metrics}"
        " --out {output.h5ad} > {log} 2>&1"


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
        truth=lambda wc: grn_dataset(wc).get("truth", "none"),
    log:
        "logs/grn/{dataset}/{method}/{prior}/report.log",
    benchmark:
        "benchmarks/grn/{dataset}/{method}/{prior}/report.tsv"
    conda:
        ENV
    shell:
        "biostruct report grn {input.h5ad} --truth {params.truth} --config {input.config}"
        " --title 'GRN: {wildcards.dataset}, {wildcards.method}, {wildcards.prior}'"
        " --out {output} > {log} 2>&1"


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
        "biostruct grn summarise {input} --out {output} > {log} 2>&1"
