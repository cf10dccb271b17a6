"""Benchmark: does integration help? DAG-VAE vs PCA baselines, concatenations, totalVI and MULTIVI.

DEV sets (``$BIOSTRUCT_DATA_DIR/multiomics``, tune freely):

- ``pbmc10k_cite_scmdc``: 10x PBMC 10k CITE-seq as shipped by scMDC, 6,661 cells, 1,000 genes +
  14 proteins, 7 labels (``obs["cell_type"]``);
- ``snareseq_mop``: SNARE-seq adult mouse cortex, 10,309 cells, 1,677 genes + the peaks open in
  >= 0.25 % of the cells (9,808 of 25,734), 15 labels (``cluster (remapped)``);
- ``cbmc_cite_scmdc`` (``--datasets`` only): 1,182 cells, 10 proteins, 6 protein-derived labels: a
  sanity check, not evidence.

Rows (every row scored by the same code, :func:`score`):

- ``dagvae`` / ``z_hat_<child>``: the DAG-VAE with the package's default graph (protein -> RNA or
  ATAC -> RNA) and default settings; the integrated latent of the child component. The same model
  also gives ``z_<parent>`` (the root component, a protein-only or ATAC-only model) and
  ``z_<child>`` (the child's own latent);
- ``dagvae_rna_only`` / ``z_rna``: the same settings on RNA alone;
- ``pca_rna``: scanpy RNA PCA (normalize_total, log1p, scale, 30 PCs);
- ``pca_adt`` (ADT CLR, scale, PCA) or ``lsi_atac`` (TF-IDF, SVD, components 2..31);
- ``concat_rna_adt`` / ``concat_rna_atac``: the two blocks side by side, each scaled to unit
  total variance;
- ``totalvi`` / ``multivi``: scvi-tools at its defaults (``train()`` with early stopping; its
  default max_epochs), ``get_latent_representation()``.

Models run 3 seeds (``--seeds``); PCA baselines are deterministic and run once.
Metrics: ARI/NMI of Leiden at the resolution of a grid with the best ARI (label-informed, as in
most papers), each the mean over Leiden seeds 0, 1, 2, ``ari_label_free``/``nmi_label_free`` at the resolution with the best silhouette of
the clustering on the latent (no labels used), kNN purity (k = 15), train seconds, seconds per
epoch (DAG-VAE: one epoch of every component, i.e. one pass over every modality), peak RSS of the
process that trained the row (each model runs in its own spawned process).

Environment. scvi-tools is not part of the core install; totalVI/MULTIVI rows need a separate
virtual environment::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0
    .venv-bench/bin/pip install "scvi-tools>=1.2" -e .
    .venv-bench/bin/python benchmarks/multiomics_dev.py            # everything (hours on 2 CPUs)

Without scvi-tools those rows are written as skipped. Usage::

    python benchmarks/multiomics_dev.py --quick      # 1,500 cells per set (about 1 h on 2 CPUs)
    python benchmarks/multiomics_dev.py --quick --cells 550   # the size of small labelled sets
    python benchmarks/multiomics_dev.py --datasets pbmc10k_cite_scmdc --methods dagvae,pca
    python benchmarks/multiomics_dev.py --merge --methods totalvi   # add rows to an earlier run
    python benchmarks/multiomics_dev.py --quick --cells 550 --subsamples 0,1,2  # 3 random subsets

Writes ``reports/benchmarks/multiomics_dev{_quick,_quick_<cells>}{,_subs<k>}.{json,md}`` atomically
after each row group (``_subs<k>``: ``--subsamples`` other than ``0``, k subsets):
``{"meta": {...}, "rows": [{"dataset", "method", "latent", "seed", "ari", "nmi",
"ari_label_free", "knn_purity", "train_seconds", "seconds_per_epoch", "peak_rss_mb", ...}]}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# mudata 0.3's notice about .update() in 0.4, once per modality and call
warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")

REPO = Path(__file__).resolve().parents[1]
if "BIOSTRUCT_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["BIOSTRUCT_DATA_DIR"] = str(REPO.parent / "shared" / "data")

RESOLUTIONS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)
LEIDEN_SEEDS = (0, 1, 2)
DATASETS = ("pbmc10k_cite_scmdc", "snareseq_mop")
METHODS = ("dagvae", "dagvae_rna_only", "pca", "scvi")
QUICK_CELLS = 1500
#: obs column of a finer annotation, scored next to "label" where a dataset has one
FINE_LABEL = "label_fine"

#: What was tried on the DEV sets before this run, measured by :func:`score` (one seed, seed 0,
#: unless stated; ARI of Leiden at the best resolution), rendered into the markdown.
TRIED = [
    "pbmc10k_cite_scmdc, 3,000 random cells, protein -> RNA, integrated latent z_hat_rna: "
    "old protein likelihood (constant background per protein), CAVACHON's linear B into 10 "
    "dims 0.594; z_hat = B [z_prot; z_rna] keeping every dim (integration='concat') 0.640; "
    "protein likelihood with a per-cell depth term and a latent background offset (now the "
    "default): concat 0.738, linear 0.734 (so linear stays the default, see SNARE-seq below); "
    "the same with a CLR-centred protein encoder input 0.713 (not kept).",
    "Same set, did not help (concat): NB instead of ZINB for RNA 0.615 (vs 0.640); 200 epochs "
    "0.619; 250 epochs with patience 25 0.715 (vs 0.738); n_latent 20 0.675; the reverse graph "
    "RNA -> protein 0.633; one joint component over RNA + protein 0.697; RNA-only with a "
    "standard-normal prior instead of the mixture 0.769 (mixture 0.812); RNA-only n_latent 20 "
    "0.637.",
    "Same set, references: scanpy RNA PCA (30 PCs) 0.839, ADT CLR-PCA 0.729, their "
    "concatenation 0.924, RNA PCA with 10 PCs 0.674 (10 + 10 PCs concatenated 0.725: the PCA "
    "baselines gain much from more dimensions); totalVI at its defaults 0.880 (400 epochs, "
    "16 min).",
    "snareseq_mop, 3,000 cells, 3,000 peaks, 60 epochs: concat 0.431 vs linear 0.407 (NMI "
    "0.554 vs 0.557); the ATAC component alone 0.053. All 10,309 cells, 9,808 peaks, 25 epochs "
    "(benchmarks/multiomics_snareseq.py): concat 0.352 / NMI 0.516 vs linear 0.401 / 0.540, "
    "so concat is an option (integration='concat'), not the default.",
    "batch_size 256 instead of 128 (for speed), 1,500 cells, after this run: CITE-seq z_hat_rna "
    "seeds 0/1 0.685/0.655 (128: 0.670/0.690), SNARE-seq 0.422/0.385 (128: 0.399/0.426); "
    "seconds per epoch not measurably lower under the shared load; not kept.",
    "Sanity only, cbmc_cite_scmdc (all 1,182 cells, seed 0; its labels follow the proteins): "
    "ADT CLR-PCA 0.995, RNA+ADT PCA concatenation 0.992, DAG-VAE z_prot 0.995 but z_hat_rna "
    "0.470 with the default linear B (0.652 with integration='concat'), RNA-only 0.546: "
    "CAVACHON's B into n_latent dims loses parent information that the child's decoder does "
    "not need.",
    "No-regression check after these changes: benchmarks/multiomics_snareseq.py --epochs 25 "
    "--models dagvae_atac_to_rna (all cells) gives integrated z_hat Leiden ARI 0.401 / NMI 0.539 "
    "(published 0.401 / 0.540; MULTIVI's best 0.311 / 0.464); its own integrated mixture "
    "clusters are still 71 clusters with ARI 0.071 (the new absorption of tiny clusters runs "
    "in dag_vae/write_results, not in that script, and was not measured at full scale).",
    "Session of 2026-12-02 (1,500 cells as --quick, model seeds 0-2, Leiden grid from 0.02, one "
    "Leiden seed = the scoring before the 3-seed mean): the decode_ancestors objective. CITE-seq "
    "z_hat_rna without it (CAVACHON) 0.827/0.808/0.818, with the proteins also decoded from "
    "z_hat 0.827/0.936/0.936 (mean over 3 Leiden seeds: 0.823 vs 0.876; the new default "
    "'protein'); z_hat predicting the parent's latent (Gaussian head) instead of its data "
    "0.940/0.797/0.939 on CITE-seq but 0.180/0.282/0.431 on SNARE-seq (not kept). SNARE-seq "
    "with the ATAC also decoded from z_hat ('all'): 0.350/0.366/0.359 vs 0.408/0.434/0.388 "
    "without, so ATAC is not decoded by default.",
    "Same session, post-hoc integrated embeddings (no retraining), not kept: [z_parent; z_hat] "
    "each scaled to unit total variance as the concatenation baseline: CITE-seq 0.921/0.834/"
    "0.903 but SNARE-seq 0.330/0.343 (the ATAC block adds noise); [z_parent; z_child] CITE-seq "
    "0.796/0.734/0.912, SNARE-seq 0.362/0.416; a WNN graph (muon.pp.neighbors) over "
    "[z_parent, z_child] SNARE-seq 0.420, CITE-seq 0.837, over [z_parent, z_hat] 0.337 / 0.861.",
    "Same session, scored as in this table (mean over 3 Leiden seeds): the linear B starting at "
    "z + the parents' latents (before) vs at the child's own z with the parents' blocks at zero "
    "(now the default): CITE-seq z_hat_rna 0.876 vs 0.888 ARI (NMI 0.881 vs 0.878), SNARE-seq "
    "0.407 vs 0.431 (NMI 0.537 both; label-free ARI 0.21 vs 0.38).",
    "Session of 2026-12-02 (2nd), scored as in this table, 3 model seeds: the encoder input "
    "standardised per feature (scale_encoder_input, now the default; before: log1p of counts "
    "per 10,000 / log1p protein counts as they are). CITE-seq z_hat_rna 0.859/0.903/0.887 -> "
    "0.919/0.924/0.912 (NMI 0.874 -> 0.904), z_prot 0.800 -> 0.869; SNARE-seq z_hat_rna 0.431 "
    "-> 0.436 (NMI 0.537 -> 0.554); RNA-only SNARE-seq 0.311 -> 0.427 (NMI 0.468 -> 0.556). "
    "Standardising the RNA only (not the proteins): CITE-seq z_hat_rna 0.798 (seed 0), so the "
    "proteins' scaling is what counts there. Not kept: the protein background initialised per "
    "protein from a 2-component Gaussian mixture of its log counts (totalVI's prior), on top: "
    "CITE-seq z_hat_rna 0.920 (vs 0.918), z_prot 0.825 (vs 0.869); the binarised ATAC "
    "standardised too: SNARE-seq z_hat_rna 0.431/0.416 vs 0.449/0.406 (seeds 0/1).",
    "Session of 2026-12-03, speed (quality unchanged: the same function, validation ELBO equal "
    "to 3 decimals after 20 epochs): the ZINB/NB and Bernoulli log-likelihoods with "
    "closed-form derivatives computed in the forward pass, non-zeros taken from the CSR "
    "minibatch instead of torch.nonzero, binarised ATAC computed once per batch. Interleaved A/B "
    "of one training step (batch 128): CITE-seq RNA 19.6 -> 14.7 ms, SNARE-seq ATAC 19.5 -> "
    "15.2 ms, RNA 25.1 -> 19.6 ms; this table's s/epoch CITE-seq 0.36 -> 0.25, SNARE-seq "
    "0.61 -> 0.46 (totalVI 0.44 -> 0.39 and MULTIVI 0.94 -> 0.83 on the day, so the ratios "
    "went 0.83 -> 0.63 and 0.65 -> 0.55). batch_size 256 measured faster per epoch (CITE-seq "
    "prot + RNA 0.21 -> 0.16 s per 1,350 cells, SNARE-seq 0.32 -> 0.29) but halves the "
    "updates per epoch, and the RNA components already stop at the 100-epoch cap: not the "
    "default. The SNARE-seq subsample's ATAC carries no label signal whatever the peaks: ATAC "
    "LSI ARI 0.014 on the 3,000 most open peaks, 0.007 on the 2,638 open in >= 1 % of the "
    "1,500 cells, 0.008 on the 10,291 open in >= 0.25 %, so integration cannot add 0.03 there.",
    "Same session, all 10,309 SNARE-seq cells (benchmarks/multiomics_snareseq.py, 25 epochs, "
    "seeds 0-2): integrated z_hat 0.398/0.369/0.420 vs RNA-only 0.400/0.389/0.397, so the "
    "earlier single-seed +0.029 at full scale was noise. ATAC-only component with a TF-IDF "
    "encoder input (log1p of tf x idf x 1e4, as LSI weights peaks) instead of the binarised "
    "peaks: 0.165/0.049 vs 0.194/0.188 (seeds 0/1, this table's scorer); not kept.",
    "Session of 2026-12-03 (2nd), 550-cell subsamples (--cells 550, the size of small "
    "labelled sets; model seeds 0-2, this table's scorer), z_hat_rna ARI CITE-seq / SNARE-seq, "
    "defaults 0.882 / 0.398 (per seed 0.876/0.854/0.917 and 0.351/0.428/0.415). None kept, as "
    "each helps one set and costs the other: every schedule length x3 (300 epochs, patience "
    "30, annealing 30 + 75 epochs, so that a 4-batch epoch gets the updates of a 12-batch one) "
    "0.916 / 0.357, the RNA-only model 0.632 (vs 0.646) on CITE-seq; encoder dropout 0.1 (as "
    "scvi-tools) 0.908 / 0.370, RNA-only 0.604 (vs 0.646) / 0.407 (vs 0.419); "
    "integration='concat' 0.916 on CITE-seq at 550 cells but 0.907 (vs 0.930) at 1,500; a "
    "validation split of 100 cells instead of 55 0.877 / 0.373; the protein parent's block of "
    "B starting at the identity (z_hat = z_prot + z at the start) 0.898 on CITE-seq at 550 "
    "cells but 0.890/0.814 (seeds 0/1, vs 0.933/0.919) at 1,500. Full SNARE-seq (10,309 cells, "
    "9,808 peaks): ATAC LSI ARI 0.005 (RNA PCA 0.404); the peaks hold a median of 70 "
    "fragments per cell.",
    "Session of 2026-12-03 (3rd), three 550-cell subsamples (subsample seeds 0-2, model seeds "
    "0-2, this table's scorer; per subsample the mean over model seeds), z_hat_rna ARI: "
    "defaults CITE-seq 0.882/0.797/0.721 (mean 0.800; RNA+ADT concatenation 0.937/0.923/0.888, "
    "ADT CLR-PCA 0.930/0.923/0.867), SNARE-seq 0.398/0.304/0.403 (0.368; RNA PCA 0.354/0.279/"
    "0.324, RNA-only DAG-VAE 0.381 on subsamples 0-1 vs 0.351 integrated). Not kept: "
    "n_clusters=1 (one learned Gaussian instead of the 21-component mixture) 0.839 / 0.359, "
    "but at 1,500 cells (subsamples 0-1) 0.905 vs 0.894 on CITE-seq and 0.373 vs 0.415 on "
    "SNARE-seq; n_clusters=41 0.775 / 0.376; n_latent 20 (subsamples 0-1) 0.814 / 0.336 vs "
    "0.839 / 0.351; integration='concat' (subsamples 0-1) 0.884 / 0.296 vs 0.839 / 0.351, "
    "CITE-seq subsample 2 0.738 vs 0.721, and at 1,000 cells (subsamples 0-1) 0.853 vs 0.863; "
    "patience 20 (subsamples 0-1) 0.835 / 0.351.",
    "Same session, the protein component alone (CITE-seq, 3 subsamples x 3 seeds; z_prot "
    "default 0.853, ADT CLR-PCA 0.907), all within noise and below the PCA: n_clusters 1 "
    "0.870, 7 0.861; n_latent 5 0.853; unscaled encoder input 0.850; n_hidden 128 0.823; lr "
    "1e-3 0.816; 200 epochs 0.847; no k-means initialisation 0.841; validation_fraction 0.2 "
    "0.815; one hidden layer 0.840; a Gaussian likelihood on CLR values 0.815. Where it loses: "
    "on subsample 2 Leiden splits the largest label (194 of 550 cells) in two at the lowest "
    "resolution in z_prot and z_hat, not in ADT PCA. The parent's share of z_hat's variance "
    "is about a quarter on CITE-seq (2.4 vs 7) at 550 and at 1,500 cells, 6-9 % for the "
    "SNARE-seq ATAC, so the parent enters z_hat as much at 550 cells as at 1,500. BIC over "
    "diagonal Gaussian mixtures of the posterior means at the k-means initialisation picks "
    "15-21 components on every CITE-seq subsample (no data-driven smaller K).",
    "Same session, label-free Leiden resolution rules on the latents above (DAG-VAE z, z_hat "
    "and the PCA baselines, 3 subsamples; mean ARI at the chosen resolution): silhouette (the "
    "rule used) CITE-seq 0.658, SNARE-seq 0.307; the most stable partition over 4 random 80 % "
    "subsets of cells (at least 2 clusters) 0.678 / 0.216; the most stable over Leiden seeds "
    "0.662 / 0.208; silhouette x subset stability 0.666 / 0.310 (within noise of the "
    "silhouette, for 4 more graphs and Leiden runs per resolution). The silhouette stays.",
    "Session of 2026-12-04, mixture size at small n (550 cells, 3 subsamples x 3 seeds, z_hat "
    "ARI CITE-seq / SNARE-seq 15 labels / SNARE-seq 23 fine labels; K = n_clusters): K 21 "
    "(the old default 2d+1) 0.800 / 0.365 / 0.441; K 10 0.789 / 0.373 / 0.439; K 5 0.817 / "
    "0.367 / -; K 4 0.844 / 0.385 / 0.426 (better on all 3 CITE-seq subsets, slightly worse on "
    "all 3 for the fine SNARE-seq labels); K 1 (earlier) 0.839 / 0.359. At 1,500 cells K 12 vs "
    "21: CITE-seq subsamples 0/1 0.895 / 0.861 vs 0.930 / 0.858, SNARE-seq 0.434 vs 0.430. "
    "Kept: K = min(2d+1, n_train // (5 (2d+1))) (5 training cells per parameter of a "
    "component; 4 at 550 cells, 12 at 1,500, 21 from 2,450), i.e. nothing changes at full "
    "scale. With K 4 the RNA-only variant gives 0.670 / 0.384 (K 21: 0.655 / 0.393), so the "
    "SNARE-seq integrated latent is level with RNA-only either way.",
    "Same session, speed at 550 cells (one process, nothing else running): seconds per epoch "
    "DAG-VAE 0.088 vs totalVI 0.108 on CITE-seq subsample 0 (0.81x; train seconds 7.2 vs "
    "43.4). Of the DAG-VAE's training time: forward passes 41 % (matrix products and the "
    "count log-likelihood), backward 28 %, validation 9 %, gradient clipping and Adam 8 %, "
    "densifying sparse minibatches about 5 %: no single overhead large enough to reach 0.5x "
    "without a smaller network; not changed.",
    "Session of 2026-12-05, ATAC likelihood (SNARE-seq, 550 cells, 3 subsamples x 3 seeds, "
    "DAG-VAE rows only, z_hat ARI 15 / 23 labels): the depth-offset Bernoulli (p = 1 - "
    "exp(-rate x open peaks)) with standardised binarised input, now the default, 0.377 / "
    "0.441 vs the previous MultiVI-style likelihood 0.385 / 0.426 (this subset's ATAC has no "
    "label signal, LSI 0.006; on all 10,309 cells the new likelihood lifts z_hat from 0.396 to "
    "0.452, see multiomics_snareseq.md); decoding the RNA from z_hat as well "
    "(decode_ancestors='all') 0.328 / 0.346, although it gives 0.918 vs 0.616 on ATAC "
    "simulated from the labels (multiomics_atac_signal.md), so it stays off.",
    "Same session, integration='concat' re-checked with the new ATAC likelihood (550 cells, 3 "
    "subsamples x 3 seeds, z_hat ARI): CITE-seq 0.869 vs linear 0.844 (z_prot 0.881), "
    "SNARE-seq 0.334 / fine 0.201 vs 0.377 / 0.441 (the subset's ATAC has no label signal and "
    "concat keeps its dimensions); not kept. Profile of one CITE-seq 550-cell fit (5.5 s): "
    "component loss 48 % (ZINB terms 15 %, linear layers 9 %), backward 25 %, validation 11 %, "
    "sparse minibatch slicing 8 %, Adam 5 %, gradient clipping 4 %.",
    "Session of 2026-12-07, schedule lengths at 550 cells (3 subsamples x 3 seeds, z_hat ARI "
    "CITE-seq / SNARE-seq 15 labels, defaults 0.844 / 0.377; at 550 cells an epoch is 4 "
    "updates, so the default 25 KL-annealing epochs are 100 updates): max_epochs 300 alone "
    "0.844 / 0.377 (identical: every component early-stops before epoch 100); KL annealing 75 "
    "epochs 0.867 / 0.341; with parent annealing 30 as well 0.887 / 0.309; everything x3 "
    "(also patience 30) 0.900 / 0.309 (z_prot 0.881 -> 0.907 but SNARE-seq RNA-only latent "
    "0.354 -> 0.286 and CITE-seq z_rna 0.595 -> 0.496: the long warm-up at small KL weight "
    "overfits the 1,000-gene RNA of 495 training cells, while the 14 proteins profit); KL "
    "annealing 75 for the root component only 0.878 / 0.369 (fine 0.448 vs 0.441). A "
    "convergence rule for the warm-up (end it when the validation ELBO stops improving) cannot "
    "tell the two apart: on CITE-seq subsample 0 both components' validation ELBO still rises "
    "slowly at the end of a 37-epoch warm-up (protein -78.0 at epoch 12 -> -74.4 at 36, RNA "
    "-532.8 -> -519.6). Nothing kept: a per-modality schedule would be tuned to this DEV pair.",
    "Same session, shorter and mixed warm-ups (550 cells as above): KL annealing 10 epochs "
    "0.858 / 0.361 (fine 0.371 vs 0.441); root 75 with children 10 0.860 / 0.367. At 1,500 "
    "cells (subsamples 0-1 x 3 seeds) KL annealing 75 for the root only vs defaults: CITE-seq "
    "z_hat 0.905 vs 0.878 (z_prot 0.905 vs 0.890; label-free 0.604 vs 0.635), SNARE-seq 0.407 "
    "vs 0.416 (fine 0.505 vs 0.500). Consistent on CITE-seq at both sizes, neutral on SNARE-seq, "
    "but no reason beyond these two sets for treating roots differently, and untested at full "
    "scale; not the default.",
    "Session of 2026-12-07 (2nd), 550 cells, 3 subsamples x 3 seeds, z_hat ARI CITE-seq / "
    "SNARE-seq (defaults 0.844 / 0.377; the sd of a 9-run mean is about 0.028 / 0.013, so "
    "smaller differences are noise), none kept: the parents' posterior means instead of "
    "samples as the child's input to B 0.862 / 0.349 (CITE-seq z_rna 0.595 -> 0.462: the "
    "child's own latent turns residual; on SNARE-seq a noise-free ATAC input is taken in); "
    "weight decay 1e-2 0.851 / 0.385 (fine 0.431 vs 0.441), 1e-3 0.837 / 0.369; the protein "
    "encoder input centred per cell (log1p minus its cell mean, as CLR) before standardising "
    "0.849 (z_prot 0.861 vs 0.881); batch_size 32 (16 updates per epoch instead of 4) 0.828 / "
    "0.367, 64 0.871 / 0.359; B with orthonormal rows and R orthogonal (torch's orthogonal "
    "parametrisation, starting where 'linear' starts: z_hat a rotation and projection of "
    "[parents; z], so that B cannot carry a parent along a direction too short to count in "
    "z_hat's Euclidean geometry) 0.844 / 0.360 (fine 0.441); z_hat of n_latent + the "
    "parents' dims with the parents' columns of B starting at zero (room for the parent "
    "without a noisy parent at full weight) 0.830 / 0.371 (fine 0.443). NB instead of ZINB for RNA (totalVI's gene likelihood; "
    "UMI counts are not zero-inflated beyond the NB): 0.855 / 0.373 (NMI 0.871 / 0.504 vs "
    "0.875 / 0.514), RNA-only 0.696 / 0.380 (ZINB 0.670 / 0.384), 20-26 % less time per "
    "epoch; but on the SNARE-seq test fixture (2,000 cells, 20 epochs, seeds 0/1) the "
    "oligodendrocyte-vs-rest differential expression ranks Plp1 34th / 56th instead of 1st / "
    "1st and the 95 % quantile of the LFCs rises from 2.8-2.9 to 4.1-4.4 (noisier fold "
    "changes of lowly expressed genes), so ZINB stays.",
    "Same session, all 6,661 CITE-seq cells (seeds 0-2): KL annealing 75 epochs for the root "
    "only (the small-n lead above) z_hat 0.901 / NMI 0.875 vs defaults 0.900 / 0.876 (z_prot "
    "0.914 vs 0.917; the protein component then runs into the 100-epoch cap): the gain at "
    "550 and 1,500 cells does not carry to full scale; dropped.",
    "Same session, label-free gates for decoding the ATAC from z_hat (decode_ancestors='all' "
    "only where it would help): (a) the child's held-out RNA log-likelihood, 'all' minus "
    "'none' (550 cells, same split and seed): DEV SNARE-seq -1.9 to +2.4 nats per cell, ATAC "
    "simulated from the labels (cloglog) -3.0 to +0.5, so it does not separate them; (b) the "
    "ARI between Leiden clusters (resolution 0.5) of the ATAC-only latent and of RNA PCA: DEV "
    "550 cells <= 0.015, simulated 0.03-0.26, but all 10,309 DEV cells 0.33, where 'all' "
    "lowers z_hat from 0.415 to 0.327 (seed 0, 25 epochs, NMI 0.500 vs 0.558; the ATAC-only "
    "latent there 0.238): agreement between the modalities does not say that decoding the "
    "ATAC helps, so 'all' stays off. Selecting the best of several seeds by held-out ELBO "
    "was not pursued: the split changes with the seed, and across seeds the 55-cell held-out "
    "ELBO ranked fits against z_hat ARI (negative rank correlation on CITE-seq subsample 1).",
    "Same session, where the CITE-seq latents lose to ADT CLR-PCA at 550 cells (subsample 2, "
    "seed 1; z_prot 0.725, z_hat 0.723, ADT PCA 0.922): at its best resolution Leiden splits "
    "the largest label ('4', 194 cells) into 93 / 101 cells (z_hat 84 / 104) that differ "
    "reciprocally in two proteins (adt09 median CLR 0.53 vs 3.39, adt10 2.50 vs 0.32; "
    "standardised differences -6.2 / +5.5, every other protein within 1.1), the pattern of "
    "the CD45RA / CD45RO isoforms of naive and memory T cells (the panel's names are not "
    "shipped), while the ADT PCA keeps the 194 together and z_prot merges labels 1 and 7. On "
    "all 6,661 cells z_prot keeps label 4 whole (2,369 / 95). So part of the 550-cell gap on "
    "these 7 coarse labels is the VAE resolving a protein-evident subpopulation that the "
    "annotation lumps: a setting that merges it wins on these labels and would lose on a "
    "finer annotation (the SNARE-seq fine labels are the only such guard on the DEV sets). "
    "Scored against labels with label 4 split by adt09 > adt10 (protein-derived, so they "
    "favour protein latents; 3 subsamples x 3 seeds): z_prot 0.923 vs ADT CLR-PCA 0.901, "
    "RNA+ADT concatenation 0.907, RNA PCA 0.682, but z_hat 0.881: the integrated latent "
    "still loses protein information. The mixture size at 550 cells (K 4 by the "
    "cells-per-parameter rule) is not an artefact of lumping: K 21 gives z_prot 0.935, "
    "z_hat 0.853 on the split labels and 0.853 / 0.800 on the coarse ones.",
    "Session of 2026-12-07 (3rd), all 6,661 CITE-seq cells, seeds 0-2, paired with the "
    "defaults (benchmarks/multiomics_variants.py, reports/benchmarks/multiomics_variants/"
    "max_epochs_300_full_cite.md): max_epochs 300 instead of 100 (the protein component "
    "reached the 100-epoch cap on all three seeds of the 2026-12-04 run) z_hat 0.896 vs 0.898 (paired -0.002 +- "
    "0.004), NMI 0.870 vs 0.874, z_prot 0.918 both, train seconds level (99-104 vs 89-112, so "
    "early stopping ends it soon after epoch 100 anyway): the cap does not hold the quality "
    "back; not changed. Speed, exact: the NB's log-gamma "
    "terms over the whole tensor where at least half the entries are non-zero (the ADT) "
    "instead of gathered on the non-zeros: one training step 4.92 vs 5.13 ms (protein "
    "component) and 14.97 vs 15.09 ms (RNA component, which decodes the proteins too), about "
    "2 % of a CITE-seq epoch; kept, far from the 0.5x target.",
    "Same session, one hidden layer instead of two (n_layers 1, widths [64]; for speed: a "
    "training step on all CITE-seq cells 3.70 vs 4.76 ms for the protein component, 11.55 "
    "vs 14.34 ms for the RNA component, interleaved in one process): 550 cells, 3 subsets x "
    "3 seeds paired with the defaults (reports/benchmarks/multiomics_variants/n_layers_1.md) "
    "z_hat CITE-seq 0.827 vs 0.844 (-0.017 +- 0.038), SNARE-seq 0.367 vs 0.377 (-0.011 +- "
    "0.015), NMI -0.016 / -0.028 (+- 0.016 / 0.012), SNARE-seq fine labels 0.384 vs 0.441 "
    "(-0.057 +- 0.015): worse everywhere, not kept (and -20 % per step would give about "
    "0.6x totalVI, still not 0.5x).",
    "Session of 2026-12-07 (4th), the weight of the proteins that the RNA component's z_hat "
    "decodes (ancestor_weight; before, 1: the 14 protein terms against ~1,000 gene terms), "
    "paired with the factor 1 (benchmarks/multiomics_variants.py, CITE-seq only: SNARE-seq "
    "decodes no ancestor by default, so nothing changes there): 550 cells, 3 subsets x 3 seeds, "
    "z_hat ARI 0.844 -> 4: 0.883 (+0.039 +- 0.029), 16: 0.907 (+0.063 +- 0.029), 64: 0.896, "
    "'balanced' (the RNA's feature count over the proteins', 62 here, 71 on all cells) 0.896 "
    "(+0.052 +- 0.028; NMI +0.010 +- 0.018); all 6,661 cells, seeds 0-2, 'balanced' 0.898 -> "
    "0.930 (+0.032 +- 0.002), NMI 0.874 -> 0.913, label-free ARI 0.668 -> 0.908, above the "
    "same run's z_prot 0.918 (reports/benchmarks/multiomics_variants/ancestor_weight_balanced"
    "*.md). Kept 'balanced' as the default: a rule (each decoded feature counts like one of the "
    "child's own, as the concatenation gives each block unit variance), not the number that "
    "won at 550 cells (16, within noise of it). Full-scale diagnosis before it (seed 0): the "
    "old z_hat put 78 label-4 cells with label 2 and 75 with label 7 (RNA PCA: 69 with label "
    "2), where ADT CLR-PCA kept them together.",
]


# ---------------------------------------------------------------------------------------- data
def load(name: str, quick: bool | int, seed: int = 0):
    """MuData (``rna`` + ``prot`` or ``atac``, raw counts) with ``obs["label"]``.

    ``quick``: a random subsample of ``QUICK_CELLS`` cells (or of ``quick`` cells if an int) and,
    for ATAC, the 3,000 most open peaks.
    """
    import anndata as ad
    import mudata
    import numpy as np

    from biostruct.multiomics import filter_empty

    root = Path(os.environ["BIOSTRUCT_DATA_DIR"]) / "multiomics"
    if name in ("pbmc10k_cite_scmdc", "cbmc_cite_scmdc"):
        rna = ad.read_h5ad(root / name / "rna.h5ad")
        adt = ad.read_h5ad(root / name / "adt.h5ad")
        md = mudata.MuData({"rna": rna, "prot": adt})
        md.obs["label"] = rna.obs["cell_type"].astype(str).to_numpy()
    elif name == "snareseq_mop":
        import biostruct as bs

        md = bs.datasets.load("snareseq")
        md.obs["label"] = md.obs["label"].astype(str).to_numpy()
    else:
        raise SystemExit(f"unknown dataset {name!r}; use one of {DATASETS + ('cbmc_cite_scmdc',)}")
    label_cols = {k: md.obs[k].copy() for k in ("label", FINE_LABEL) if k in md.obs}
    n_sub = QUICK_CELLS if quick is True else int(quick)
    if quick and md.n_obs > n_sub:
        rng = np.random.default_rng(seed)
        cells = np.sort(rng.choice(md.n_obs, size=n_sub, replace=False))
        md = md[md.obs_names[cells]].copy()
    if "atac" in md.mod:
        atac = md.mod["atac"]
        freq = np.asarray((atac.X > 0).sum(0)).ravel()
        keep = np.flatnonzero(freq >= 0.0025 * md.n_obs)
        if quick:
            keep = np.sort(np.argsort(-freq, kind="stable")[:3000])
        md.mod["atac"] = atac[:, keep].copy()
        md.update()
    md = filter_empty(md)
    for k, col in label_cols.items():
        md.obs[k] = col.reindex(md.obs_names).astype(str).to_numpy()
    return md


# ------------------------------------------------------------------------------------- metrics
def score(z, labels, seed: int = 0, fine=None) -> dict:
    """The metrics of one latent: Leiden best-by-ARI and label-free, kNN purity.

    Leiden's partition depends on its random seed (on these sets the best-by-ARI value moved by
    up to 0.1 between seeds for one latent), so each value is the mean over the Leiden seeds
    :data:`LEIDEN_SEEDS` (the same for every row; ``seed`` only picks the silhouette subsample).
    ``fine``: a finer annotation of the same cells; the same partitions are also scored
    against it (``ari_fine``/``nmi_fine``, at the resolution best for it).
    """
    import numpy as np
    from sklearn.metrics import adjusted_rand_score as ari
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from biostruct.multiomics import knn_purity
    from biostruct.multiomics.analysis import latent_neighbors
    from biostruct.multiomics.clusters import scan_graph, silhouette_subset

    z = np.asarray(z, dtype=np.float32)
    labels = np.asarray(labels).astype(str)
    graph = latent_neighbors(z, n_neighbors=15, seed=seed)
    sub = silhouette_subset(len(z), 3000, seed)
    per_seed = []
    for ls in LEIDEN_SEEDS:
        table, labs = scan_graph(graph, z, sub, RESOLUTIONS, ls)
        rows = []
        for t in table.itertuples():
            lab = labs[t.resolution].astype(str)
            row = {"res": t.resolution, "k": t.n_clusters, "ari": ari(labels, lab)}
            row.update(nmi=nmi(labels, lab), sil=t.silhouette)
            if fine is not None:
                row.update(ari_fine=ari(fine, lab), nmi_fine=nmi(fine, lab))
            rows.append(row)
        best = (max(rows, key=lambda x: x["ari"]), max(rows, key=lambda x: x["sil"]))
        if fine is not None:
            best += (max(rows, key=lambda x: x["ari_fine"]),)
        per_seed.append(best)

    def mean(i: int, key: str) -> float:
        return float(np.mean([p[i][key] for p in per_seed]))

    out = {
        "ari": mean(0, "ari"),
        "nmi": mean(0, "nmi"),
        "ari_per_leiden_seed": [p[0]["ari"] for p in per_seed],
        "resolution": [p[0]["res"] for p in per_seed],
        "n_clusters": [p[0]["k"] for p in per_seed],
        "ari_label_free": mean(1, "ari"),
        "nmi_label_free": mean(1, "nmi"),
        "resolution_label_free": [p[1]["res"] for p in per_seed],
        "n_clusters_label_free": [p[1]["k"] for p in per_seed],
        "knn_purity": knn_purity(z, labels, k=15),
    }
    if fine is not None:
        out.update(ari_fine=mean(2, "ari_fine"), nmi_fine=mean(2, "nmi_fine"))
    return out


def score_labels(z, obs, seed: int = 0) -> dict:
    """:func:`score` against ``obs["label"]`` and, where the dataset has one, the finer
    annotation ``obs[FINE_LABEL]`` (SNARE-seq: 23 types next to 15): a guard against settings
    that only win on coarse labels."""
    fine = obs[FINE_LABEL].to_numpy().astype(str) if FINE_LABEL in obs else None
    return score(z, obs["label"].to_numpy(), seed, fine=fine)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -------------------------------------------------------------------------------------- models
def run_dagvae(task: dict) -> list[dict]:
    import numpy as np
    import torch

    from biostruct.multiomics import DAGVAE

    torch.set_num_threads(1)
    md = load(task["dataset"], task["quick"], task.get("subsample", 0))
    mods = dict(md.mod) if task["method"] == "dagvae" else {"rna": md.mod["rna"]}
    kw = dict(task.get("train", {}))
    # scvi-tools imports its libraries before its timer starts; the mixture prior's k-means
    # initialisation would import scikit-learn inside ours (about 1.5 s on 2 CPUs, 0.02-0.04 s
    # per epoch of a 40-80-epoch component), so import it here (from the run of 2026-12-03 on)
    import sklearn.cluster  # noqa: F401

    t0 = time.perf_counter()
    model = DAGVAE(mods, seed=task["seed"], **task.get("init", {}))
    model.train(progress=False, **kw)
    train_s = time.perf_counter() - t0
    per_epoch = sum(s["seconds"] / max(1, s["epochs"]) for s in model.train_summary)
    epochs = {s["component"]: s["epochs"] for s in model.train_summary}
    rows = []
    order = model.graph.order
    child = order[-1]
    latents = []
    for c in order:
        kinds = ["z"] + (["z_hat"] if model.graph[c].parents else [])
        latents += [(c, k) for k in kinds]
    for c, kind in latents:
        z = model.get_latent_representation(c, kind)
        rows.append(
            {
                "latent": f"{kind}_{c}",
                "integrated": bool(kind == "z_hat" and c == child),
                **score_labels(z, md.obs, task["seed"]),
            }
        )
    for r in rows:
        r.update(
            train_seconds=train_s,
            seconds_per_epoch=per_epoch,
            epochs=epochs,
            warnings=list(model.warnings),
            graph=model.graph.to_yaml(),
        )
    del np
    return rows


def _rna_pca(rna, n_comps: int = 30):
    import numpy as np
    import scanpy as sc

    a = rna.copy()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.scale(a, max_value=10)
    sc.tl.pca(a, n_comps=min(n_comps, a.n_vars - 1), random_state=0)
    return np.asarray(a.obsm["X_pca"], dtype=np.float32)


def _adt_pca(adt, n_comps: int = 30):
    import numpy as np
    import scipy.sparse as sp
    from sklearn.decomposition import PCA

    x = adt.X.toarray() if sp.issparse(adt.X) else np.asarray(adt.X)
    x = x.astype(np.float64)
    # CLR per cell (Seurat/muon): log1p(x / geometric mean of the cell's log1p counts)
    g = np.exp(np.log1p(x).mean(1, keepdims=True))
    clr = np.log1p(x / g)
    clr = (clr - clr.mean(0)) / (clr.std(0) + 1e-8)
    k = min(n_comps, x.shape[1] - 1)
    return PCA(n_components=k, random_state=0).fit_transform(clr).astype(np.float32)


def _atac_lsi(atac, n_comps: int = 30):
    import numpy as np
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD

    x = sp.csr_matrix(atac.X, dtype=np.float64)
    x.data[:] = 1.0
    tf = sp.diags(1.0 / np.maximum(np.asarray(x.sum(1)).ravel(), 1)) @ x
    idf = np.log1p(x.shape[0] / np.maximum(np.asarray(x.sum(0)).ravel(), 1))
    tfidf = (tf @ sp.diags(idf)).tocsr()
    tfidf.data = np.log1p(tfidf.data * 1e4)
    svd = TruncatedSVD(n_components=n_comps + 1, random_state=0).fit_transform(tfidf)
    lsi = svd[:, 1:]  # the first component follows sequencing depth
    return ((lsi - lsi.mean(0)) / (lsi.std(0) + 1e-8)).astype(np.float32)


def _unit(block):
    import numpy as np

    b = block - block.mean(0)
    return b / np.sqrt((b**2).sum(1).mean())


def run_pca(task: dict) -> list[dict]:
    import numpy as np

    md = load(task["dataset"], task["quick"], task.get("subsample", 0))
    rows = []
    t0 = time.perf_counter()
    rna = _rna_pca(md.mod["rna"])
    t_rna = time.perf_counter() - t0
    rows.append({"method": "pca_rna", "latent": "pca", "train_seconds": t_rna, "z": rna})
    if "prot" in md.mod:
        t0 = time.perf_counter()
        other = _adt_pca(md.mod["prot"])
        t_o = time.perf_counter() - t0
        rows.append({"method": "pca_adt", "latent": "clr_pca", "train_seconds": t_o, "z": other})
        name = "concat_rna_adt"
    else:
        t0 = time.perf_counter()
        other = _atac_lsi(md.mod["atac"])
        t_o = time.perf_counter() - t0
        rows.append({"method": "lsi_atac", "latent": "lsi", "train_seconds": t_o, "z": other})
        name = "concat_rna_atac"
    cat = np.concatenate([_unit(rna), _unit(other)], 1)
    rows.append({"method": name, "latent": "concat", "train_seconds": t_rna + t_o, "z": cat})
    out = []
    for r in rows:
        z = r.pop("z")
        out.append(
            {**r, **score_labels(z, md.obs, 0), "seconds_per_epoch": None, "integrated": False}
        )
    return out


def run_scvi(task: dict) -> list[dict]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    try:
        import scvi
    except ImportError as err:
        return [{"skipped": f"scvi-tools not importable ({err}); see the module docstring"}]
    md = load(task["dataset"], task["quick"], task.get("subsample", 0))
    scvi.settings.seed = task["seed"]
    scvi.settings.dl_num_workers = 0
    kw = {"early_stopping": True, "accelerator": "cpu", "devices": 1}
    if task.get("max_epochs"):
        kw["max_epochs"] = task["max_epochs"]
    t0 = time.perf_counter()
    if "prot" in md.mod:
        method = "totalvi"
        rna = md.mod["rna"].copy()
        rna.obsm["protein_expression"] = md.mod["prot"].X.toarray().astype(np.float32)
        scvi.model.TOTALVI.setup_anndata(rna, protein_expression_obsm_key="protein_expression")
        model = scvi.model.TOTALVI(rna)
        model.train(**kw)
        latents = {"joint": model.get_latent_representation()}
    else:
        method = "multivi"
        scvi.model.MULTIVI.setup_mudata(md, modalities={"rna_layer": "rna", "atac_layer": "atac"})
        model = scvi.model.MULTIVI(
            md, n_genes=md.mod["rna"].n_vars, n_regions=md.mod["atac"].n_vars
        )
        model.train(**kw)
        latents = {"joint": model.get_latent_representation()}
    train_s = time.perf_counter() - t0
    n_ep = len(model.history["elbo_train"]) if "elbo_train" in model.history else None
    rows = []
    for which, z in latents.items():
        rows.append(
            {
                "method": method,
                "latent": which,
                "integrated": True,
                **score_labels(z, md.obs, task["seed"]),
                "train_seconds": train_s,
                "seconds_per_epoch": train_s / n_ep if n_ep else None,
                "epochs": n_ep,
                "train_settings": {k: v for k, v in kw.items() if k != "devices"},
            }
        )
    return rows


RUNNERS = {"dagvae": run_dagvae, "dagvae_rna_only": run_dagvae, "pca": run_pca, "scvi": run_scvi}


def _child(task: dict, q) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
    try:
        rows = RUNNERS[task["method"]](task)
        for r in rows:
            r.setdefault("method", task["method"])
            r["peak_rss_mb"] = _peak_rss_mb()
        q.put(rows)
    except Exception as err:  # a failing model must not sink the others
        import traceback

        q.put([{"skipped": f"error: {err!r}", "trace": traceback.format_exc()}])


def run_isolated(task: dict) -> list[dict]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(task, q))
    p.start()
    rows = q.get()
    p.join()
    for r in rows:
        r.setdefault("method", task["method"])
        r["dataset"] = task["dataset"]
        r["seed"] = task["seed"]
    return rows


# -------------------------------------------------------------------------------------- report
def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and sd over seeds (and subsamples) per (dataset, method, latent).

    ``ari_per_subsample``: the mean ARI over seeds of each subsample, in subsample order.
    """
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "skipped" in r:
            continue
        groups.setdefault((r["dataset"], r["method"], r["latent"]), []).append(r)
    out = []
    for (d, m, lat), rs in groups.items():
        s = {"dataset": d, "method": m, "latent": lat, "n_seeds": len(rs)}
        s["integrated"] = bool(rs[0].get("integrated"))
        for k in (
            "ari",
            "nmi",
            "ari_label_free",
            "nmi_label_free",
            "ari_fine",
            "nmi_fine",
            "knn_purity",
            "train_seconds",
            "seconds_per_epoch",
            "peak_rss_mb",
        ):
            v = [r[k] for r in rs if r.get(k) is not None]
            s[k] = float(np.mean(v)) if v else None
            s[k + "_sd"] = float(np.std(v)) if len(v) > 1 else None
        subs = sorted({r.get("subsample", 0) for r in rs})
        s["ari_per_subsample"] = [
            float(np.mean([r["ari"] for r in rs if r.get("subsample", 0) == k])) for k in subs
        ]
        out.append(s)
    return out


def targets(summary: list[dict], dataset: str) -> list[str]:
    """The issue's "Done when" checks for one dataset."""
    rows = [s for s in summary if s["dataset"] == dataset]
    ours = [s for s in rows if s["method"] == "dagvae" and s["integrated"]]
    if not ours:
        return []
    o = ours[0]
    others = [s for s in rows if s["method"] not in ("dagvae", "dagvae_rna_only")]
    lines = [f"Targets on `{dataset}` (DAG-VAE `{o['latent']}`, mean over {o['n_seeds']} runs):"]
    for metric in ("ari", "nmi"):
        if others:
            best = max(others, key=lambda s: s[metric])
            ok = o[metric] >= best[metric]
            lines.append(
                f"- {metric.upper()} {o[metric]:.3f} >= every other row (best "
                f"`{best['method']}/{best['latent']}` {best[metric]:.3f}): "
                + ("met" if ok else "NOT met")
            )
    rna = [s for s in rows if s["method"] == "dagvae_rna_only"]
    if rna:
        r = rna[0]
        lines.append(
            f"- ARI {o['ari']:.3f} >= RNA-only {r['ari']:.3f} + 0.03: "
            + ("met" if o["ari"] >= r["ari"] + 0.03 else "NOT met")
        )
    ref = [s for s in rows if s["method"] in ("totalvi", "multivi") and s["seconds_per_epoch"]]
    if ref and o["seconds_per_epoch"]:
        sp = ref[0]["seconds_per_epoch"]
        lines.append(
            f"- seconds per epoch {o['seconds_per_epoch']:.2f} <= 0.5 x {ref[0]['method']} "
            f"{sp:.2f}: " + ("met" if o["seconds_per_epoch"] <= 0.5 * sp else "NOT met")
        )
    return lines


def to_markdown(result: dict) -> str:
    m = result["meta"]
    summary = summarise(result["rows"])
    subsamples = m.get("subsamples", [0])
    multi = len(subsamples) > 1

    def f(v, sd=None):
        if v is None:
            return ""
        return f"{v:.3f}" + (f" ± {sd:.3f}" if sd else "")

    lines = [
        "# Multi-omics DEV benchmark: does integration help?",
        "",
        f"Command: `{m['command']}`  ",
        f"Host: {m['host']}; torch threads 1; {'QUICK run: ' + m['quick_note'] if m['quick'] else 'full data'}.",
        *(
            [
                f"Subsamples (random cell subsets, seeds {subsamples}): every method runs on "
                "each; runs = model seeds x subsamples; the mean is over all runs."
            ]
            if multi
            else []
        ),
        *([f"Note: {m['note']}"] if m.get("note") else []),
        "",
    ]
    for d in m["datasets"]:
        info = m.get("data", {}).get(d, {})
        rows_d = [s for s in summary if s["dataset"] == d]
        fine = any(s.get("ari_fine") is not None for s in rows_d)
        lines += [
            f"## {d}",
            "",
            f"{info.get('n_cells', '?')} cells; features {info.get('n_features', '?')}; "
            f"{info.get('n_labels', '?')} labels"
            + (f" ({info['n_fine_labels']} fine)" if "n_fine_labels" in info else "")
            + (f" (subset {subsamples[0]}; the others hold other cells)." if multi else "."),
            "",
            "| method | latent | runs | ARI (best res) | NMI (best res) | ARI label-free | "
            "NMI label-free | kNN purity | train s | s/epoch | peak RSS MB |"
            + (" ARI per subsample |" if multi else "")
            + (" ARI / NMI fine labels |" if fine else ""),
            "|---|---|---|---|---|---|---|---|---|---|---|"
            + ("---|" if multi else "")
            + ("---|" if fine else ""),
        ]
        for s in rows_d:
            per_sub = " / ".join(f"{v:.3f}" for v in s["ari_per_subsample"])
            fine_cell = f" {f(s.get('ari_fine'))} / {f(s.get('nmi_fine'))} |" if fine else ""
            lines.append(
                f"| {s['method']} | {s['latent']}{' (integrated)' if s['integrated'] else ''} | "
                f"{s['n_seeds']} | {f(s['ari'], s['ari_sd'])} | {f(s['nmi'], s['nmi_sd'])} | "
                f"{f(s['ari_label_free'], s['ari_label_free_sd'])} | "
                f"{f(s['nmi_label_free'], s['nmi_label_free_sd'])} | {f(s['knn_purity'])} | "
                f"{f(s['train_seconds'])} | {f(s['seconds_per_epoch'])} | {f(s['peak_rss_mb'])} |"
                + (f" {per_sub} |" if multi else "")
                + fine_cell
            )
        for r in result["rows"]:
            if r.get("dataset") == d and "skipped" in r:
                lines.append(f"| {r['method']} | skipped: {r['skipped']} |" + " |" * 9)
        lines += [""] + targets(summary, d) + [""]
    lines += [
        "ARI/NMI (best res): Leiden on the latent's 15-NN graph at the resolution of "
        f"{list(RESOLUTIONS)} with the best ARI (uses the labels); label-free: the resolution "
        "with the best silhouette of the clustering on the latent (3,000 cells); both are means "
        f"over Leiden seeds {list(LEIDEN_SEEDS)} (one Leiden run moved the best ARI of one latent "
        "by up to 0.1). Fine labels (where a dataset has a finer annotation, "
        f"`obs['{FINE_LABEL}']`; SNARE-seq: 23 types): the same best-resolution scoring against "
        "them, a check that a setting does not only win on coarse labels. kNN purity: "
        "k = 15. s/epoch for the DAG-VAE: one epoch of every component (one pass over every "
        "modality), summed; scvi-tools: train seconds / epochs run. Each model in its own "
        "process (peak RSS is its own). PCA baselines are deterministic (one run).",
        "",
        "## Tried on the DEV sets (each entry says when and on what it was measured)",
        "",
        *[f"- {t}" for t in TRIED],
        "",
    ]
    return "\n".join(lines)


def _write(out: Path, name: str, result: dict) -> None:
    _atomic_write(out / f"{name}.json", json.dumps(result, indent=1, default=str))
    _atomic_write(out / f"{name}.md", to_markdown(result))


def _report_name(quick: bool, cells: int | bool, subsamples: list[int] | None = None) -> str:
    """multiomics_dev (all cells), _quick (QUICK_CELLS) or _quick_<cells> (another size), and
    _subs<k> for k random subsets other than the default one (``subsamples`` != [0])."""
    if not quick:
        return "multiomics_dev"
    name = "multiomics_dev_quick" if cells == QUICK_CELLS else f"multiomics_dev_quick_{cells}"
    subs = list(subsamples or [0])
    return name if subs == [0] else f"{name}_subs{len(subs)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_CELLS} cells per dataset")
    ap.add_argument("--cells", type=int, default=None, help="subsample size of --quick")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--methods", default=",".join(METHODS), help=f"subset of {METHODS}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--subsamples",
        default="0",
        help="seeds of the random cell subsets of --quick, e.g. 0,1,2 (every method on each)",
    )
    ap.add_argument("--scvi-max-epochs", type=int, default=None, help="cap scvi-tools' epochs")
    ap.add_argument("--merge", action="store_true", help="keep other rows of an earlier run")
    ap.add_argument("--note", default=None, help="a line for the report (e.g. machine load)")
    ap.add_argument("--out", default=str(REPO / "reports" / "benchmarks"))
    ap.add_argument(
        "--combine",
        nargs="+",
        default=None,
        help="only merge these result JSONs (e.g. one per dataset, run side by side) into --out",
    )
    args = ap.parse_args(argv)
    if args.combine:
        parts = [json.loads(Path(p).read_text()) for p in args.combine]
        meta = dict(parts[0]["meta"])
        meta["command"] = " ; ".join(p["meta"]["command"] for p in parts)
        meta["datasets"] = list(dict.fromkeys(d for p in parts for d in p["meta"]["datasets"]))
        meta["data"] = {k: v for p in parts for k, v in p["meta"].get("data", {}).items()}
        meta["total_seconds"] = {
            d: p["meta"].get("total_seconds") for p in parts for d in p["meta"]["datasets"]
        }
        rows = [r for p in parts for r in p["rows"]]
        if args.note:
            meta["note"] = args.note
        name = _report_name(
            meta.get("quick"), meta.get("cells", QUICK_CELLS), meta.get("subsamples")
        )
        _write(Path(args.out), name, {"meta": meta, "rows": rows})
        print(f"wrote {Path(args.out) / name}.{{json,md}}")
        return 0
    quick = (args.cells or QUICK_CELLS) if args.quick else False
    datasets = args.datasets.split(",")
    methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    subsamples = [int(s) for s in args.subsamples.split(",")]
    if subsamples != [0] and not args.quick:
        raise SystemExit("--subsamples needs --quick (the full data has one subset: all cells)")
    name = _report_name(args.quick, quick, subsamples)
    out = Path(args.out)
    command = "python benchmarks/multiomics_dev.py " + " ".join(argv or sys.argv[1:])
    meta = {
        "command": command,
        "quick": args.quick,
        "quick_note": f"{quick} random cells per dataset (subset seed "
        f"{','.join(map(str, subsamples))}), every model at its defaults (no epoch cap beyond "
        "the defaults)",
        "cells": quick,
        "subsamples": subsamples,
        "datasets": datasets,
        "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data": {},
        **({"note": args.note} if args.note else {}),
    }
    rows: list[dict] = []
    if args.merge and (out / f"{name}.json").exists():
        old = json.loads((out / f"{name}.json").read_text())
        keep = [
            r
            for r in old["rows"]
            if not (
                r.get("dataset") in datasets
                and (r.get("_group") or r.get("method")) in methods
                and r.get("seed") in seeds
                and r.get("subsample", 0) in subsamples
            )
        ]
        rows = keep
        meta["command"] = old["meta"]["command"] + " ; " + command
        meta["datasets"] = list(dict.fromkeys(old["meta"]["datasets"] + datasets))
        meta["data"] = old["meta"].get("data", {})
    t0 = time.perf_counter()
    for d in datasets:
        md = load(d, quick, subsamples[0])  # the table header describes the first subset
        meta["data"][d] = {
            "n_cells": int(md.n_obs),
            "n_features": {m: int(a.n_vars) for m, a in md.mod.items()},
            "n_labels": int(md.obs["label"].nunique()),
        }
        if FINE_LABEL in md.obs:
            meta["data"][d]["n_fine_labels"] = int(md.obs[FINE_LABEL].nunique())
        del md
        runs = [
            (sub, method, seed)
            for sub in subsamples
            for method in methods
            for seed in (seeds if method != "pca" else [0])
        ]
        for sub, method, seed in runs:
            task = {
                "dataset": d,
                "method": method,
                "seed": seed,
                "quick": quick,
                "subsample": sub,
                "max_epochs": args.scvi_max_epochs,
            }
            print(
                f"[{time.perf_counter() - t0:6.0f}s] {d} subsample {sub} {method} seed {seed}",
                flush=True,
            )
            res = run_isolated(task)
            for r in res:
                r["_group"] = method
                r["subsample"] = sub
                if "skipped" in r:
                    print(f"  skipped: {r['skipped']}\n{r.get('trace', '')}", flush=True)
                else:
                    print(
                        f"  {r['method']:16s} {r['latent']:12s} ARI {r['ari']:.3f} "
                        f"NMI {r['nmi']:.3f} label-free {r['ari_label_free']:.3f} "
                        f"purity {r['knn_purity']:.3f} train {r['train_seconds']:.0f} s",
                        flush=True,
                    )
            rows.extend(res)
            _write(out, name, {"meta": meta, "rows": rows})
    meta["total_seconds"] = time.perf_counter() - t0
    _write(out, name, {"meta": meta, "rows": rows})
    print(f"wrote {out / name}.{{json,md}} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
