# Multi-omics pipeline: prepare (MuData) -> fit DAG-VAE -> embed/cluster + differential
# analysis -> report.


rule multiomics_prepare:
    output:
        "results/multiomics/{dataset}/prepared.h5mu",
    params:
        args=mo_prepare_args,
    log:
        "logs/multiomics/{dataset}/prepare.log",
    benchmark:
        "benchmarks/multiomics/{dataset}/prepare.tsv"
    conda:
        ENV
    shell:
        "biostruct multiomics prepare {params.args:q} --out {output:q} > {log:q} 2>&1"


rule multiomics_fit:
    input:
        "results/multiomics/{dataset}/prepared.h5mu",
    output:
        h5mu="results/multiomics/{dataset}/fitted.h5mu",
        model=directory("results/multiomics/{dataset}/model"),
        links="results/multiomics/{dataset}/links.csv",
    params:
        args=mo_fit_args,
    log:
        "logs/multiomics/{dataset}/fit.log",
    benchmark:
        "benchmarks/multiomics/{dataset}/fit.tsv"
    threads: 1
    resources:
        **train_resources(),
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} biostruct multiomics fit {input:q} {params.args:q}"
        " --model-dir {output.model:q} --links-csv {output.links:q} --out {output.h5mu:q}"
        " > {log:q} 2>&1"


rule multiomics_analyse:
    input:
        h5mu="results/multiomics/{dataset}/fitted.h5mu",
        model="results/multiomics/{dataset}/model",
    output:
        h5mu="results/multiomics/{dataset}/analysed.h5mu",
        de=directory("results/multiomics/{dataset}/differential"),
    params:
        args=mo_analyse_args,
    log:
        "logs/multiomics/{dataset}/analyse.log",
    benchmark:
        "benchmarks/multiomics/{dataset}/analyse.tsv"
    threads: 1
    resources:
        **train_resources(),
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} biostruct multiomics analyse {input.h5mu:q} {params.args:q}"
        " --model-dir {input.model:q} --de-dir {output.de:q} --out {output.h5mu:q}"
        " > {log:q} 2>&1"


rule multiomics_report:
    input:
        h5mu="results/multiomics/{dataset}/analysed.h5mu",
        de="results/multiomics/{dataset}/differential",
        config="results/config.yaml",
    output:
        report(
            "results/multiomics/{dataset}/report.html",
            caption="../report/multiomics_report.rst",
            category="Multi-omics",
            labels={"dataset": "{dataset}"},
        ),
    params:
        args=mo_report_args,
    log:
        "logs/multiomics/{dataset}/report.log",
    benchmark:
        "benchmarks/multiomics/{dataset}/report.tsv"
    conda:
        ENV
    shell:
        "biostruct report multiomics {input.h5mu:q} --de-dir {input.de:q} {params.args:q}"
        " --config {input.config:q} --out {output:q} > {log:q} 2>&1"
